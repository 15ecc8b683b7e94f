//! `wif-host gateway` end to end: the real binary between a raw HTTP
//! client and a loopback stand-in that is both the token endpoint and the
//! API. The harness here is shared with `gateway_attacks`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the stand-in saw of one API request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the stand-in answers `/v1/messages`.
#[derive(Clone, Copy)]
pub enum Api {
    /// 200 with the bearer token as text.
    Echo,
    /// 401 to the first token, 200 to later ones.
    RejectFirstToken,
    /// Server-sent events in parts, each part sent only once the test says
    /// the client received the previous one.
    GatedEvents(&'static [&'static str]),
}

pub struct StandIn {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The request line of every request that reached the API, read whole
    /// or not.
    arrived: Arc<Mutex<Vec<String>>>,
    pub release: mpsc::Sender<()>,
}

fn read_request(
    stream: &mut BufReader<TcpStream>,
    arrived: &Mutex<Vec<String>>,
) -> Option<(String, Seen)> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
    if path != "/v1/oauth/token" {
        arrived.lock().unwrap().push(line.trim_end().to_string());
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        stream.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    Some((path, Seen { headers, body }))
}

/// A Messages API answer whose text is `text`.
fn message(text: &str) -> String {
    json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}})
    .to_string()
}

fn reply(stream: &mut TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl StandIn {
    pub fn start(api: Api) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let issued = Arc::new(Mutex::new(0u32));
        {
            let (seen, arrived) = (seen.clone(), arrived.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (seen, gate, issued) = (seen.clone(), gate.clone(), issued.clone());
                    let arrived = arrived.clone();
                    std::thread::spawn(move || {
                        let mut writer = stream.try_clone().unwrap();
                        let mut reader = BufReader::new(stream);
                        let Some((path, seen_now)) = read_request(&mut reader, &arrived) else {
                            return;
                        };
                        if path == "/v1/oauth/token" {
                            let n = {
                                let mut issued = issued.lock().unwrap();
                                *issued += 1;
                                *issued
                            };
                            let token = json!({"access_token": format!("sk-ant-oat01-proxy-{n}"),
                                "expires_in": 3600, "token_type": "Bearer"});
                            return reply(&mut writer, 200, &token.to_string());
                        }
                        let bearer = seen_now
                            .header("authorization")
                            .unwrap_or_default()
                            .to_string();
                        seen.lock().unwrap().push(seen_now);
                        match api {
                            Api::Echo => reply(&mut writer, 200, &message(&bearer)),
                            Api::RejectFirstToken if bearer.ends_with("-1") => reply(
                                &mut writer,
                                401,
                                r#"{"type":"error","error":{"type":"authentication_error","message":"expired"}}"#,
                            ),
                            Api::RejectFirstToken => reply(&mut writer, 200, &message(&bearer)),
                            Api::GatedEvents(parts) => {
                                let _ = write!(
                                    writer,
                                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
                                );
                                for (i, part) in parts.iter().enumerate() {
                                    let _ = writer.write_all(part.as_bytes());
                                    let _ = writer.flush();
                                    if i + 1 < parts.len()
                                        && gate
                                            .lock()
                                            .unwrap()
                                            .recv_timeout(Duration::from_secs(120))
                                            .is_err()
                                    {
                                        return;
                                    }
                                }
                            }
                        }
                    });
                }
            });
        }
        StandIn {
            url,
            seen,
            arrived,
            release,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The request lines that reached the API (not the token endpoint).
    pub fn arrived(&self) -> Vec<String> {
        self.arrived.lock().unwrap().clone()
    }
}

pub struct Gateway {
    pub child: Child,
    /// `127.0.0.1:PORT`, or empty for a Unix socket.
    pub address: String,
    /// The client key.
    pub key: String,
    /// Where the gateway's stderr goes.
    pub log: PathBuf,
    _root: tempfile::TempDir,
}

