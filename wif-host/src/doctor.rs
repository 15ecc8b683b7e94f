//! `wif-host doctor`: why a network (or a grant) fails here, in one
//! command.
//!
//! For each origin the config needs: whether the policy grants it, the
//! proxy chosen (or why none), the DNS answer, the TCP connect time, the
//! TLS version, the leaf certificate (subject, issuer, expiry) and whether
//! it verified against which roots, and the HTTP status of a `GET /` that
//! carries no secret. Then the files, variables and commands the config
//! needs: whether each exists and is granted, never their contents. The
//! exit code is non-zero when anything needed is unreachable or denied.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anthropic_wif_host::net::errors::{explain, explain_connect_refusal, explain_tls};
use anthropic_wif_host::net::proxy::{ProxyUrl, Route};
use anthropic_wif_host::net::{HttpClient, tls};
use anthropic_wif_host::policy::Origin;
use anthropic_wif_host::{Policy, Requirements};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{ConfigArgs, Failure, builder, env_var, in_file, user_cache};

/// The arguments of `wif-host doctor`.
#[derive(clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Policy file (TOML). Without it, the minimal policy the config needs.
    #[arg(long)]
    policy: Option<PathBuf>,
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
    let provider = builder(user_cache().as_deref()).build()?;
    let needs = provider
        .requirements(&located.json())
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
