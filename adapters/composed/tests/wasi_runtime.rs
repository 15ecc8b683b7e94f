//! The composed component in a plain WASI runtime: wasmtime with
//! `wasmtime-wasi` (p2) and `wasmtime-wasi-http`, as `wasmtime run -S http`
//! would run it, against loopback servers. The runtime's grants (preopened
//! directories, environment variables, wasi-http) are the only policy.

#![deny(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anthropic_wif_loopback::{LoopbackServer, Reply, identity_endpoint, token_endpoint};
use anthropic_wif_wasi::COMPONENT;
use serde_json::{Value, json};
use wasmparser::{Parser, Payload, Validator, WasmFeatures};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// A stand-in OIDC identity token.
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3YXNpIn0.c2ln";
const RULE: &str = "fdrl_01wasiruntime";
const ORG: &str = "3f2b8c1e-5d4a-4e6b-9c7d-0a1b2c3d4e5f";
const REQUEST_TOKEN: &str = "ghs_request_token_for_wasi";
/// Where the tests preopen their folder in the guest.
const GUEST_DIR: &str = "/var/run/secrets/anthropic.com";
/// The variable that sets the adapter's whole-request deadline.
const TIMEOUT_VARIABLE: &str = "ANTHROPIC_WIF_HTTP_TIMEOUT_SECS";

/// The store state of a `wasmtime run -S http`: WASI p2 and wasi-http.
struct RunState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// The engine, the compiled component and a linker with WASI and wasi-http,
/// shared by every test.
fn runtime() -> &'static (Engine, Component, Linker<RunState>) {
    static RUNTIME: OnceLock<(Engine, Component, Linker<RunState>)> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let engine = Engine::default();
        let component = Component::new(&engine, COMPONENT).expect("the component compiles");
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI links");
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).expect("wasi-http links");
        (engine, component, linker)
    })
}

/// What a run printed and how it ended.
#[derive(Debug)]
struct Run {
    exit_code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the component's `wasi:cli/run` with `args` (after argv[0]), the
/// environment `env` and, when given, `dir` preopened read-only at
/// [`GUEST_DIR`].
fn run(args: &[&str], env: &[(&str, &str)], dir: Option<&Path>) -> Run {
    let (engine, component, linker) = runtime();
    let stdout = MemoryOutputPipe::new(1024 * 1024);
    let stderr = MemoryOutputPipe::new(1024 * 1024);
    let mut wasi = WasiCtxBuilder::new();
    wasi.arg("anthropic-wif-wasi.wasm")
        .args(args)
        .envs(env)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    if let Some(dir) = dir {
        wasi.preopened_dir(dir, GUEST_DIR, FsPerms::ReadOnly)
            .expect("the folder can be preopened");
    }
    let state = RunState {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(engine, state);
    let command = Command::instantiate(&mut store, component, linker).expect("instantiates");
    let exit_code = match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None => panic!("the component trapped: {error:?}"),
        },
    };
    Run {
        exit_code,
        stdout: String::from_utf8_lossy(&stdout.contents()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.contents()).into_owned(),
    }
}

/// The `auth` block for the token endpoint at `base_url` and `source`.
fn auth(base_url: &str, source: Value) -> String {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": RULE,
            "organization_id": ORG,
            "base_url": base_url,
            "identity_token": source,
        }
    })
    .to_string()
}

/// Checks that the run printed the first token and that the token endpoint
/// received exactly one exchange of [`JWT`].
fn assert_token(run: &Run, token_server: &LoopbackServer) {
    assert_eq!(run.exit_code, 0, "{run:?}");
    assert_eq!(run.stdout, "sk-ant-oat01-demo-1\n", "{run:?}");
    assert_eq!(run.stderr, "", "{run:?}");
    let requests = token_server.requests();
    assert_eq!(requests.len(), 1, "one exchange");
    assert_eq!(requests[0].path, "/v1/oauth/token");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("a JSON exchange");
    assert_eq!(body["assertion"], JWT);
    assert_eq!(body["federation_rule_id"], RULE);
    assert_eq!(body["organization_id"], ORG);
}

