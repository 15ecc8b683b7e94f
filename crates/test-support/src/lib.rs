//! Helpers shared by the end-to-end tests of the component (`tests/all`)
//! and of the `wif-host` binary (`wif-host/tests/all`), and by the benches:
//! configs, policies, loopback servers, raw servers, files, TLS and proxies
//! ([`network`]), and the machine report. A dev-only crate: nothing here is API of the library.

#![deny(unsafe_code)]

pub mod machine;
pub mod network;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anthropic_wif_host::{Policy, Provider};
use anthropic_wif_loopback::{LoopbackServer, Recorded, token_endpoint};
use serde_json::{Value, json};

/// A stand-in OIDC identity token (a JWT in shape; nobody checks its
/// signature).
pub const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIiwic3ViIjoicmVwbzpleGFtcGxlL3JlcG86cmVmOnJlZnMvaGVhZHMvbWFpbiIsImF1ZCI6Imh0dHBzOi8vYXBpLmFudGhyb3BpYy5jb20ifQ.\
c2lnbmF0dXJlLW5vdC1jaGVja2Vk";

/// The federation rule of the test configs.
pub const RULE: &str = "fdrl_01integrationtest";
/// The organization of the test configs.
pub const ORG: &str = "3f2b8c1e-5d4a-4e6b-9c7d-0a1b2c3d4e5f";
/// The bearer token the GitHub-style identity endpoint expects.
pub const REQUEST_TOKEN: &str = "ghs_request_token_for_tests";
/// The `expires_in` of the loopback token endpoint.
pub const EXPIRES_IN: u64 = 3600;

/// The `auth` block for `base_url` and an identity-token `source` (the
/// value of `identity_token`), as a JSON value.
pub fn auth(base_url: &str, source: Value) -> Value {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": RULE,
            "organization_id": ORG,
            "base_url": base_url,
            "identity_token": source,
        }
    })
}

/// [`auth`] with extra fields (`service_account_id`, `workspace_id`…) in the
/// `workload_identity_federation` block.
pub fn auth_with(base_url: &str, source: Value, extra: Value) -> Value {
    let mut auth = auth(base_url, source);
    let wif = auth["workload_identity_federation"]
        .as_object_mut()
        .expect("the block is a map");
    for (key, value) in extra.as_object().expect("extra fields are a map") {
        wif.insert(key.clone(), value.clone());
    }
    auth
}

/// The JSON text of [`auth`], as `Provider::get_token` takes it.
pub fn config(base_url: &str, source: Value) -> String {
    auth(base_url, source).to_string()
}

/// A TOML (basic) string literal for `text`.
pub fn q(text: impl AsRef<str>) -> String {
    serde_json::to_string(text.as_ref()).expect("a string serializes")
}

/// A TOML array of string literals.
pub fn q_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(q).collect();
    format!("[{}]", items.join(", "))
}

/// Parses a policy, panicking with the text on error.
pub fn policy(toml: &str) -> Policy {
    Policy::from_toml(toml).unwrap_or_else(|e| panic!("invalid test policy: {e}\n{toml}"))
}

/// A policy that grants `files` and the `origins`, nothing else.
pub fn file_policy(files: &[&Path], origins: &[&str]) -> Policy {
    let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    policy(&format!(
        "[files]\nallow = {}\n[http]\nallow_origins = {}\n",
        q_list(&files),
        q_list(origins)
    ))
}

/// A provider with the embedded component and `policy`.
pub fn provider(policy: Policy) -> Provider {
    Provider::builder()
        .policy(policy)
        .build()
        .expect("the embedded component loads")
}

/// A loopback token endpoint issuing `sk-ant-oat01-demo-N` tokens valid for
/// [`EXPIRES_IN`] seconds.
pub fn token_server() -> LoopbackServer {
    LoopbackServer::start(token_endpoint(EXPIRES_IN)).expect("the token server starts")
}

/// The requests `server` received on the token endpoint.
pub fn exchanges(server: &LoopbackServer) -> Vec<Recorded> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/oauth/token")
        .collect()
}

/// The JSON body of a recorded request.
pub fn body_json(request: &Recorded) -> Value {
    serde_json::from_slice(&request.body).unwrap_or_else(|e| {
        panic!(
            "the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&request.body)
        )
    })
}

/// The `assertion` sent in an exchange.
pub fn assertion_of(request: &Recorded) -> String {
    body_json(request)["assertion"]
        .as_str()
        .expect("the exchange has an assertion")
        .to_string()
}

/// A temporary directory for the files of one test.
pub struct Files {
    dir: tempfile::TempDir,
}

impl Default for Files {
    fn default() -> Files {
        Files::new()
    }
}

impl Files {
    /// A fresh directory, removed when dropped.
    pub fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The directory, symlinks resolved.
    pub fn dir(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).expect("the directory exists")
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir().join(name);
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }
}

