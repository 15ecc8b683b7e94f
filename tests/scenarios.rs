//! The shared scenario table (`tests/scenarios.json`), run through the Rust
//! host. The Python (`hosts/python`) and JavaScript (`hosts/js`) hosts run
//! the same table, so the three cannot drift apart.
//!
//! This file holds one test: it sets environment variables of this process
//! (the scenario's granted variables, and the proxy and CA variables the
//! host reads itself), which is sound only while no other thread reads or
//! writes them.

#![deny(unsafe_code)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anthropic_wif_host::spread::RefreshSpread;
use anthropic_wif_host::{Clock, Error, Policy, Provider, SourceKind};
use anthropic_wif_loopback::{LoopbackServer, Recorded, Reply};
use anthropic_wif_test_support::network::{
    ConnectProxy, HttpsServer, ProxyMode, TestCa, Validity, closed_port,
};
use anthropic_wif_test_support::{RawServer, trickle};
use serde_json::{Value, json};

/// Where the clock of every scenario starts (Unix seconds).
const START: u64 = 1_900_000_000;
/// How long `/slow` of the identity server waits before answering.
const SLOW: Duration = Duration::from_secs(3);
/// The name only the CONNECT proxy resolves (to 127.0.0.1).
const PROXIED: &str = "token.scenario.test";
/// The credentials the CONNECT proxy requires.
const PROXY_CREDENTIALS: &str = "scenario:proxy-s3cret";
/// The variables the host process reads itself: removed for every scenario,
/// set from its `process_env`, restored after it.
const PROCESS_VARIABLES: [&str; 10] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];
/// The head the drip server writes one byte at a time.
const DRIP_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 17\r\nconnection: close\r\n\r\n";
/// How far apart the drip server writes the bytes of its head.
const DRIP_EVERY: Duration = Duration::from_millis(100);

/// The clock of every scenario: set back to [`START`] when a scenario
/// begins, moved by its steps.
#[derive(Default)]
struct ScenarioClock {
    secs: AtomicU64,
}

impl Clock for ScenarioClock {
    fn now(&self) -> Duration {
        Duration::from_secs(self.secs.load(Ordering::SeqCst))
    }
}

/// The component compiled once (a debug build of the compiler takes
/// seconds), with the scenario clock; each scenario derives a provider
/// with its own policy, instance and caches.
fn compiled(clock: &Arc<ScenarioClock>) -> &'static Provider {
    static COMPILED: OnceLock<Provider> = OnceLock::new();
    COMPILED.get_or_init(|| {
        // The table describes the component: refresh exactly when it says,
        // without the Rust host's spread across a fleet.
        Provider::builder()
            .clock(clock.clone())
            .refresh_spread(RefreshSpread::none())
            .build()
            .expect("the provider builds")
    })
}

/// A request handler, shared by the plain and the TLS token endpoint.
type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The token endpoint, plain and behind TLS: both answer as its current
/// behaviour says and count exchanges together.
struct TokenEndpoint {
    server: LoopbackServer,
    tls: HttpsServer,
    behaviour: Arc<Mutex<Value>>,
    exchanges: Arc<AtomicU64>,
    assertion: Arc<Mutex<Option<String>>>,
}

impl TokenEndpoint {
    fn start(ca: &TestCa) -> TokenEndpoint {
        let behaviour = Arc::new(Mutex::new(json!({"status": 200, "expires_in": 600})));
        let exchanges = Arc::new(AtomicU64::new(0));
        let assertion = Arc::new(Mutex::new(None));
        let (b, n, a) = (behaviour.clone(), exchanges.clone(), assertion.clone());
        let handler: Arc<Handler> = Arc::new(move |request: &Recorded| {
            if request.method != "POST" || request.path != "/v1/oauth/token" {
                return Reply::json(404, &json!({"error": "not_found"}));
            }
            let count = n.fetch_add(1, Ordering::SeqCst) + 1;
            *a.lock().unwrap_or_else(PoisonError::into_inner) =
                serde_json::from_slice::<Value>(&request.body)
                    .ok()
                    .and_then(|body| body["assertion"].as_str().map(str::to_string));
            let behaviour = b.lock().unwrap_or_else(PoisonError::into_inner).clone();
            match behaviour["status"].as_u64() {
                Some(200) => Reply::json(
                    200,
                    &json!({
                        "access_token": format!("sk-ant-oat01-scenario-{count}"),
                        "expires_in": behaviour["expires_in"],
                        "token_type": "Bearer",
                    }),
                ),
                status => Reply::json(
                    u16::try_from(status.unwrap_or(500)).unwrap_or(500),
                    &behaviour["body"],
                )
                .header("request-id", "req_scenario"),
            }
        });
        let plain = handler.clone();
        let server = LoopbackServer::start(move |request: &Recorded| plain(request))
            .expect("the token endpoint starts");
        let tls = HttpsServer::start(
            ca.server_cert(&["127.0.0.1", PROXIED], Validity::Current),
            move |request: &Recorded| handler(request),
        );
        TokenEndpoint {
            server,
            tls,
            behaviour,
            exchanges,
            assertion,
        }
    }