impl Gateway {
    /// A gateway on a free loopback port forwarding to `upstream`, once it
    /// listens and its key file exists.
    pub fn start(upstream: &str) -> Gateway {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let gateway = Gateway::spawn(upstream, &address, address.clone(), |_| {});
        let start = Instant::now();
        while TcpStream::connect(&gateway.address).is_err() {
            assert!(
                start.elapsed() < PATIENCE,
                "the gateway never listened: {}",
                gateway.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        gateway
    }

    /// Spawns `wif-host gateway --listen LISTEN --client-key-file
    /// ROOT/client.key` with `WIF_LOG=info`, its stderr in ROOT/stderr.log;
    /// `address` is what the test connects to; `adjust` changes the
    /// command before it starts. Waits for the key file.
    pub fn spawn(
        upstream: &str,
        listen: &str,
        address: String,
        adjust: impl FnOnce(&mut Command),
    ) -> Gateway {
        let root = tempfile::tempdir().unwrap();
        let log = root.path().join("stderr.log");
        let key_file = root.path().join("client.key");
        let mut command = gateway_command(upstream, listen, root.path());
        command.arg("--client-key-file").arg(&key_file);
        adjust(&mut command);
        command
            .env("WIF_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command.spawn().unwrap();
        let start = Instant::now();
        let key = loop {
            if let Ok(key) = std::fs::read_to_string(&key_file)
                && key.ends_with('\n')
            {
                break key.trim().to_string();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no key file: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Gateway {
            child,
            address,
            key,
            log,
            _root: root,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the gateway wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `Host: 127.0.0.1:PORT`, for raw requests.
    pub fn host(&self) -> String {
        format!("host: {}\r\n", self.address)
    }

    /// `x-api-key: KEY`, for raw requests.
    pub fn api_key(&self) -> String {
        format!("x-api-key: {}\r\n", self.key)
    }
}

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `wif-host gateway --listen LISTEN` forwarding to `upstream`, with its
/// config, identity token and HOME in `root`.
pub fn gateway_command(upstream: &str, listen: &str, root: &Path) -> Command {
    let config = crate::support::write_auth_config(root, upstream, "fdrl_proxy", Value::Null);
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command
        .args(["gateway", "--listen", listen, "--config"])
        .arg(&config)
        .env_clear()
        .env("HOME", root);
    command
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request (`head` without its blank line, a content-length
/// added) on a new connection; the response's head and a reader on the
/// rest.
pub fn send(gateway: &Gateway, head: &str, body: &str) -> (String, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(&gateway.address).unwrap();
    write!(stream, "{head}content-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(stream);
    (read_response_head(&mut reader), reader)
}

/// Sends raw bytes on a new connection and reads until the gateway closes
/// it (the request should say `connection: close`), at most [`PATIENCE`].
pub fn exchange_raw(gateway: &Gateway, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(&gateway.address).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

pub fn read_chunked(reader: &mut impl BufRead) -> String {
    let mut body = String::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        if size == 0 {
            return body;
        }
        body.push_str(std::str::from_utf8(&chunk[..size]).unwrap());
    }
}

/// Reads a body of `content-length` bytes as the head says.
pub fn read_sized(head: &str, reader: &mut impl BufRead) -> String {
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// A Messages request head with the client key as `x-api-key`, the
/// client's own credentials-looking headers and hop-by-hop ones.
fn messages(gateway: &Gateway) -> String {
    format!(
        "POST /v1/messages HTTP/1.1\r\n{}{}anthropic-beta: tools-2024-04-04\r\n\
         connection: keep-alive, x-private\r\nx-private: hop\r\ncontent-type: application/json\r\n",
        gateway.host(),
        gateway.api_key()
    )
}

/// Every header the stand-in saw, one per line.
fn all_headers(seen: &Seen) -> String {
    seen.headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect()
}

#[test]
fn the_client_key_is_replaced_by_the_token_and_the_beta_merged() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let (head, mut reader) = send(&gateway, &messages(&gateway), r#"{"model":"m"}"#);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_chunked(&mut reader).contains(r#""text":"Bearer sk-ant-oat01-proxy-1""#));
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-ant-oat01-proxy-1")
    );
    assert_eq!(
        seen[0].header("anthropic-beta"),
        Some("tools-2024-04-04,oauth-2025-04-20")
    );
    assert_eq!(seen[0].header("x-api-key"), None);
    assert_eq!(
        seen[0].header("x-private"),
        None,
        "a header the client's Connection lists is hop-by-hop"
    );
    assert_eq!(seen[0].body, br#"{"model":"m"}"#);
    let all = all_headers(&seen[0]);
    assert!(!all.contains(&gateway.key), "{all}");
    assert!(!gateway.log().contains(&gateway.key), "{}", gateway.log());
}

#[test]
fn the_client_key_as_a_bearer_token_is_admitted_and_not_forwarded() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\n{}authorization: Bearer {}\r\n",
        gateway.host(),
        gateway.key
    );
    let (head, mut reader) = send(&gateway, &head, "{}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_chunked(&mut reader).contains("Bearer sk-ant-oat01-proxy-1"));
    let seen = api.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-ant-oat01-proxy-1")
    );
    assert!(!all_headers(&seen[0]).contains(&gateway.key));
}

#[test]
fn a_missing_or_wrong_key_is_401_and_nothing_goes_upstream() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let wrong = format!("{}x", gateway.key);
    for credentials in [
        String::new(),
        "x-api-key: placeholder\r\n".to_string(),
        format!("x-api-key: {wrong}\r\n"),
        format!("authorization: Bearer {wrong}\r\n"),
        format!("authorization: {}\r\n", gateway.key),
        format!("x-api-key: {}\r\n", &gateway.key[..gateway.key.len() - 1]),
    ] {
        let head = format!(
            "POST /v1/messages HTTP/1.1\r\n{}{credentials}",
            gateway.host()
        );
        let (head, mut reader) = send(&gateway, &head, r#"{"model":"m"}"#);
        assert!(head.starts_with("HTTP/1.1 401"), "{credentials}: {head}");
        let body: Value = serde_json::from_str(&read_sized(&head, &mut reader)).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("client key"),
            "{body}"
        );
    }
    assert!(api.arrived().is_empty(), "{:?}", api.arrived());
    let log = gateway.log();
    assert!(log.contains("status=401"), "{log}");
    assert!(!log.contains(&gateway.key[8..]), "{log}");
}

#[test]
fn paths_outside_v1_are_not_forwarded() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let head = format!(
        "GET /admin HTTP/1.1\r\n{}{}",
        gateway.host(),
        gateway.api_key()
    );
    let (head, _) = send(&gateway, &head, "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(api.arrived().is_empty());
}

#[test]
fn an_upstream_401_is_replayed_once_with_a_new_token() {
    let api = StandIn::start(Api::RejectFirstToken);
    let gateway = Gateway::start(&api.url);
    let (head, mut reader) = send(&gateway, &messages(&gateway), r#"{"model":"replay"}"#);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_chunked(&mut reader).contains(r#""text":"Bearer sk-ant-oat01-proxy-2""#));
    let seen = api.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-ant-oat01-proxy-1")
    );
    assert_eq!(
        seen[1].header("authorization"),
        Some("Bearer sk-ant-oat01-proxy-2")
    );
    assert_eq!(seen[1].body, br#"{"model":"replay"}"#);
}

#[test]
fn two_requests_share_one_kept_alive_client_connection() {
    let api = StandIn::start(Api::Echo);
    let gateway = Gateway::start(&api.url);
    let mut stream = TcpStream::connect(&gateway.address).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for n in 1..=2 {
        let body = format!(r#"{{"n":{n}}}"#);
        write!(
            stream,
            "{}content-length: {}\r\n\r\n{body}",
            messages(&gateway),
            body.len()
        )
        .unwrap();
        let head = read_response_head(&mut reader);
        assert!(head.starts_with("HTTP/1.1 200"), "request {n}: {head}");
        assert!(
            !head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        assert!(read_chunked(&mut reader).contains("Bearer sk-ant-oat01-proxy-1"));
    }
    let bodies: Vec<Vec<u8>> = api.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, [br#"{"n":1}"#.to_vec(), br#"{"n":2}"#.to_vec()]);
}

#[test]
fn events_reach_the_client_as_the_upstream_sends_them() {
    let api = StandIn::start(Api::GatedEvents(&[
        "event: ping\ndata: {\"n\": 1}\n\n",
        "event: ping\ndata: {\"n\": 2}\n\n",
        "event: ping\ndata: {\"n\": 3}\n\n",
    ]));
    let gateway = Gateway::start(&api.url);
    let (head, mut reader) = send(&gateway, &messages(&gateway), r#"{"stream":true}"#);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    // The stand-in sends the next event only after the client has the
    // previous one: a gateway that buffered would never get the rest.
    let mut received = String::new();
    for n in 1..=3 {
        while !received.contains(&format!("{{\"n\": {n}}}")) {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            assert_ne!(size, 0, "the stream ended early: {received}");
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).unwrap();
            received.push_str(std::str::from_utf8(&chunk[..size]).unwrap());
        }
        if n < 3 {
            api.release.send(()).unwrap();
        }
    }
    assert_eq!(read_chunked(&mut reader), "");
}

#[test]
fn non_loopback_listen_addresses_are_refused_by_gateway_and_its_proxy_alias() {
    for subcommand in ["gateway", "proxy"] {
        let out = Command::new(env!("CARGO_BIN_EXE_wif-host"))
            .args([
                subcommand,
                "--listen",
                "0.0.0.0:8080",
                "--config",
                "/nonexistent",
            ])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{subcommand}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback"));
    }
}

#[test]
fn the_help_lists_gateway_and_hides_the_proxy_alias() {
    let out = Command::new(env!("CARGO_BIN_EXE_wif-host"))
        .arg("--help")
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("  gateway "), "{help}");
    assert!(!help.contains("proxy "), "{help}");
    let out = Command::new(env!("CARGO_BIN_EXE_wif-host"))
        .args(["gateway", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--client-key-file"));
}

/// A Messages stream in three parts, one text delta each.
const MESSAGE_STREAM: &[&str] = &[
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-test\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n\
     event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
     event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"one\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"two\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"three\"}}\n\n\
     event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
     event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n\
     event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
];

#[test]
#[ignore = "installs the official anthropic SDK from PyPI; .ci/run runs it (cargo test -- --ignored)"]
fn the_official_sdk_works_through_the_gateway_with_its_key_either_way() {
    let python = crate::support::sdk_python();
    let api = StandIn::start(Api::RejectFirstToken);
    let gateway = Gateway::start(&api.url);
    // ANTHROPIC_API_KEY sends x-api-key; ANTHROPIC_AUTH_TOKEN sends
    // Authorization: Bearer.
    for (n, how) in ["api_key", "auth_token"].iter().enumerate() {
        let mut client =
            crate::support::Client::start_with_key(&python, &gateway.url(), how, &gateway.key);
        let answer = client.ask("create");
        assert_eq!(
            answer,
            json!({"ok": true, "text": "Bearer sk-ant-oat01-proxy-2"}),
            "{how}: {}",
            gateway.log()
        );
        assert_eq!(
            client.ask("create"),
            json!({"ok": true, "text": "Bearer sk-ant-oat01-proxy-2"}),
            "{how}"
        );
        assert_eq!(api.seen().len(), 3 + 2 * n, "{how}");
        let mut wrong = crate::support::Client::start_with_key(
            &python,
            &gateway.url(),
            how,
            "wif-gw-not-the-key-not-the-key-not-the-key",
        );
        let refused = wrong.ask("create");
        assert!(
            refused["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("AuthenticationError"),
            "{how}: {refused}"
        );
    }
    let seen = api.seen();
    let bearers: Vec<&str> = seen
        .iter()
        .map(|s| s.header("authorization").unwrap_or_default())
        .collect();
    // The 401 to the first token was replayed once, invisibly to the SDK.
    assert_eq!(
        bearers,
        [
            "Bearer sk-ant-oat01-proxy-1",
            "Bearer sk-ant-oat01-proxy-2",
            "Bearer sk-ant-oat01-proxy-2",
            "Bearer sk-ant-oat01-proxy-2",
            "Bearer sk-ant-oat01-proxy-2"
        ]
    );
    for request in &seen {
        assert_eq!(request.header("x-api-key"), None);
        let all = all_headers(request);
        assert!(!all.contains(&gateway.key), "{all}");
        assert!(
            request
                .header("anthropic-beta")
                .unwrap_or_default()
                .contains("oauth-2025-04-20"),
            "{all}"
        );
    }
}

#[test]
#[ignore = "installs the official anthropic SDK from PyPI; .ci/run runs it (cargo test -- --ignored)"]
fn the_official_sdk_streams_through_the_gateway_as_the_upstream_sends() {
    let python = crate::support::sdk_python();
    let api = StandIn::start(Api::GatedEvents(MESSAGE_STREAM));
    let gateway = Gateway::start(&api.url);
    let mut client =
        crate::support::Client::start_with_key(&python, &gateway.url(), "api_key", &gateway.key);
    client.send("stream");
    // Each delta is released only after the SDK has handed out the
    // previous one: a buffering gateway would stall here.
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        assert_eq!(client.answer(), json!({"delta": text}));
        if i < 2 {
            api.release.send(()).unwrap();
        }
    }
    assert_eq!(client.answer(), json!({"ok": true, "text": "onetwothree"}));
    let seen: Vec<Value> = api
        .seen()
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["stream"], true);
}

#[cfg(unix)]
#[test]
fn the_gateway_serves_a_unix_socket() {
    let api = StandIn::start(Api::Echo);
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let listen = format!("unix:{}", socket.display());
    let gateway = Gateway::spawn(&api.url, &listen, String::new(), |_| {});
    let mut stream = connect_unix(&socket);
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nhost: localhost\r\n{}connection: close\r\n\r\n",
        gateway.api_key()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("Bearer sk-ant-oat01-proxy-1"),
        "{response}"
    );
    assert_eq!(api.seen()[0].header("x-api-key"), None);
}

/// Generous: only a broken gateway makes a test wait this long.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Connects to the gateway's socket once it listens there.
#[cfg(unix)]
pub fn connect_unix(socket: &Path) -> std::os::unix::net::UnixStream {
    let start = Instant::now();
    loop {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(stream) => return stream,
            Err(_) => {
                assert!(start.elapsed() < PATIENCE, "the gateway never listened");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads a response head, up to and including its blank line.
pub fn read_response_head(reader: &mut impl BufRead) -> String {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            return head;
        }
    }
}

/// Reads the next chunk of a chunked body.
fn read_chunk(reader: &mut impl BufRead) -> String {
    let mut size = String::new();
    reader.read_line(&mut size).unwrap();
    let size = usize::from_str_radix(size.trim(), 16).unwrap();
    let mut chunk = vec![0; size + 2];
    reader.read_exact(&mut chunk).unwrap();
    String::from_utf8(chunk[..size].to_vec()).unwrap()
}

#[cfg(unix)]
#[test]
fn sigterm_lets_the_request_in_flight_finish_removes_the_socket_and_exits_0() {
    let api = StandIn::start(Api::GatedEvents(&[
        "event: ping\ndata: {\"n\": 1}\n\n",
        "event: ping\ndata: {\"n\": 2}\n\n",
    ]));
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let mut gateway = Gateway::spawn(
        &api.url,
        &format!("unix:{}", socket.display()),
        String::new(),
        |_| {},
    );
    let stream = connect_unix(&socket);
    // An idle kept-alive connection does not hold the stop up.
    let idle = connect_unix(&socket);
    let body = r#"{"stream":true}"#;
    write!(
        &stream,
        "POST /v1/messages HTTP/1.1\r\nhost: localhost\r\n{}content-length: {}\r\n\r\n{body}",
        gateway.api_key(),
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(&stream);
    let head = read_response_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_chunk(&mut reader).contains(r#"{"n": 1}"#));

    crate::support::signal(&gateway.child, rustix::process::Signal::TERM);
    // The gateway stopped accepting once its socket is gone; the stream
    // is still open and gets its last event only now.
    let start = Instant::now();
    while socket.exists() {
        assert!(start.elapsed() < PATIENCE, "the socket was never removed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_err());
    api.release.send(()).unwrap();
    assert!(read_chunk(&mut reader).contains(r#"{"n": 2}"#));
    assert_eq!(read_chunked(&mut reader), "");

    let status = gateway.child.wait().unwrap();
    let stderr = gateway.log();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("wif-host: gateway: stopped\n"), "{stderr}");
    assert!(!socket.exists());
    drop(idle);
}

#[cfg(unix)]
#[test]
fn a_stale_socket_is_replaced_while_a_live_one_or_another_file_is_refused() {
    use std::os::unix::net::UnixListener;
    let api = StandIn::start(Api::Echo);
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let listen = format!("unix:{}", socket.display());
    // A socket whose process ended without removing it.
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());

    let mut gateway = Gateway::spawn(&api.url, &listen, String::new(), |_| {});
    let mut stream = connect_unix(&socket);
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nhost: localhost\r\n{}connection: close\r\n\r\n",
        gateway.api_key()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let root = tempfile::tempdir().unwrap();
    let second = gateway_command(&api.url, &listen, root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains(&listen), "{said}");
    assert!(said.contains("another process is listening"), "{said}");

    crate::support::signal(&gateway.child, rustix::process::Signal::INT);
    let status = gateway.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());

    let file = folder.path().join("notes.txt");
    std::fs::write(&file, "not a socket").unwrap();
    let listen = format!("unix:{}", file.display());
    let out = gateway_command(&api.url, &listen, root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains(&listen), "{said}");
    assert!(said.contains("is not a socket"), "{said}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a socket");
}

#[test]
fn a_base_url_at_the_listen_address_is_refused_as_a_loop() {
    let port = free_port();
    let root = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let out = gateway_command(&format!("http://localhost:{port}"), &listen, root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("http://localhost:{port}")), "{said}");
    assert!(said.contains(&listen), "{said}");
    assert!(said.contains("forwarded back to the gateway"), "{said}");
}