/// What a run of `wif-host` produced.
#[derive(Debug)]
pub struct CliRun {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the `wif-host` at `binary` (the test's `CARGO_BIN_EXE_wif-host`)
/// with `args` and extra environment variables `env`, with a cache folder
/// (`XDG_CACHE_HOME`) of its own, so that no run sees a token another one
/// cached and the user's cache is left alone.
pub fn run_binary<A: AsRef<OsStr>>(binary: &Path, args: &[A], env: &[(&str, &str)]) -> CliRun {
    let cache = tempfile::tempdir().expect("a temporary cache folder");
    let output = Command::new(binary)
        .args(args)
        .env("XDG_CACHE_HOME", cache.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running wif-host");
    CliRun {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Writes `auth` as a config file and `policy` as a policy file in `files`,
/// and runs `wif-host token --format FORMAT` (the one at `binary`) on them.
pub fn token_through(
    binary: &Path,
    files: &Files,
    auth: &Value,
    policy: &str,
    format: &str,
    env: &[(&str, &str)],
) -> CliRun {
    let config = files.write("config.json", auth.to_string());
    let policy_file = files.write("policy.toml", policy);
    // The policy must parse here too, so that a typo fails loudly.
    Policy::from_toml(policy).unwrap_or_else(|e| panic!("invalid test policy: {e}\n{policy}"));
    let args: Vec<&OsStr> = vec![
        OsStr::new("token"),
        OsStr::new("--config"),
        config.as_os_str(),
        OsStr::new("--policy"),
        policy_file.as_os_str(),
        OsStr::new("--format"),
        OsStr::new(format),
    ];
    run_binary(binary, &args, env)
}

/// A request as [`RawServer`] read it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body (read as far as `content-length` says).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The request as the loopback servers record it, for their handlers
    /// (`token_endpoint`, `identity_endpoint`).
    pub fn recorded(&self) -> Recorded {
        Recorded {
            method: self.method.clone(),
            path: self.path.clone(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        }
    }
}

type RawHandler = dyn Fn(&mut TcpStream, &RawRequest) + Send + Sync;

/// A hand-written HTTP/1.1 server on a loopback `TcpListener`, one thread per
/// connection, for endpoints that misbehave: the handler writes whatever
/// bytes it likes (trickled, endless, cut, reset) on the raw stream. One
/// request per connection; [`respond`] says `connection: close`. Stops
/// accepting, and closes its port, when dropped.
pub struct RawServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    connections: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// The longest a connection thread of a [`RawServer`] waits on a read or a
/// write, so that no thread outlives its test by much.
const RAW_IO_TIMEOUT: Duration = Duration::from_secs(5);

impl RawServer {
    /// A server on 127.0.0.1 with an ephemeral port.
    pub fn start(handler: impl Fn(&mut TcpStream, &RawRequest) + Send + Sync + 'static) -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), handler)
            .expect("a raw loopback server starts")
    }

    /// A server on `addr` (a loopback address; port 0 for an ephemeral
    /// one).
    pub fn start_on(
        addr: SocketAddr,
        handler: impl Fn(&mut TcpStream, &RawRequest) + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        assert!(addr.ip().is_loopback(), "tests listen on loopback only");
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<RawHandler> = Arc::new(handler);
        let thread = {
            let (stop, requests, connections) =
                (stop.clone(), requests.clone(), connections.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            let (handler, requests) = (handler.clone(), requests.clone());
                            std::thread::spawn(move || serve_raw(stream, &*handler, &requests));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                // The listener is dropped here: the port is closed.
            })
        };
        Ok(RawServer {
            addr,
            stop,
            requests,
            connections,
            thread: Some(thread),
        })
    }

    /// `http://ADDR:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests read so far (complete or not).
    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The connections accepted so far, whether or not a request followed.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_raw(mut stream: TcpStream, handler: &RawHandler, requests: &Mutex<Vec<RawRequest>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(RAW_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(RAW_IO_TIMEOUT));
    let Some(request) = read_raw_request(&mut stream) else {
        return;
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(request.clone());
    handler(&mut stream, &request);
    let _ = stream.flush();
}

/// Reads one request: the head up to the blank line (at most 64 KiB), then
/// `content-length` bytes of body.
fn read_raw_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut start = lines.next()?.split(' ');
    let (method, path) = (start.next()?.to_string(), start.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

/// The head of a response with `status`, `headers` and, when given, a
/// `content-length`; always `connection: close`.
pub fn response_head(status: u16, headers: &[(&str, &str)], length: Option<usize>) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} Raw\r\nconnection: close\r\n");
    if let Some(length) = length {
        head.push_str(&format!("content-length: {length}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes a complete response (errors ignored: the client may be gone).
pub fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut bytes = response_head(status, headers, Some(body.len()));
    bytes.extend_from_slice(body);
    let _ = stream.write_all(&bytes);
}

/// Writes `bytes` one at a time, `every` apart, until done or the client
/// is gone.
pub fn trickle(stream: &mut TcpStream, bytes: &[u8], every: Duration) {
    for byte in bytes {
        if stream
            .write_all(std::slice::from_ref(byte))
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
        std::thread::sleep(every);
    }
}

/// Makes the close of `stream` a reset (RST) instead of an orderly FIN
/// (`SO_LINGER` with a zero timeout).
pub fn reset_on_close(stream: &TcpStream) {
    rustix::net::sockopt::set_socket_linger(stream, Some(Duration::ZERO))
        .expect("setsockopt(SO_LINGER)");
}

/// Makes a FIFO (named pipe) at `path`, with the POSIX `mkfifo` utility
/// (rustix has no `mkfifo` on every Unix).
pub fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// Every secret in `secrets` that appears in the error's `Display` or
/// `Debug` text.
pub fn leaked<'a>(error: &anthropic_wif_host::Error, secrets: &[&'a str]) -> Vec<&'a str> {
    let shown = format!("{error} {error:?}");
    secrets
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && shown.contains(s))
        .collect()
}