/// Checks that the run failed with a message containing `needle` and no
/// token, and that nothing reached the token endpoint.
fn assert_refused(run: &Run, token_server: &LoopbackServer, needle: &str) {
    assert_eq!(run.exit_code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(run.stderr.contains(needle), "{run:?}");
    assert!(!run.stderr.contains("sk-ant-"), "{run:?}");
    assert!(token_server.requests().is_empty(), "no exchange");
}

fn token_server() -> LoopbackServer {
    LoopbackServer::start(token_endpoint(3600)).expect("the token endpoint starts")
}

/// The top-level imports and exports of a component.
fn imports_and_exports(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.expect("the component parses") {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth -= 1,
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    imports.push(import.expect("an import").name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 1 => {
                for export in reader {
                    exports.push(export.expect("an export").name.name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[test]
fn imports_only_standard_wasi_and_exports_wasi_cli_run() {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(COMPONENT)
        .expect("the composition is a valid component");
    let (imports, exports) = imports_and_exports(COMPONENT);
    eprintln!(
        "{} bytes; imports: {imports:?}; exports: {exports:?}",
        COMPONENT.len()
    );
    assert!(!imports.is_empty());
    for import in &imports {
        assert!(
            import.starts_with("wasi:"),
            "a non-WASI import: {import} (all: {imports:?})"
        );
    }
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@0.2.")),
        "{imports:?}"
    );
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(exports[0].starts_with("wasi:cli/run@0.2."), "{exports:?}");
}

#[test]
fn file_source_from_a_preopened_dir_with_the_config_file_as_argument() {
    let tokens = token_server();
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("token"), format!("{JWT}\n")).expect("the token file");
    let config = auth(&tokens.url(), json!({"file": format!("{GUEST_DIR}/token")}));
    std::fs::write(dir.path().join("auth.json"), config).expect("the config file");
    let run = run(&[&format!("{GUEST_DIR}/auth.json")], &[], Some(dir.path()));
    assert_token(&run, &tokens);
}

#[test]
fn env_source_from_the_runtime_environment() {
    let tokens = token_server();
    let config = auth(&tokens.url(), json!({"env": "IDENTITY_TOKEN"}));
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config), ("IDENTITY_TOKEN", JWT)],
        None,
    );
    assert_token(&run, &tokens);
}

#[test]
fn url_source_through_wasi_http_with_expanded_variables() {
    let tokens = token_server();
    let identity = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN))
        .expect("the identity endpoint starts");
    let config = auth(
        &tokens.url(),
        json!({
            "url": "${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com",
            "headers": {"Authorization": "bearer ${ACTIONS_ID_TOKEN_REQUEST_TOKEN}"},
            "response_field": "value",
        }),
    );
    let request_url = format!("{}/oidc/token?api-version=2.0", identity.url());
    let run = run(
        &[],
        &[
            ("ANTHROPIC_WIF_CONFIG", &config),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", &request_url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
        ],
        None,
    );
    assert_token(&run, &tokens);
    let asked = identity.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].method, "GET");
    assert_eq!(
        asked[0].path,
        "/oidc/token?api-version=2.0&audience=https://api.anthropic.com"
    );
}

/// Runs the url source against an identity endpoint answering with
/// `handler`.
fn run_url_source(
    tokens: &LoopbackServer,
    handler: impl Fn(&anthropic_wif_loopback::Recorded) -> Reply + Send + Sync + 'static,
) -> (Run, LoopbackServer) {
    let identity = LoopbackServer::start(handler).expect("the identity endpoint starts");
    let config = auth(
        &tokens.url(),
        json!({"url": "${IDENTITY_URL}", "response_field": "value"}),
    );
    let url = format!("{}/id", identity.url());
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config), ("IDENTITY_URL", &url)],
        None,
    );
    (run, identity)
}

