//! HTTPS end to end on loopback: trust through `SSL_CERT_FILE` and
//! `[http] ca_files`, certificate failures each with its own error and no
//! request reaching the server, CONNECT proxies (credentials, refusals,
//! down, and an `https://` one), SOCKS5 proxies (with and without credentials), the loopback
//! bypass and a DNS failure. Variables are set only on `wif-host` child
//! processes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Command, Output};

use anthropic_wif_host::{Policy, Provider};
use anthropic_wif_loopback::{Reply, identity_endpoint, token_endpoint};
use anthropic_wif_test_support::network::{
    ConnectProxy, HttpsServer, ProxyMode, SocksProxy, SocksSeen, TestCa, TlsFront, Validity,
    base64_encode, closed_port,
};
use serde_json::json;

/// A JWT in shape with an audience and an expiry (in 2100), so that
/// `doctor` finds nothing to refuse in it.
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJuZXQiLCJhdWQiOiJodHRwczovL2FwaS5hbnRocm9waWMuY29tIiwiZXhwIjo0MTAyNDQ0ODAwfQ.bmV0";
const REQUEST_TOKEN: &str = "ghs_network_request_token";
/// A name only the test proxy resolves (to 127.0.0.1).
const PROXIED: &str = "token.corp.test";

fn config(base_url: &str, source: serde_json::Value) -> String {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_net",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": base_url,
            "identity_token": source,
        }
    })
    .to_string()
}

fn q(text: impl AsRef<str>) -> String {
    serde_json::to_string(text.as_ref()).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    ca: TestCa,
    token_file: std::path::PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("jwt");
        std::fs::write(&token_file, JWT).unwrap();
        Setup {
            dir,
            ca: TestCa::new("Corp Inspecting Proxy CA"),
            token_file,
        }
    }

    fn ca_file(&self) -> std::path::PathBuf {
        self.ca.write(self.dir.path(), "corp-ca.pem")
    }

    fn server(&self, names: &[&str], validity: Validity) -> HttpsServer {
        HttpsServer::start(self.ca.server_cert(names, validity), token_endpoint(3600))
    }

    /// A policy granting the token file and `origin`, plus `extra` lines in
    /// `[http]`.
    fn policy(&self, origin: &str, extra: &str) -> String {
        format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n{extra}\n",
            q(self.token_file.to_string_lossy()),
            q(origin)
        )
    }

    fn file_config(&self, base_url: &str) -> String {
        config(base_url, json!({"file": self.token_file}))
    }

    fn token(&self, policy: &str, base_url: &str) -> Result<String, String> {
        let provider = Provider::builder()
            .policy(Policy::from_toml(policy).unwrap())
            .build()
            .unwrap();
        provider
            .get_token(&self.file_config(base_url))
            .map(|t| t.token.expose().to_string())
            .map_err(|e| e.to_string())
    }
}

fn ca_files_line(path: &Path) -> String {
    format!("ca_files = [{}]", q(path.to_string_lossy()))
}

#[test]
fn a_private_ca_in_ca_files_is_trusted_for_the_token_endpoint_and_the_identity_url() {
    let setup = Setup::new();
    let token = setup.server(&["localhost"], Validity::Current);
    let identity = HttpsServer::start(
        setup.ca.server_cert(&["localhost"], Validity::Current),
        identity_endpoint(JWT, REQUEST_TOKEN),
    );
    let policy = format!(
        "[http]\nallow_origins = [{}, {}]\n{}\nproxy = \"none\"\n",
        q(format!("https://localhost:{}", token.port())),
        q(format!("https://localhost:{}", identity.port())),
        ca_files_line(&setup.ca_file())
    );
    let provider = Provider::builder()
        .policy(Policy::from_toml(&policy).unwrap())
        .build()
        .unwrap();
    let source = json!({
        "url": format!("https://localhost:{}/id?audience=anthropic", identity.port()),
        "headers": {"Authorization": format!("bearer {REQUEST_TOKEN}")},
        "response_field": "value",
    });
    let minted = provider
        .get_token(&config(
            &format!("https://localhost:{}", token.port()),
            source,
        ))
        .unwrap();
    assert_eq!(minted.token.expose(), "sk-ant-oat01-demo-1");
    assert_eq!(identity.requests().len(), 1);
    let exchanged: serde_json::Value = serde_json::from_slice(&token.requests()[0].body).unwrap();
    assert_eq!(exchanged["assertion"], JWT);
}

