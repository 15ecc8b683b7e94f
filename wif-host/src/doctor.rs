//! `wif-host doctor`: why a network (or a grant) fails here, in one
//! command.
//!
//! For each origin the config needs: whether the policy grants it, the
//! proxy chosen (or why none), the DNS answer, the TCP connect time, the
//! TLS version, the leaf certificate (subject, issuer, expiry) and whether
//! it verified against which roots, and the HTTP status of a `GET /` that
//! carries no secret. Then the files, variables and commands the config
//! needs: whether each exists and is granted, never their contents. Then
//! the identity token, read by the component as it would read it for an
//! exchange and under the same policy: its JWT header and claims (see
//! [`claims`]; never the token), and what in them an exchange would refuse.
//! With `--exchange`, the exchange itself (through the token cache), and
//! after a 401 where its reason is visible and what usually causes it. The
//! exit code is non-zero when anything needed is unreachable or denied, or
//! the identity token would be refused.

mod claims;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anthropic_wif_host::net::errors::{explain, explain_connect_refusal, explain_tls};
use anthropic_wif_host::net::proxy::{ProxyUrl, Route};
use anthropic_wif_host::net::{HttpClient, tls};
use anthropic_wif_host::policy::Origin;
use anthropic_wif_host::token_cache::PolicyOrigin;
use anthropic_wif_host::{AssertionFingerprint, Error, Policy, Provider, Requirements};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::{ConfigArgs, Failure, builder, env_var, in_file, user_cache};

/// The arguments of `wif-host doctor`.
#[derive(clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Policy file (TOML). Without it, the minimal policy the config needs.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Also exchange the identity token for an access token, through the
    /// token cache as `wif-host token` does (the access token is never
    /// shown). Identity tokens are single-use: another program that sends
    /// the same one afterwards is refused.
    #[arg(long)]
    exchange: bool,
}

/// What went wrong, counted for the exit code.
#[derive(Default)]
struct Findings {
    unreachable: usize,
    denied: usize,
}

/// Runs the checks and prints the report to stdout.
pub fn run(args: &DoctorArgs) -> Result<(), Failure> {
    let located = args.config.load()?;
    let config = located.json();
    let cache = user_cache();
    let origin = match &args.policy {
        Some(_) => PolicyOrigin::Given,
        None => PolicyOrigin::Derived,
    };
    let mut inspector = builder(cache.as_deref());
    if let Some(dir) = &cache {
        inspector = inspector.token_cache(dir.join("tokens"), origin);
    }
    let provider = inspector.build()?;
    let needs = provider
        .requirements(&config)
        .map_err(|e| in_file(&located, e))?;
    let minimal = Policy::minimal(&needs, env_var);
    let policy = match &args.policy {
        Some(path) => {
            println!("policy: {}", path.display());
            Policy::from_file(path)?
        }
        None => {
            println!("policy: none given; the minimal policy the config needs");
            minimal.policy.clone()
        }
    };
    let mut findings = Findings::default();
    for note in &minimal.notes {
        println!("note: {note}");
        findings.unreachable += 1;
    }
    let client = HttpClient::for_policy(&policy);
    for origin in &minimal.policy.origins {
        check_origin(origin, &policy, &client, &mut findings);
    }
    check_local(&needs, &policy, &mut findings);
    let provider = provider.with_policy(policy);
    let auth = Auth::of(&config);
    let read = check_identity_token(&provider, &config, &auth, &mut findings);
    if args.exchange {
        check_exchange(&provider, &config, &auth, read, &mut findings);
    } else {
        println!(
            "\nexchange: not tried (--exchange tries it; it spends the identity token, which is single-use)"
        );
    }
    match (findings.denied, findings.unreachable) {
        (0, 0) => {
            println!("\nresult: everything the config needs is reachable and granted");
            Ok(())
        }
        (denied, unreachable) => Err(Failure::Doctor {
            denied,
            unreachable,
        }),
    }
}