#[test]
fn wasi_http_does_not_follow_redirects() {
    let tokens = token_server();
    let target = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN))
        .expect("the redirect target starts");
    let location = format!("{}/elsewhere", target.url());
    let (run, identity) = run_url_source(&tokens, move |_| {
        Reply::text(302, "").header("location", &location)
    });
    assert_refused(&run, &tokens, "302");
    assert_eq!(identity.requests().len(), 1);
    assert!(
        target.requests().is_empty(),
        "the redirect was not followed"
    );
}

#[test]
fn a_response_body_over_one_mebibyte_is_refused_not_cut() {
    let tokens = token_server();
    let (run, _identity) =
        run_url_source(&tokens, |_| Reply::text(200, &"x".repeat(1024 * 1024 + 1)));
    assert_refused(&run, &tokens, "exceeds 1048576 bytes");
}

#[test]
fn a_file_outside_the_preopened_dirs_gives_an_error_not_a_token() {
    let tokens = token_server();
    let granted = tempfile::tempdir().expect("a granted folder");
    let outside = tempfile::tempdir().expect("a folder the runtime does not grant");
    let secret = outside.path().join("token");
    std::fs::write(&secret, JWT).expect("the token file");
    let config = auth(
        &tokens.url(),
        json!({"file": secret.to_str().expect("a UTF-8 path")}),
    );
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config)],
        Some(granted.path()),
    );
    assert_refused(&run, &tokens, "read-file denied by the runtime");
    assert!(
        run.stderr
            .contains("not inside a directory the runtime preopened")
    );
}

#[test]
fn a_missing_file_inside_a_preopened_dir_is_not_found_not_denied() {
    let tokens = token_server();
    let granted = tempfile::tempdir().expect("a granted folder");
    let config = auth(
        &tokens.url(),
        json!({"file": format!("{GUEST_DIR}/missing")}),
    );
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config)],
        Some(granted.path()),
    );
    assert_refused(&run, &tokens, "does not exist");
    assert!(!run.stderr.contains("denied"), "{run:?}");
}

#[test]
fn a_directory_is_reported_as_a_directory() {
    let tokens = token_server();
    let granted = tempfile::tempdir().expect("a granted folder");
    let config = auth(&tokens.url(), json!({"file": GUEST_DIR}));
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config)],
        Some(granted.path()),
    );
    assert_refused(&run, &tokens, "is a directory");
}

#[test]
fn run_command_is_denied() {
    let tokens = token_server();
    let config = auth(
        &tokens.url(),
        json!({"command": ["gcloud", "auth", "print-identity-token"]}),
    );
    let run = run(&[], &[("ANTHROPIC_WIF_CONFIG", &config)], None);
    assert_refused(
        &run,
        &tokens,
        "run-command is not available in a plain WASI runtime",
    );
}