#[test]
fn certificate_failures_each_say_what_happened_and_reach_no_handler() {
    let setup = Setup::new();
    let ca_file = setup.ca_file();
    let stranger = TestCa::new("Some Other CA");
    let cases: Vec<(&str, HttpsServer, String, &[&str])> = vec![
        (
            "unknown issuer",
            HttpsServer::start(
                stranger.server_cert(&["localhost"], Validity::Current),
                token_endpoint(3600),
            ),
            ca_files_line(&ca_file),
            &[
                "unknown issuer",
                "SSL_CERT_FILE",
                "ca_files",
                "TLS-inspecting proxy",
            ],
        ),
        (
            "wrong name",
            setup.server(&["somewhere-else.test"], Validity::Current),
            ca_files_line(&ca_file),
            &["not valid for the name localhost", "name mismatch"],
        ),
        (
            "expired",
            setup.server(&["localhost"], Validity::Expired),
            ca_files_line(&ca_file),
            &["has expired"],
        ),
    ];
    for (case, server, extra, expected) in cases {
        let origin = format!("https://localhost:{}", server.port());
        let error = setup
            .token(&setup.policy(&origin, &extra), &origin)
            .unwrap_err();
        for words in expected {
            assert!(error.contains(words), "{case}: `{words}` not in: {error}");
        }
        assert_eq!(
            server.requests().len(),
            0,
            "{case}: a request reached the handler"
        );
    }
}

#[test]
fn a_private_ca_is_unknown_without_ca_files_or_ssl_cert_file() {
    let setup = Setup::new();
    let server = setup.server(&["localhost"], Validity::Current);
    let origin = format!("https://localhost:{}", server.port());
    let error = setup
        .token(&setup.policy(&origin, ""), &origin)
        .unwrap_err();
    assert!(error.contains("unknown issuer"), "{error}");
    assert!(server.requests().is_empty());
}

fn wif_host(args: &[&str], envs: &[(&str, String)], dir: &Path) -> Output {
    wif_host_command(args, envs, dir).output().unwrap()
}

/// `wif-host ARGS` with its cache in `dir`, none of this process's proxy,
/// TLS or SDK variables, and `envs`.
fn wif_host_command(args: &[&str], envs: &[(&str, String)], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command.args(args).env("XDG_CACHE_HOME", dir.join("cache"));
    for name in anthropic_wif_host::net::proxy::PROXY_VARIABLES
        .iter()
        .chain(&["SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY"])
    {
        command.env_remove(name);
    }
    for name in anthropic_wif_host::config_file::SDK_VARIABLES {
        command.env_remove(name);
    }
    command.envs(envs.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn ssl_cert_file_replaces_the_system_roots_for_wif_host() {
    let setup = Setup::new();
    let server = setup.server(&["localhost"], Validity::Current);
    let origin = format!("https://localhost:{}", server.port());
    let dir = setup.dir.path();
    let config = write(dir, "config.json", &setup.file_config(&origin));
    let policy = write(dir, "policy.toml", &setup.policy(&origin, ""));
    let args = [
        "token",
        "--no-cache",
        "--config",
        &config,
        "--policy",
        &policy,
    ];

    let untrusted = wif_host(&args, &[], dir);
    assert!(!untrusted.status.success());
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(stderr.contains("unknown issuer"), "{stderr}");
    assert!(server.requests().is_empty());

    let ca = setup.ca_file().to_string_lossy().into_owned();
    let trusted = wif_host(&args, &[("SSL_CERT_FILE", ca)], dir);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&trusted.stdout).trim(),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(server.requests().len(), 1);
}

fn tunnel(credentials: Option<&str>) -> ConnectProxy {
    ConnectProxy::start(ProxyMode::Tunnel {
        hosts: HashMap::from([(PROXIED.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))]),
        credentials: credentials.map(str::to_string),
    })
}

