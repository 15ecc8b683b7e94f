use std::io::ErrorKind;
use std::net::TcpListener;

use super::*;
use anthropic_wif_loopback::{LoopbackServer, Reply};

fn policy_for(port: u16) -> Policy {
    Policy::from_toml(&format!(
        "[http]\nallow_origins = [\"http://127.0.0.1:{port}\"]\n"
    ))
    .expect("a valid policy")
}

fn get(port: u16, headers: &[(&str, &str)]) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        url: format!("http://127.0.0.1:{port}/token"),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: (*name).into(),
                value: (*value).into(),
            })
            .collect(),
        body: Vec::new(),
    }
}

/// Whether a connection is waiting on `listener` (the kernel completes the
/// handshake before `accept`, so a client that connected is always seen).
fn was_contacted(listener: &TcpListener) -> bool {
    listener.set_nonblocking(true).expect("non-blocking");
    match listener.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept failed: {e}"),
    }
}

/// Issue 14, item 3: the host refuses the headers the HTTP client sets,
/// whatever component asks, before it connects.
#[test]
fn transport_headers_are_refused_before_any_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let policy = policy_for(port);
    let client = HttpClient::for_policy(&policy);
    for (name, value) in [
        ("Host", "internal-admin.svc"),
        ("host", "internal-admin.svc"),
        ("Content-Length", "40"),
        ("Transfer-Encoding", "gzip, chunked"),
        ("Connection", "upgrade"),
        ("Upgrade", "websocket"),
        ("TE", "trailers"),
        ("Trailer", "X"),
        ("Expect", "100-continue"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic eA=="),
        ("PROXY-CONNECTION", "keep-alive"),
    ] {
        match fetch(
            &policy,
            &client,
            get(port, &[("accept", "*/*"), (name, value)]),
        ) {
            Err(CapError::Denied(detail)) => {
                assert!(detail.contains(name), "{name}: {detail}");
                assert!(detail.contains("set by the HTTP client"), "{detail}");
                assert!(!detail.contains(value), "{name}: {detail}");
            }
            other => panic!("{name}: expected a denial, got {other:?}"),
        }
    }
    for (name, value) in [
        ("Bad Name", "v"),
        ("A:B", "v"),
        ("", "v"),
        ("X", "a\r\nHost: b"),
    ] {
        match fetch(&policy, &client, get(port, &[(name, value)])) {
            Err(CapError::Failed(detail)) => assert!(detail.contains("header"), "{detail}"),
            other => panic!("{name:?}: expected a failure, got {other:?}"),
        }
    }
    assert!(!was_contacted(&listener), "a refused request connected");
}

#[test]
fn ordinary_headers_reach_the_server() {
    let server = LoopbackServer::start(|_| Reply::text(200, "ok")).expect("a server");
    let policy = policy_for(server.port());
    let response = fetch(
        &policy,
        &HttpClient::for_policy(&policy),
        get(
            server.port(),
            &[
                ("Authorization", "bearer x"),
                ("X-Host", "y"),
                ("Proxy", "z"),
            ],
        ),
    )
    .expect("an answer");
    assert_eq!(response.status, 200);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), Some("bearer x"));
    assert_eq!(requests[0].header("x-host"), Some("y"));
    assert_eq!(
        requests[0].header("host"),
        Some(format!("127.0.0.1:{}", server.port()).as_str())
    );
}