#[test]
fn without_a_config_it_prints_usage_and_fails() {
    let run = run(&[], &[], None);
    assert_eq!(run.exit_code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert!(run.stderr.contains("ANTHROPIC_WIF_CONFIG"), "{run:?}");
}

/// A token endpoint that, like some servers and proxies, refuses a request
/// whose length is not announced: 411 Length Required without
/// `content-length`, with `transfer-encoding` (chunked), or when the body
/// received is not as long as announced.
fn length_required_token_server() -> LoopbackServer {
    let exchange = token_endpoint(3600);
    LoopbackServer::start(move |request| {
        let announced = request
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = request.header("transfer-encoding").is_some();
        match announced {
            Some(length) if !chunked && length == request.body.len() => exchange(request),
            _ => Reply::text(411, "Length Required"),
        }
    })
    .expect("the token endpoint starts")
}

#[test]
fn the_token_request_carries_content_length_and_the_whole_body() {
    let tokens = length_required_token_server();
    let config = auth(&tokens.url(), json!({"env": "IDENTITY_TOKEN"}));
    let run = run(
        &[],
        &[("ANTHROPIC_WIF_CONFIG", &config), ("IDENTITY_TOKEN", JWT)],
        None,
    );
    assert_token(&run, &tokens);
    let request = &tokens.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("transfer-encoding"), None);
    assert_eq!(
        request.header("content-length"),
        Some(request.body.len().to_string().as_str())
    );
    let body: Value = serde_json::from_slice(&request.body).expect("the whole JSON body");
    assert_eq!(
        body["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
}

/// How a [`StalledServer`] treats a request.
#[derive(Clone, Copy)]
enum Stall {
    /// Reads the request and never answers.
    Silent,
    /// Answers a head announcing a long body, then one byte of it every
    /// 50 ms, never finishing.
    Drip,
}

/// A server on 127.0.0.1 that accepts connections and stalls them; it
/// counts the requests it read.
struct StalledServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl StalledServer {
    fn start(stall: Stall) -> StalledServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("the server binds");
        let port = listener.local_addr().expect("an address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || serve_stalled(stream, stall, &seen));
            }
        });
        StalledServer { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines read, once there is one (a minute at most: a
    /// bound for the suite, not a measurement).
    fn wait_for_a_request(&self) -> Vec<String> {
        for _ in 0..600 {
            let requests = self.requests.lock().expect("not poisoned").clone();
            if !requests.is_empty() {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Vec::new()
    }
}

fn serve_stalled(mut stream: TcpStream, stall: Stall, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("the stream clones"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim_end().is_empty() => break,
            Ok(_) => {}
        }
    }
    seen.lock()
        .expect("not poisoned")
        .push(request_line.trim_end().to_string());
    match stall {
        // Holds the connection until the client gives up.
        Stall::Silent => {
            let mut rest = Vec::new();
            let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
        }
        Stall::Drip => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        content-length: 1000000\r\n\r\n{";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            while stream.write_all(b" ").is_ok() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Runs an exchange against `tokens` with a deadline of 1 s. The run is
/// given two minutes before the test calls it hung: a bound for the suite,
/// not a measurement.
fn run_with_deadline(tokens: &StalledServer) -> Run {
    let config = auth(&tokens.url(), json!({"env": "IDENTITY_TOKEN"}));
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let outcome = run(
            &[],
            &[
                ("ANTHROPIC_WIF_CONFIG", &config),
                ("IDENTITY_TOKEN", JWT),
                (TIMEOUT_VARIABLE, "1"),
            ],
            None,
        );
        let _ = done.send(outcome);
    });
    result
        .recv_timeout(Duration::from_secs(120))
        .expect("the run ends instead of hanging")
}

fn assert_timed_out(run: &Run, tokens: &StalledServer) {
    assert_eq!(run.exit_code, 1, "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "token exchange failed: {}/v1/oauth/token did not answer in time",
            tokens.url()
        )),
        "{run:?}"
    );
    assert_eq!(
        tokens.wait_for_a_request(),
        ["POST /v1/oauth/token HTTP/1.1"],
        "the request reached the server"
    );
}

#[test]
fn a_server_that_never_answers_fails_the_run_with_a_timeout() {
    let tokens = StalledServer::start(Stall::Silent);
    let run = run_with_deadline(&tokens);
    assert_timed_out(&run, &tokens);
}

#[test]
fn a_server_that_drips_its_body_fails_the_run_with_a_timeout() {
    let tokens = StalledServer::start(Stall::Drip);
    let run = run_with_deadline(&tokens);
    assert_timed_out(&run, &tokens);
}

#[test]
fn an_invalid_deadline_is_refused_naming_the_variable() {
    let tokens = token_server();
    let config = auth(&tokens.url(), json!({"env": "IDENTITY_TOKEN"}));
    let run = run(
        &[],
        &[
            ("ANTHROPIC_WIF_CONFIG", &config),
            ("IDENTITY_TOKEN", JWT),
            (TIMEOUT_VARIABLE, "0"),
        ],
        None,
    );
    assert_refused(
        &run,
        &tokens,
        &format!("{TIMEOUT_VARIABLE} must be a number of seconds from 0.001"),
    );
}