#[test]
fn https_proxy_from_the_environment_carries_percent_decoded_credentials_on_connect() {
    let setup = Setup::new();
    let server = setup.server(&[PROXIED], Validity::Current);
    let proxy = tunnel(Some("corp@user:pa:ss"));
    let origin = format!("https://{PROXIED}:{}", server.port());
    let dir = setup.dir.path();
    let config = write(dir, "config.json", &setup.file_config(&origin));
    let policy = write(
        dir,
        "policy.toml",
        &setup.policy(&origin, &ca_files_line(&setup.ca_file())),
    );
    let proxy_url = format!("http://corp%40user:pa%3Ass@127.0.0.1:{}", proxy.port());
    let out = wif_host(
        &[
            "token",
            "--no-cache",
            "--config",
            &config,
            "--policy",
            &policy,
        ],
        &[
            ("https_proxy", proxy_url),
            ("no_proxy", " other.test , 10.0.0.0/8 ".into()),
        ],
        dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sk-ant-oat01-demo-1"
    );
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT {PROXIED}:{} HTTP/1.1", server.port())
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Basic {}", base64_encode(b"corp@user:pa:ss")).as_str())
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_pinned_proxy_tunnels_and_loopback_bypasses_it() {
    let setup = Setup::new();
    let ca = ca_files_line(&setup.ca_file());
    let proxied_server = setup.server(&[PROXIED], Validity::Current);
    let proxy = tunnel(Some("svc:s3cret-proxy-pass"));
    let pinned = format!(
        "{ca}\nproxy = {}",
        q(format!(
            "http://svc:s3cret-proxy-pass@127.0.0.1:{}",
            proxy.port()
        ))
    );
    let origin = format!("https://{PROXIED}:{}", proxied_server.port());
    assert_eq!(
        setup
            .token(&setup.policy(&origin, &pinned), &origin)
            .unwrap(),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(proxy.seen().len(), 1);

    let local_server = setup.server(&["localhost"], Validity::Current);
    let local = format!("https://localhost:{}", local_server.port());
    assert!(setup.token(&setup.policy(&local, &pinned), &local).is_ok());
    assert_eq!(proxy.seen().len(), 1, "loopback went through the proxy");
    assert_eq!(local_server.requests().len(), 1);
}

#[test]
fn an_https_proxy_is_reached_over_tls_trusted_through_ca_files() {
    let setup = Setup::new();
    let server = setup.server(&[PROXIED], Validity::Current);
    let proxy = tunnel(Some("svc:tls-proxy-pass"));
    let front = TlsFront::start(
        setup.ca.server_cert(&["127.0.0.1"], Validity::Current),
        proxy.port(),
    );
    let origin = format!("https://{PROXIED}:{}", server.port());
    let proxy_line = format!(
        "proxy = {}",
        q(format!(
            "https://svc:tls-proxy-pass@127.0.0.1:{}",
            front.port()
        ))
    );

    // The proxy's certificate comes from the private CA too: without
    // `ca_files` it is unknown, and nothing reaches the proxy or the server.
    let error = setup
        .token(&setup.policy(&origin, &proxy_line), &origin)
        .unwrap_err();
    assert!(!error.contains("tls-proxy-pass"), "{error}");
    assert!(
        error.contains(&format!(
            "proxy https://127.0.0.1:{}: TLS: the certificate of 127.0.0.1 is signed by an unknown certificate authority",
            front.port()
        )),
        "the proxy's certificate, not the destination's: {error}"
    );
    assert_eq!((front.handshakes(), proxy.seen().len()), (0, 0), "{error}");

    let trusted = format!("{}\n{proxy_line}", ca_files_line(&setup.ca_file()));
    assert_eq!(
        setup
            .token(&setup.policy(&origin, &trusted), &origin)
            .unwrap(),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(front.handshakes(), 1, "TLS to the proxy");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].request_line,
        format!("CONNECT {PROXIED}:{} HTTP/1.1", server.port())
    );
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("Basic {}", base64_encode(b"svc:tls-proxy-pass")).as_str())
    );
    assert_eq!(server.requests().len(), 1);
}