fn check_origin(origin: &Origin, policy: &Policy, client: &HttpClient, findings: &mut Findings) {
    println!("\norigin {origin}");
    if policy.allows_origin(origin) {
        println!("  granted: yes");
    } else {
        println!("  granted: NO (add it to [http] allow_origins)");
        findings.denied += 1;
    }
    let route = match client.route(origin) {
        Ok(route) => route,
        Err(e) => {
            println!("  proxy: {e}");
            findings.unreachable += 1;
            return;
        }
    };
    match &route {
        Route::Direct(why) => println!("  proxy: none ({why})"),
        Route::Proxy { proxy, source } => println!("  proxy: {proxy} (from {source})"),
    }
    if let Err(problem) = check_connection(origin, &route, policy) {
        println!("  FAILED: {problem}");
        findings.unreachable += 1;
        return;
    }
    match http_status(origin, &route, client) {
        Ok(status) => println!("  HTTP: GET / answered {status} (request without credentials)"),
        Err(problem) => {
            println!("  HTTP: FAILED: {problem}");
            findings.unreachable += 1;
        }
    }
}

/// DNS, TCP and TLS, as far as the route allows doing them here.
fn check_connection(origin: &Origin, route: &Route, policy: &Policy) -> Result<(), String> {
    let timeout = policy.http_timeout;
    let (stream, tunneled) = match route {
        Route::Direct(_) => (connect(&origin.host, origin.port, timeout)?, false),
        Route::Proxy { proxy, .. } if proxy.scheme() == "http" => {
            println!("  DNS of {}: resolved by the proxy", origin.host);
            let mut stream = connect(proxy.host(), proxy.port(), timeout)?;
            tunnel(&mut stream, proxy, origin)?;
            (stream, true)
        }
        Route::Proxy { proxy, .. } => {
            println!(
                "  TLS: not inspected through a {} proxy; the HTTP check below goes through it",
                proxy.scheme()
            );
            return Ok(());
        }
    };
    if tunneled {
        println!("  tunnel: CONNECT {}:{} accepted", origin.host, origin.port);
    }
    if origin.scheme == "https" {
        check_tls(stream, origin, policy)?;
    }
    Ok(())
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("DNS: {host} was not found ({e})"))?
        .collect();
    let shown: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
    println!("  DNS of {host}: {}", shown.join(", "));
    let mut last = String::from("no address");
    for address in &addresses {
        let start = Instant::now();
        match TcpStream::connect_timeout(address, timeout) {
            Ok(stream) => {
                println!(
                    "  TCP: connected to {address} in {:.1} ms",
                    start.elapsed().as_secs_f64() * 1000.0
                );
                stream.set_read_timeout(Some(timeout)).ok();
                stream.set_write_timeout(Some(timeout)).ok();
                return Ok(stream);
            }
            Err(e) => last = format!("{address}: {e}"),
        }
    }
    Err(format!("TCP: cannot connect to {host}:{port} ({last})"))
}

/// Opens a CONNECT tunnel through an http proxy (credentials sent, never
/// shown).
fn tunnel(stream: &mut TcpStream, proxy: &ProxyUrl, origin: &Origin) -> Result<(), String> {
    let target = format!("{}:{}", origin.host, origin.port);
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(basic) = proxy.basic_credentials() {
        request.push_str(&format!("Proxy-Authorization: Basic {basic}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("proxy {proxy}: {e}"))?;
    let mut reader = BufReader::new(&mut *stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .map_err(|e| format!("proxy {proxy} did not answer CONNECT ({e})"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("proxy {proxy} did not answer CONNECT with HTTP"))?;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
            Err(e) => return Err(format!("proxy {proxy}: {e}")),
        }
    }
    if status / 100 != 2 {
        return Err(explain_connect_refusal(status, proxy, origin));
    }
    Ok(())
}

fn check_tls(mut stream: TcpStream, origin: &Origin, policy: &Policy) -> Result<(), String> {
    let seen = Arc::new(Mutex::new(None));
    let recorder = seen.clone();
    let config = tls::client_config_with(
        &policy.ca_files,
        move |inner| -> Arc<dyn ServerCertVerifier> {
            Arc::new(Recording {
                inner,
                leaf: recorder,
            })
        },
    )?;
    let bare = origin.host.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(bare.to_string())
        .map_err(|_| format!("TLS: {} is not a valid server name", origin.host))?;
    let mut connection =
        rustls::ClientConnection::new(config, name).map_err(|e| format!("TLS: {e}"))?;
    let result = connection.complete_io(&mut stream);
    if let Some(leaf) = seen.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
        print_leaf(leaf);
    }
    let roots = tls::roots_description(&policy.ca_files);
    match result {
        Ok(_) => {
            let version = connection
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "unknown".into());
            println!("  TLS: {version}, certificate verified against {roots}");
            Ok(())
        }
        Err(e) => {
            let message = match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                Some(tls_error) => explain_tls(tls_error, &origin.host),
                None => format!("TLS handshake with {} failed ({})", origin.host, e.kind()),
            };
            Err(format!("{message} [roots: {roots}]"))
        }
    }
}

