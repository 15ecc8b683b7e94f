//! `wif-host proxy` end to end: the real binary between a raw HTTP client
//! and a loopback stand-in that is both the token endpoint and the API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What the stand-in saw of one API request.
#[derive(Debug, Clone)]
struct Seen {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the stand-in answers `/v1/messages`.
#[derive(Clone, Copy)]
enum Api {
    /// 200 with the bearer token as text.
    Echo,
    /// 401 to the first token, 200 to later ones.
    RejectFirstToken,
    /// Server-sent events in parts, each part sent only once the test says
    /// the client received the previous one.
    GatedEvents(&'static [&'static str]),
}

struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: mpsc::Sender<()>,
}

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<(String, Seen)> {
    let mut line = String::new();
    stream.read_line(&mut line).ok()?;
    let path = line.split(' ').nth(1)?.to_string();
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
    fn start(api: Api) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (release, gate) = mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        let issued = Arc::new(Mutex::new(0u32));
        {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(stream) = stream else { continue };
                    let (seen, gate, issued) = (seen.clone(), gate.clone(), issued.clone());
                    std::thread::spawn(move || {
                        let mut writer = stream.try_clone().unwrap();
                        let mut reader = BufReader::new(stream);
                        let Some((path, seen_now)) = read_request(&mut reader) else {
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
        StandIn { url, seen, release }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

struct Proxy {
    child: Child,
    address: String,
    _root: tempfile::TempDir,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let proxy = Proxy::spawn(upstream, &address, address.clone());
        let start = Instant::now();
        while TcpStream::connect(&proxy.address).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the proxy never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// Spawns `wif-host proxy --listen LISTEN`; `address` is what the test
    /// connects to.
    fn spawn(upstream: &str, listen: &str, address: String) -> Proxy {
        let root = tempfile::tempdir().unwrap();
        let child = proxy_command(upstream, listen, root.path())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Proxy {
            child,
            address,
            _root: root,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// `wif-host proxy --listen LISTEN` forwarding to `upstream`, with its
/// config, identity token and HOME in `root`.
fn proxy_command(upstream: &str, listen: &str, root: &Path) -> Command {
    let config = crate::support::write_auth_config(root, upstream, "fdrl_proxy", Value::Null);
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command
        .args(["proxy", "--listen", listen, "--config"])
        .arg(&config)
        .env_clear()
        .env("HOME", root);
    command
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request; the response's status line, headers and a reader on
/// its (chunked) body.
fn send(proxy: &Proxy, head: &str, body: &str) -> (String, BufReader<TcpStream>) {
    let mut stream = TcpStream::connect(&proxy.address).unwrap();
    write!(stream, "{head}content-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(stream);
    (read_response_head(&mut reader), reader)
}

fn read_chunked(reader: &mut impl BufRead) -> String {
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

const MESSAGES: &str = "POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: placeholder-key\r\nauthorization: Bearer placeholder\r\nanthropic-beta: tools-2024-04-04\r\nconnection: keep-alive, x-private\r\nx-private: hop\r\ncontent-type: application/json\r\n";

#[test]
fn the_client_key_is_replaced_by_the_token_and_the_beta_merged() {
    let api = StandIn::start(Api::Echo);
    let proxy = Proxy::start(&api.url);
    let (head, mut reader) = send(&proxy, MESSAGES, r#"{"model":"m"}"#);
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
    let all: String = seen[0]
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect();
    assert!(!all.contains("placeholder"), "{all}");
}

#[test]
fn paths_outside_v1_are_not_forwarded() {
    let api = StandIn::start(Api::Echo);
    let proxy = Proxy::start(&api.url);
    let (head, _) = send(&proxy, "GET /admin HTTP/1.1\r\nhost: x\r\n", "");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(api.seen().is_empty());
}

#[test]
fn an_upstream_401_is_replayed_once_with_a_new_token() {
    let api = StandIn::start(Api::RejectFirstToken);
    let proxy = Proxy::start(&api.url);
    let (head, mut reader) = send(&proxy, MESSAGES, r#"{"model":"replay"}"#);
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
fn events_reach_the_client_as_the_upstream_sends_them() {
    let api = StandIn::start(Api::GatedEvents(&[
        "event: ping\ndata: {\"n\": 1}\n\n",
        "event: ping\ndata: {\"n\": 2}\n\n",
        "event: ping\ndata: {\"n\": 3}\n\n",
    ]));
    let proxy = Proxy::start(&api.url);
    let (head, mut reader) = send(&proxy, MESSAGES, r#"{"stream":true}"#);
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
fn non_loopback_listen_addresses_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_wif-host"))
        .args([
            "proxy",
            "--listen",
            "0.0.0.0:8080",
            "--config",
            "/nonexistent",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback"));
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
fn the_official_sdk_works_through_the_proxy_with_a_placeholder_key() {
    let python = crate::support::sdk_python();
    let api = StandIn::start(Api::RejectFirstToken);
    let proxy = Proxy::start(&api.url);
    let mut client =
        crate::support::Client::start_with_key(&python, &proxy.url(), "placeholder-key");
    assert_eq!(
        client.ask("create"),
        json!({"ok": true, "text": "Bearer sk-ant-oat01-proxy-2"})
    );
    assert_eq!(
        client.ask("create"),
        json!({"ok": true, "text": "Bearer sk-ant-oat01-proxy-2"})
    );
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
            "Bearer sk-ant-oat01-proxy-2"
        ]
    );
    for request in &seen {
        assert_eq!(request.header("x-api-key"), None);
        let all: String = request
            .headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        assert!(!all.contains("placeholder"), "{all}");
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
fn the_official_sdk_streams_through_the_proxy_as_the_upstream_sends() {
    let python = crate::support::sdk_python();
    let api = StandIn::start(Api::GatedEvents(MESSAGE_STREAM));
    let proxy = Proxy::start(&api.url);
    let mut client =
        crate::support::Client::start_with_key(&python, &proxy.url(), "placeholder-key");
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

#[test]
fn the_gateway_serves_a_unix_socket() {
    let api = StandIn::start(Api::Echo);
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let listen = format!("unix:{}", socket.display());
    let _proxy = Proxy::spawn(&api.url, &listen, String::new());
    let mut stream = connect_unix(&socket);
    write!(
        stream,
        "GET /v1/models HTTP/1.1\r\nhost: x\r\nx-api-key: placeholder\r\n\r\n"
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
const PATIENCE: Duration = Duration::from_secs(120);

/// Connects to the gateway's socket once it listens there.
fn connect_unix(socket: &Path) -> std::os::unix::net::UnixStream {
    let start = Instant::now();
    loop {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(stream) => return stream,
            Err(_) => {
                assert!(start.elapsed() < PATIENCE, "the proxy never listened");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads a response head, up to and including its blank line.
fn read_response_head(reader: &mut impl BufRead) -> String {
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

#[test]
fn sigterm_lets_the_request_in_flight_finish_removes_the_socket_and_exits_0() {
    let api = StandIn::start(Api::GatedEvents(&[
        "event: ping\ndata: {\"n\": 1}\n\n",
        "event: ping\ndata: {\"n\": 2}\n\n",
    ]));
    let folder = tempfile::tempdir().unwrap();
    let socket = folder.path().join("wif.sock");
    let root = tempfile::tempdir().unwrap();
    let mut child = proxy_command(&api.url, &format!("unix:{}", socket.display()), root.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stream = connect_unix(&socket);
    let body = r#"{"stream":true}"#;
    write!(
        &stream,
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(&stream);
    let head = read_response_head(&mut reader);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(read_chunk(&mut reader).contains(r#"{"n": 1}"#));

    crate::support::signal(&child, rustix::process::Signal::TERM);
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

    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("wif-host: proxy: stopped\n"), "{stderr}");
    assert!(!socket.exists());
}

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

    let mut proxy = Proxy::spawn(&api.url, &listen, String::new());
    let mut stream = connect_unix(&socket);
    write!(stream, "GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let root = tempfile::tempdir().unwrap();
    let second = proxy_command(&api.url, &listen, root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains(&listen), "{said}");
    assert!(said.contains("another process is listening"), "{said}");

    crate::support::signal(&proxy.child, rustix::process::Signal::INT);
    let status = proxy.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists());

    let file = folder.path().join("notes.txt");
    std::fs::write(&file, "not a socket").unwrap();
    let listen = format!("unix:{}", file.display());
    let out = proxy_command(&api.url, &listen, root.path())
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
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let out = proxy_command(&format!("http://localhost:{port}"), &listen, root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains(&format!("http://localhost:{port}")), "{said}");
    assert!(said.contains(&listen), "{said}");
    assert!(said.contains("forwarded back to the gateway"), "{said}");
}