/// Runs `wif-host gateway` for `origin` on a Unix socket under the policy
/// lines `network`, sends it one Messages request and returns the answer
/// (required to be a 200).
fn post_through_gateway(setup: &Setup, origin: &str, network: &str) -> String {
    let dir = setup.dir.path();
    let config = write(dir, "config.json", &setup.file_config(origin));
    let policy = write(dir, "policy.toml", &setup.policy(origin, network));
    let socket = dir.join("gateway.sock");
    let listen = format!("unix:{}", socket.display());
    let key_file = dir.join("gateway.key");
    let key_arg = key_file.to_string_lossy().into_owned();
    let mut gateway = wif_host_command(
        &[
            "gateway",
            "--config",
            &config,
            "--policy",
            &policy,
            "--listen",
            &listen,
            "--client-key-file",
            &key_arg,
        ],
        &[],
        dir,
    )
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    while !socket.exists() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let answer = std::os::unix::net::UnixStream::connect(&socket).map(|mut stream| {
        let key = std::fs::read_to_string(&key_file).unwrap();
        write!(
            stream,
            "POST /v1/messages HTTP/1.1\r\nhost: localhost\r\nx-api-key: {}\r\n\
             content-length: 2\r\nconnection: close\r\n\r\n{{}}",
            key.trim()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    gateway.kill().unwrap();
    let stderr = gateway.wait_with_output().unwrap().stderr;
    let stderr = String::from_utf8_lossy(&stderr);
    let answer = answer.unwrap_or_else(|e| panic!("the gateway did not listen ({e}): {stderr}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}\n{stderr}");
    answer
}

/// The TLS stand-in for the API behind a proxy: the token endpoint and a
/// Messages API.
fn api_behind_a_proxy(setup: &Setup) -> HttpsServer {
    let issue = token_endpoint(3600);
    HttpsServer::start(
        setup.ca.server_cert(&[PROXIED], Validity::Current),
        move |request| match request.path.as_str() {
            "/v1/oauth/token" => issue(request),
            _ => Reply::json(200, &json!({"id": "msg_through_the_proxy"})),
        },
    )
}

/// The policy lines that trust the setup's CA and send everything through
/// `proxy_url`.
fn through_proxy(setup: &Setup, proxy_url: String) -> String {
    format!(
        "{}\nproxy = {}",
        ca_files_line(&setup.ca_file()),
        q(proxy_url)
    )
}

/// The API stand-in saw the exchange, then the Messages request.
fn assert_exchange_then_message(server: &HttpsServer) {
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v1/oauth/token", "/v1/messages"]);
}

#[test]
fn the_gateway_reaches_the_api_through_an_https_proxy_with_credentials() {
    let setup = Setup::new();
    let server = api_behind_a_proxy(&setup);
    let proxy = tunnel(Some("svc:tls-proxy-pass"));
    let front = TlsFront::start(
        setup.ca.server_cert(&["127.0.0.1"], Validity::Current),
        proxy.port(),
    );
    let origin = format!("https://{PROXIED}:{}", server.port());
    let pinned = through_proxy(
        &setup,
        format!("https://svc:tls-proxy-pass@127.0.0.1:{}", front.port()),
    );
    let answer = post_through_gateway(&setup, &origin, &pinned);
    assert!(answer.contains("msg_through_the_proxy"), "{answer}");
    assert_eq!(front.handshakes(), 2, "TLS to the proxy, for each client");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "the exchange and the API request: {seen:?}");
    for connect in &seen {
        assert_eq!(
            connect.request_line,
            format!("CONNECT {PROXIED}:{} HTTP/1.1", server.port())
        );
        assert_eq!(
            connect.authorization.as_deref(),
            Some(format!("Basic {}", base64_encode(b"svc:tls-proxy-pass")).as_str())
        );
    }
    assert_exchange_then_message(&server);
}

#[test]
fn the_gateway_reaches_the_api_through_a_socks5h_proxy_with_credentials() {
    let setup = Setup::new();
    let server = api_behind_a_proxy(&setup);
    let proxy = SocksProxy::start(
        only_the_proxy_resolves_the_proxied_name(),
        Some(("svc", "s0cks-pass")),
    );
    let origin = format!("https://{PROXIED}:{}", server.port());
    let pinned = through_proxy(
        &setup,
        format!("socks5h://svc:s0cks-pass@127.0.0.1:{}", proxy.port()),
    );
    let answer = post_through_gateway(&setup, &origin, &pinned);
    assert!(answer.contains("msg_through_the_proxy"), "{answer}");
    let through = SocksSeen {
        destination: format!("{PROXIED}:{}", server.port()),
        credentials: Some(("svc".into(), "s0cks-pass".into())),
    };
    assert_eq!(
        proxy.seen(),
        [through.clone(), through],
        "the exchange and the API request, each by name"
    );
    assert_exchange_then_message(&server);
}

#[test]
fn the_gateway_reaches_the_api_through_the_policys_proxy_and_ca_files() {
    let setup = Setup::new();
    let server = api_behind_a_proxy(&setup);
    let proxy = tunnel(None);
    let origin = format!("https://{PROXIED}:{}", server.port());
    let pinned = through_proxy(&setup, format!("http://127.0.0.1:{}", proxy.port()));
    let answer = post_through_gateway(&setup, &origin, &pinned);
    assert!(answer.contains("msg_through_the_proxy"), "{answer}");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "the exchange and the API request: {seen:?}");
    for connect in &seen {
        assert_eq!(
            connect.request_line,
            format!("CONNECT {PROXIED}:{} HTTP/1.1", server.port())
        );
    }
    let requests = server.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/v1/oauth/token", "/v1/messages"]);
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer sk-ant-oat01-demo-1")
    );
}

#[test]
fn proxy_refusals_and_a_proxy_that_is_down_name_the_proxy_but_not_its_credentials() {
    let setup = Setup::new();
    let ca = ca_files_line(&setup.ca_file());
    let server = setup.server(&[PROXIED], Validity::Current);
    let origin = format!("https://{PROXIED}:{}", server.port());
    let needs_auth = tunnel(Some("svc:right"));
    let forbids = ConnectProxy::start(ProxyMode::Refuse(403));
    let down = closed_port();
    let cases = [
        (
            needs_auth.port(),
            "svc:wrong-pass@",
            "407 Proxy Authentication Required",
        ),
        (needs_auth.port(), "", "put credentials in the proxy URL"),
        (forbids.port(), "svc:wrong-pass@", "403 Forbidden"),
        (down, "svc:wrong-pass@", "is unreachable"),
    ];
    for (port, credentials, expected) in cases {
        let pinned = format!(
            "{ca}\nproxy = {}",
            q(format!("http://{credentials}127.0.0.1:{port}"))
        );
        let error = setup
            .token(&setup.policy(&origin, &pinned), &origin)
            .unwrap_err();
        assert!(error.contains(expected), "`{expected}` not in: {error}");
        assert!(
            error.contains(&format!("proxy http://127.0.0.1:{port}")),
            "{error}"
        );
        assert!(
            !error.contains("wrong-pass") && !error.contains("svc"),
            "{error}"
        );
    }
    assert_eq!(server.requests().len(), 0);
}

#[test]
fn doctor_reports_dns_tcp_tls_and_http_for_each_origin_and_the_grants() {
    let setup = Setup::new();
    let server = setup.server(&["localhost"], Validity::Current);
    let origin = format!("https://localhost:{}", server.port());
    let dir = setup.dir.path();
    let config = write(dir, "config.json", &setup.file_config(&origin));
    let policy = write(dir, "policy.toml", &setup.policy(&origin, ""));
    let args = ["doctor", "--config", &config, "--policy", &policy];
    let ca = setup.ca_file().to_string_lossy().into_owned();

    let healthy = wif_host(&args, &[("SSL_CERT_FILE", ca.clone())], dir);
    let stdout = String::from_utf8_lossy(&healthy.stdout);
    assert!(
        healthy.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&healthy.stderr)
    );
    for expected in [
        &format!("origin {origin}"),
        "granted: yes",
        "proxy: none (loopback and link-local destinations are never proxied)",
        "DNS of localhost:",
        "TCP: connected to 127.0.0.1:",
        "certificate subject: CN=localhost",
        "certificate issuer: CN=Corp Inspecting Proxy CA",
        &format!("certificate verified against SSL_CERT_FILE={ca}"),
        "HTTP: GET / answered 400",
        &format!("{}: present, granted", setup.token_file.display()),
    ] {
        assert!(stdout.contains(expected), "`{expected}` not in:\n{stdout}");
    }
    assert!(
        stdout.contains("TLSv1_3") || stdout.contains("TLSv1_2"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(JWT),
        "doctor printed the token file's contents"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "only the HTTP check reaches the server");
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("GET", "/")
    );
    assert!(requests[0].header("authorization").is_none());

    let untrusted = wif_host(&args, &[], dir);
    let stdout = String::from_utf8_lossy(&untrusted.stdout);
    assert_eq!(untrusted.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("unknown issuer"), "{stdout}");
    assert!(
        stdout.contains("certificate issuer: CN=Corp Inspecting Proxy CA"),
        "{stdout}"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "no request after a failed handshake"
    );

    let stingy = write(
        dir,
        "stingy.toml",
        &format!("[http]\nallow_origins = [{}]\n", q(&origin)),
    );
    let denied = wif_host(
        &["doctor", "--config", &config, "--policy", &stingy],
        &[("SSL_CERT_FILE", ca)],
        dir,
    );
    let stdout = String::from_utf8_lossy(&denied.stdout);
    assert_eq!(denied.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}: present, NOT GRANTED",
            setup.token_file.display()
        )),
        "{stdout}"
    );
}