fn print_leaf(der: &[u8]) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => {
            println!("  certificate subject: {}", cert.subject());
            println!("  certificate issuer: {}", cert.issuer());
            println!(
                "  certificate valid: {} to {}",
                cert.validity().not_before,
                cert.validity().not_after
            );
        }
        Err(_) => println!("  certificate: not parseable"),
    }
}

/// Wraps the real verifier and keeps the leaf certificate it was shown.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn ServerCertVerifier>,
    leaf: Arc<Mutex<Option<Vec<u8>>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(PoisonError::into_inner) = Some(end_entity.to_vec());
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `GET /` through the host's own client, without credentials.
fn http_status(origin: &Origin, route: &Route, client: &HttpClient) -> Result<u16, String> {
    let agent = client.agent(route).map_err(|e| e.to_string())?;
    agent
        .get(format!("{origin}/"))
        .call()
        .map(|response| response.status().as_u16())
        .map_err(|e| explain(&e, origin, route, client.timeout()).message)
}

fn check_local(needs: &Requirements, policy: &Policy, findings: &mut Findings) {
    if !needs.files.is_empty() {
        println!("\nfiles");
    }
    for entry in &needs.files {
        let Some(file) = Requirements::file_path(entry, env_var) else {
            println!("  {entry}: the variable is not set here, so no file is read");
            continue;
        };
        let path = Path::new(&file);
        let exists = path.is_file();
        let granted = match std::fs::canonicalize(path) {
            Ok(real) => policy.allows_file(&real),
            Err(_) => policy.allows_file_lexically(path),
        };
        report(&file, exists, granted, findings);
    }
    if !needs.env.is_empty() || !needs.optional_env.is_empty() {
        println!("\nenvironment variables");
    }
    for name in &needs.env {
        let set = std::env::var_os(name).is_some();
        report(name, set, policy.allows_env(name), findings);
    }
    for name in &needs.optional_env {
        let set = std::env::var_os(name).is_some();
        let granted = policy.allows_env(name);
        println!(
            "  {name}: {} (optional), {}",
            if set { "set" } else { "not set" },
            if granted { "granted" } else { "NOT GRANTED" }
        );
        if !granted {
            findings.denied += 1;
        }
    }
    if !needs.commands.is_empty() {
        println!("\ncommands");
    }
    for argv in &needs.commands {
        let found = argv.first().is_some_and(|program| on_path(program));
        report(
            &argv.join(" "),
            found,
            policy.allows_command(argv),
            findings,
        );
    }
}

