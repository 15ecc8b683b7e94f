//! Loopback stand-ins for an OIDC identity endpoint and the Anthropic token
//! endpoint, bound to 127.0.0.1 only. `wif-host demo` and the tests use them.

#![deny(unsafe_code)]

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};

/// A request the server received.
#[derive(Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first header called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server answers.
#[derive(Clone)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::text(status, &body.to_string()).header("content-type", "application/json")
    }

    /// A plain-text answer.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Answers after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// An HTTP server on 127.0.0.1 with an ephemeral port that records every
/// request and answers with a handler. Stops when dropped.
pub struct LoopbackServer {
    port: u16,
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Starts a server that answers every request with `handler`.
    pub fn start(
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> std::io::Result<LoopbackServer> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(std::io::Error::other)?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|a| a.port())
            .ok_or_else(|| std::io::Error::other("the server has no IP address"))?;
        let server = Arc::new(server);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (server, requests) = (server.clone(), requests.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let (handler, requests) = (handler.clone(), requests.clone());
                    std::thread::spawn(move || serve(request, &*handler, &requests));
                }
            })
        };
        Ok(LoopbackServer {
            port,
            server,
            requests,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut request: tiny_http::Request, handler: &Handler, requests: &Mutex<Vec<Recorded>>) {
    let mut body = Vec::new();
    // A body that cannot be read is recorded as far as it was read.
    let _ = request
        .as_reader()
        .take(4 * 1024 * 1024)
        .read_to_end(&mut body);
    let recorded = Recorded {
        method: request.method().as_str().to_string(),
        path: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    };
    requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(recorded.clone());
    let reply = handler(&recorded);
    std::thread::sleep(reply.delay);
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in &reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    // The client may have gone (a timeout test); nothing to do then.
    let _ = request.respond(response);
}

/// A stand-in for the Anthropic token endpoint: checks the exchange as the
/// official SDKs send it and issues `sk-ant-oat01-demo-N` tokens valid for
/// `expires_in` seconds, or answers 400 with an OAuth error saying what is
/// wrong.
pub fn token_endpoint(expires_in: u64) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let issued = AtomicU64::new(0);
    move |request| match check_exchange(request) {
        Ok(()) => {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            Reply::json(
                200,
                &json!({"access_token": format!("sk-ant-oat01-demo-{n}"), "expires_in": expires_in, "token_type": "Bearer"}),
            )
            .header("request-id", &format!("req_demo_{n}"))
        }
        Err(problem) => Reply::json(
            400,
            &json!({"error": "invalid_request", "error_description": problem}),
        )
        .header("request-id", "req_demo_rejected"),
    }
}

/// [`token_endpoint`] with the real endpoint's single-use rule: an assertion
/// it has already exchanged is refused with `401 {"error":"invalid_grant"}`,
/// and nothing says why.
pub fn single_use_token_endpoint(
    expires_in: u64,
) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let issue = token_endpoint(expires_in);
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    move |request| {
        let assertion = serde_json::from_slice::<Value>(&request.body)
            .ok()
            .and_then(|body| body["assertion"].as_str().map(String::from));
        if let Some(assertion) = assertion {
            let mut seen = seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !seen.insert(assertion) {
                return Reply::json(401, &json!({"error": "invalid_grant"}))
                    .header("request-id", "req_demo_reused");
            }
        }
        issue(request)
    }
}

fn check_exchange(request: &Recorded) -> Result<(), String> {
    if request.method != "POST" || request.path != "/v1/oauth/token" {
        return Err(format!(
            "expected POST /v1/oauth/token, got {} {}",
            request.method, request.path
        ));
    }
    if request.header("content-type") != Some("application/json") {
        return Err("content-type must be application/json".into());
    }
    if request.header("anthropic-beta") != Some("oauth-2025-04-20,oidc-federation-2026-04-01") {
        return Err("anthropic-beta must be oauth-2025-04-20,oidc-federation-2026-04-01".into());
    }
    for forbidden in ["anthropic-version", "x-api-key", "authorization"] {
        if request.header(forbidden).is_some() {
            return Err(format!("the exchange must not send {forbidden}"));
        }
    }
    let body: Value =
        serde_json::from_slice(&request.body).map_err(|_| "the body is not JSON".to_string())?;
    if body["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err("grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer".into());
    }
    for field in ["assertion", "federation_rule_id", "organization_id"] {
        if body[field].as_str().is_none_or(str::is_empty) {
            return Err(format!("{field} is missing"));
        }
    }
    Ok(())
}

/// A stand-in for an OIDC identity endpoint in the style of GitHub Actions:
/// answers `{"value": token}` to requests bearing `Authorization: bearer
/// {request_token}`, and 401 to others.
pub fn identity_endpoint(
    token: &str,
    request_token: &str,
) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let (token, expected) = (token.to_string(), format!("bearer {request_token}"));
    move |request| {
        if request.header("authorization") == Some(expected.as_str()) {
            Reply::json(200, &json!({"count": 1, "value": token}))
        } else {
            Reply::text(401, "missing or wrong bearer token")
        }
    }
}