#[test]
fn an_unresolvable_token_endpoint_is_a_dns_failure_naming_the_host() {
    let setup = Setup::new();
    // `.invalid` never resolves (RFC 2606): the lookup fails on this machine.
    let origin = "https://wif-test.invalid";
    let error = setup
        .token(&setup.policy(origin, "proxy = \"none\""), origin)
        .unwrap_err();
    assert!(
        error.contains("DNS: the host wif-test.invalid was not found")
            || error.contains("DNS: no answer for the host wif-test.invalid"),
        "{error}"
    );
}

fn only_the_proxy_resolves_the_proxied_name() -> HashMap<String, IpAddr> {
    HashMap::from([(PROXIED.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))])
}

#[test]
fn a_pinned_socks5h_proxy_with_credentials_carries_the_token_request_by_name() {
    let setup = Setup::new();
    let server = setup.server(&[PROXIED], Validity::Current);
    let proxy = SocksProxy::start(
        only_the_proxy_resolves_the_proxied_name(),
        Some(("svc", "s0cks-pass")),
    );
    let origin = format!("https://{PROXIED}:{}", server.port());
    let pinned = through_proxy(
        &setup,
        format!("socks5h://svc:s0cks-pass@127.0.0.1:{}", proxy.port()),
    );
    assert_eq!(
        setup
            .token(&setup.policy(&origin, &pinned), &origin)
            .unwrap(),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(
        proxy.seen(),
        [SocksSeen {
            destination: format!("{PROXIED}:{}", server.port()),
            credentials: Some(("svc".into(), "s0cks-pass".into())),
        }]
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/oauth/token");
}

#[test]
fn all_proxy_names_a_socks5h_proxy_without_authentication_for_wif_host() {
    let setup = Setup::new();
    let server = setup.server(&[PROXIED], Validity::Current);
    let proxy = SocksProxy::start(only_the_proxy_resolves_the_proxied_name(), None);
    let origin = format!("https://{PROXIED}:{}", server.port());
    let dir = setup.dir.path();
    let config = write(dir, "config.json", &setup.file_config(&origin));
    let policy = write(
        dir,
        "policy.toml",
        &setup.policy(&origin, &ca_files_line(&setup.ca_file())),
    );
    let out = wif_host(
        &[
            "token",
            "--no-cache",
            "--config",
            &config,
            "--policy",
            &policy,
        ],
        &[("ALL_PROXY", format!("socks5h://127.0.0.1:{}", proxy.port()))],
        dir,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sk-ant-oat01-demo-1"
    );
    assert_eq!(
        proxy.seen(),
        [SocksSeen {
            destination: format!("{PROXIED}:{}", server.port()),
            credentials: None,
        }]
    );
    assert_eq!(server.requests().len(), 1);
}