fn report(what: &str, present: bool, granted: bool, findings: &mut Findings) {
    println!(
        "  {what}: {}, {}",
        if present { "present" } else { "MISSING" },
        if granted { "granted" } else { "NOT GRANTED" }
    );
    if !present {
        findings.unreachable += 1;
    }
    if !granted {
        findings.denied += 1;
    }
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// What doctor needs of the `auth` block besides the component's answers.
struct Auth {
    federation_rule_id: String,
    base_url: Option<String>,
    has_workspace: bool,
}

impl Auth {
    fn of(config_json: &str) -> Auth {
        let value: serde_json::Value = serde_json::from_str(config_json).unwrap_or_default();
        let block = &value["workload_identity_federation"];
        let text = |name: &str| block[name].as_str().map(str::to_string);
        Auth {
            federation_rule_id: text("federation_rule_id").unwrap_or_default(),
            base_url: text("base_url"),
            has_workspace: text("workspace_id").is_some(),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the identity token through the component and prints what it
/// says; returns its fingerprint.
fn check_identity_token(
    provider: &Provider,
    config: &str,
    auth: &Auth,
    findings: &mut Findings,
) -> Option<AssertionFingerprint> {
    println!("\nidentity token (read by the component as for an exchange; never shown)");
    let token = match provider.identity_token(config) {
        Ok(token) => token,
        Err(error) => {
            println!("  NOT READ: {error}");
            match error {
                // Already counted with the grants above.
                Error::Denied { .. } => {}
                _ => findings.unreachable += 1,
            }
            return None;
        }
    };
    let reading = claims::read(token.expose(), now_secs(), auth.base_url.as_deref());
    for line in &reading.lines {
        println!("  {line}");
    }
    for problem in &reading.problems {
        println!("  PROBLEM: {problem}");
        findings.unreachable += 1;
    }
    for warning in &reading.warnings {
        println!("  warning: {warning}");
    }
    let digest = Sha256::digest(token.expose().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    AssertionFingerprint::from_hex(&hex)
}

/// Exchanges the identity token (or finds a token in the token cache) and
/// explains a refusal.
fn check_exchange(
    provider: &Provider,
    config: &str,
    auth: &Auth,
    read: Option<AssertionFingerprint>,
    findings: &mut Findings,
) {
    println!("\nexchange");
    let started = now_secs();
    match provider.get_token(config) {
        Ok(token) => {
            if token.issued_at < started {
                println!(
                    "  not needed: the token cache holds an access token issued at {}",
                    claims::utc(token.issued_at)
                );
            } else {
                println!("  accepted: an access token was issued (not shown)");
            }
            println!(
                "  the access token expires at {}",
                claims::utc(token.expires_at)
            );
            match read {
                Some(read) if read == token.assertion => {
                    println!("  it was issued for the identity token read above")
                }
                Some(_) => println!(
                    "  it was issued for another identity token than the one read above (the \
                     source hands out a new one on each read, or the file was rotated since)"
                ),
                None => {}
            }
        }
        Err(Error::ExchangeRejected(rejection))
            if rejection.status == 401 || rejection.error.as_deref() == Some("invalid_grant") =>
        {
            println!("  REFUSED: {rejection}");
            explain_refusal(auth);
            findings.unreachable += 1;
        }
        Err(error) => {
            println!("  FAILED: {error}");
            match error {
                Error::Denied { .. } => findings.denied += 1,
                _ => findings.unreachable += 1,
            }
        }
    }
}

/// Where the reason of a refused exchange is visible, and what usually
/// causes it.
fn explain_refusal(auth: &Auth) {
    println!(
        "  why: the token endpoint does not say why it refuses an identity token (so that \
         nobody can probe a federation rule); the Claude Console does: the authentication \
         history of federation rule {} lists each refused exchange with its reason",
        auth.federation_rule_id
    );
    println!("  what usually causes it:");
    let mut causes = vec![
        "the token's iss, sub or aud do not match the federation rule: compare the claims \
         above with the rule's issuer and subject; aud must be https://api.anthropic.com",
        "the identity token expired before the exchange (exp above)",
        "the identity token was already exchanged (reason jti_reused): identity tokens are \
         single-use, so another process or an earlier run that sent this same token makes \
         this exchange fail; its issuer must hand out a new one for each exchange",
    ];
    if !auth.has_workspace {
        causes
            .push("the rule is enabled for several workspaces and the config sets no workspace_id");
    }
    for cause in causes {
        println!("  - {cause}");
    }
}