    fn last_assertion(&self) -> Option<String> {
        self.assertion
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The server that drips its response head (see [`DRIP_HEAD`]).
fn drip_server() -> RawServer {
    RawServer::start(|stream, _request| {
        trickle(stream, DRIP_HEAD.as_bytes(), DRIP_EVERY);
        let _ = std::io::Write::write_all(stream, b"id-token-from-url");
    })
}

/// The CONNECT proxy of the table: [`PROXIED`] only, with
/// [`PROXY_CREDENTIALS`].
fn connect_proxy() -> ConnectProxy {
    ConnectProxy::start(ProxyMode::Tunnel {
        hosts: HashMap::from([(PROXIED.to_string(), IpAddr::V4(Ipv4Addr::LOCALHOST))]),
        credentials: Some(PROXY_CREDENTIALS.to_string()),
    })
}

/// Sets (or, with `None`, removes) a variable of this process.
fn set_process_var(name: &str, value: Option<&OsString>) {
    // SAFETY: this test binary runs this one test on one thread; no other
    // thread reads or writes the environment meanwhile. (The provider reads
    // the variables from this process's environment.)
    #[allow(unsafe_code)]
    unsafe {
        match value {
            Some(value) => std::env::set_var(name, value),
            None => std::env::remove_var(name),
        }
    }
}

/// The identity server with the paths the table names.
fn identity_server() -> LoopbackServer {
    LoopbackServer::start(|request: &Recorded| {
        let path = request.path.split('?').next().unwrap_or_default();
        match path {
            "/json" => Reply::json(200, &json!({"value": "id-token-from-url"})),
            "/plain" => Reply::text(200, "id-token-from-url\n"),
            "/header" => Reply::json(
                200,
                &json!({"value": request.header("x-scenario").unwrap_or_default()}),
            ),
            "/redirect" => Reply::text(302, "").header("location", "/plain"),
            "/oversized" => Reply::text(200, &"x".repeat(1024 * 1024 + 1)),
            "/slow" => Reply::text(200, "id-token-from-url").delayed(SLOW),
            _ => Reply::json(404, &json!({"error": "not_found"})),
        }
    })
    .expect("the identity server starts")
}

/// Replaces `{{NAME}}` placeholders in every string of `value`.
fn fill(value: &Value, places: &[(&str, String)]) -> Value {
    match value {
        Value::String(text) => {
            let mut text = text.clone();
            for (name, with) in places {
                text = text.replace(&format!("{{{{{name}}}}}"), with);
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, places)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, places)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn error_case(error: &Error) -> &'static str {
    match error {
        Error::InvalidConfig { .. } => "invalid-config",
        Error::Denied { .. } => "denied",
        Error::SourceFailed { .. } => "source-failed",
        Error::ExchangeFailed(_) => "exchange-failed",
        Error::ExchangeRejected(_) => "exchange-rejected",
        Error::MalformedResponse(_) => "malformed-response",
        Error::Component(_) => "component",
        Error::Load(_) => "load",
        _ => "another error",
    }
}

fn check_error(error: &Error, expect: &Value, at: &str) {
    assert_eq!(
        Some(error_case(error)),
        expect["error"].as_str(),
        "{at}: {error}"
    );
    if let Some(capability) = expect["capability"].as_str() {
        assert!(
            matches!(error, Error::Denied { capability: c, .. } if c == capability),
            "{at}: {error}"
        );
    }
    if let Some(kind) = expect["kind"].as_str() {
        let actual = match error {
            Error::SourceFailed { kind, .. } => match kind {
                SourceKind::File => "file",
                SourceKind::Env => "env",
                SourceKind::Command => "command",
                SourceKind::Url => "url",
                SourceKind::Aws => "aws",
                SourceKind::OauthClientCredentials => "oauth_client_credentials",
            },
            _ => "",
        };
        assert_eq!(actual, kind, "{at}: {error}");
    }
    if let Some(status) = expect["status"].as_u64() {
        assert!(
            matches!(error, Error::ExchangeRejected(r) if u64::from(r.status) == status),
            "{at}: {error}"
        );
    }
    if let Some(contains) = expect["contains"].as_str() {
        assert!(error.to_string().contains(contains), "{at}: {error}");
    }
    for absent in expect["not_contains"].as_array().into_iter().flatten() {
        let absent = absent.as_str().expect("not_contains holds strings");
        assert!(!error.to_string().contains(absent), "{at}: {error}");
    }
}

fn run(table: &Value, scenario: &Value, clock: &Arc<ScenarioClock>) {
    let name = scenario["name"].as_str().expect("a scenario has a name");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let ca = TestCa::new("Scenario Test CA");
    let ca_file = ca.write(dir.path(), "test-ca.pem");
    let tokens = TokenEndpoint::start(&ca);
    let identity = identity_server();
    let drip = drip_server();
    let proxy = connect_proxy();
    let places = [
        ("DIR", dir.path().display().to_string()),
        ("TOKEN_ORIGIN", tokens.server.url()),
        ("ID_ORIGIN", identity.url()),
        ("CA_FILE", ca_file.display().to_string()),
        (
            "TLS_TOKEN_ORIGIN",
            format!("https://127.0.0.1:{}", tokens.tls.port()),
        ),
        (
            "PROXIED_TOKEN_ORIGIN",
            format!("https://{PROXIED}:{}", tokens.tls.port()),
        ),
        ("PROXY", format!("127.0.0.1:{}", proxy.port())),
        ("DOWN_PROXY", format!("127.0.0.1:{}", closed_port())),
        ("DRIP_ORIGIN", drip.url()),
    ];
    let scenario = fill(scenario, &places);
    let empty = serde_json::Map::new();
    for (file, text) in scenario["files"].as_object().unwrap_or(&empty) {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("mkdir");
        std::fs::write(&path, text.as_str().expect("file text")).expect("write");
    }
    for (link, target) in scenario["symlinks"].as_object().unwrap_or(&empty) {
        std::os::unix::fs::symlink(target.as_str().expect("a target"), dir.path().join(link))
            .expect("symlink");
    }
    let env: Vec<String> = scenario["env"]
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(var, value)| {
            set_process_var(var, Some(&value.as_str().expect("env value").into()));
            var.clone()
        })
        .collect();
    let saved: Vec<(&str, Option<OsString>)> = PROCESS_VARIABLES
        .iter()
        .map(|var| (*var, std::env::var_os(var)))
        .collect();
    for var in PROCESS_VARIABLES {
        set_process_var(var, None);
    }
    for (var, value) in scenario["process_env"].as_object().unwrap_or(&empty) {
        assert!(PROCESS_VARIABLES.contains(&var.as_str()), "{name}: {var}");
        set_process_var(var, Some(&value.as_str().expect("a value").into()));
    }
    let mut config = fill(&table["config"], &places);
    config["workload_identity_federation"]["identity_token"] = scenario["source"].clone();
    if let Some(base_url) = scenario.get("base_url") {
        config["workload_identity_federation"]["base_url"] = base_url.clone();
    }
    let config = config.to_string();
    let policy = Policy::from_toml(scenario["policy"].as_str().expect("policy text"))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    clock.secs.store(START, Ordering::SeqCst);
    let provider = compiled(clock).with_policy(policy);

    for (i, step) in scenario["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .enumerate()
    {
        let at = format!("{name}, step {}", i + 1);
        clock
            .secs
            .fetch_add(step["advance"].as_u64().unwrap_or(0), Ordering::SeqCst);
        for (file, text) in step["files"].as_object().unwrap_or(&empty) {
            std::fs::write(dir.path().join(file), text.as_str().expect("file text"))
                .expect("write");
        }
        if !step["token_endpoint"].is_null() {
            *tokens
                .behaviour
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = step["token_endpoint"].clone();
        }
        if step["call"] == "invalidate" {
            provider.invalidate(&config).expect("invalidate");
        } else {
            let expect = &step["expect"];
            match provider.get_token(&config) {
                Ok(token) => assert_eq!(
                    Some(token.token.expose()),
                    expect["token"].as_str(),
                    "{at}: got a token"
                ),
                Err(error) => check_error(&error, expect, &at),
            }
        }
        assert_eq!(
            Some(tokens.exchanges.load(Ordering::SeqCst)),
            step["exchanges"].as_u64(),
            "{at}: exchanges"
        );
        if let Some(assertion) = step["assertion"].as_str() {
            assert_eq!(tokens.last_assertion().as_deref(), Some(assertion), "{at}");
        }
        if let Some(connects) = step["connects"].as_u64() {
            assert_eq!(proxy.seen().len() as u64, connects, "{at}: CONNECTs");
        }
    }
    for var in env {
        set_process_var(&var, None);
    }
    for (var, value) in saved {
        set_process_var(var, value.as_ref());
    }
}

#[test]
fn every_scenario_of_the_shared_table() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios.json"))
            .expect("tests/scenarios.json is readable");
    let table: Value = serde_json::from_str(&text).expect("the table is JSON");
    let scenarios = table["scenarios"].as_array().expect("scenarios");
    assert!(!scenarios.is_empty());
    let clock = Arc::new(ScenarioClock::default());
    for scenario in scenarios {
        run(&table, scenario, &clock);
    }
}
