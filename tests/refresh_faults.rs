//! Faults during refresh, on an injected clock: the token endpoint or the
//! identity source goes down, hangs up, turns slow or answers 5xx while a
//! valid token is cached.
//!
//! In every case: no caller sees an error while the token has more than
//! 30 s left (the advisory window serves the cached token), failed refreshes
//! are retried at most every 5 s (counted at the loopback servers), the
//! error appears once 30 s or less are left, and service resumes by itself
//! once the endpoint or the source is back — in the mandatory window, after
//! expiry, and within the advisory window without a single error.

#![deny(unsafe_code)]

mod common;

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use anthropic_wif_host::loopback::{Recorded, Reply, token_endpoint};
use anthropic_wif_host::spread::RefreshSpread;
use anthropic_wif_host::{Clock, Error, ManualClock, Provider, SourceKind};
use common::*;
use serde_json::json;

/// The wall clock the injected clock starts at (Unix seconds).
const START: u64 = 1_800_000_000;
/// The policy's HTTP timeout, in seconds: short, so that the slow endpoint
/// costs little.
const TIMEOUT_SECS: f64 = 0.5;
/// How long the slow endpoint waits before it answers.
const SLOW: Duration = Duration::from_secs(2);
/// Callers asking at once when the advisory window opens.
const CALLERS: usize = 8;

/// How an endpoint misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Its port is closed.
    Down,
    /// It reads the request and closes the connection without an answer.
    HangUp,
    /// It answers after [`SLOW`], past the policy's timeout.
    Slow,
    /// It answers with this status and a JSON error.
    Status(u16),
}

type UpHandler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A loopback endpoint that can be switched between its normal answer and
/// a fault. `Down` closes its port; coming back reopens the same port.
struct Switchable {
    addr: SocketAddr,
    state: Arc<Mutex<Option<Fault>>>,
    up: Arc<UpHandler>,
    requests: Arc<AtomicUsize>,
    issued: Arc<AtomicUsize>,
    server: Mutex<Option<RawServer>>,
}

impl Switchable {
    fn start(up: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Switchable {
        let mut switchable = Switchable {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            state: Arc::new(Mutex::new(None)),
            up: Arc::new(up),
            requests: Arc::new(AtomicUsize::new(0)),
            issued: Arc::new(AtomicUsize::new(0)),
            server: Mutex::new(None),
        };
        let server = switchable.listen();
        switchable.addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
        *switchable.server.lock().unwrap() = Some(server);
        switchable
    }

    fn listen(&self) -> RawServer {
        let (state, up) = (self.state.clone(), self.up.clone());
        let (requests, issued) = (self.requests.clone(), self.issued.clone());
        RawServer::start_on(self.addr, move |stream, request| {
            requests.fetch_add(1, Ordering::SeqCst);
            let fault = *state.lock().unwrap();
            serve(stream, request, fault, &*up, &issued);
        })
        .expect("the endpoint's port can be reopened")
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received so far, across restarts.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Normal 2xx answers given so far, across restarts.
    fn issued(&self) -> usize {
        self.issued.load(Ordering::SeqCst)
    }

    /// Starts misbehaving.
    fn fail(&self, fault: Fault) {
        *self.state.lock().unwrap() = Some(fault);
        if fault == Fault::Down {
            drop(self.server.lock().unwrap().take());
            // The port is closed: a connection is refused.
            assert!(TcpStream::connect(self.addr).is_err(), "the port is closed");
        }
    }

    /// Behaves again, on the same port.
    fn recover(&self) {
        *self.state.lock().unwrap() = None;
        let mut server = self.server.lock().unwrap();
        if server.is_none() {
            *server = Some(self.listen());
        }
    }
}

/// Answers `request` as `fault` says; counts the normal 2xx answers in
/// `issued` (before they are sent, so that the client never sees an answer
/// not yet counted).
fn serve(
    stream: &mut TcpStream,
    request: &RawRequest,
    fault: Option<Fault>,
    up: &UpHandler,
    issued: &AtomicUsize,
) {
    match fault {
        None => {
            let reply = up(&request.recorded());
            let headers: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            if (200..300).contains(&reply.status) {
                issued.fetch_add(1, Ordering::SeqCst);
            }
            respond(stream, reply.status, &headers, &reply.body);
        }
        Some(Fault::Down) => unreachable!("a closed port gets no request"),
        Some(Fault::HangUp) => {}
        Some(Fault::Slow) => {
            std::thread::sleep(SLOW);
            let late =
                json!({"access_token": "sk-ant-oat01-late", "expires_in": 3600, "value": JWT});
            respond(
                stream,
                200,
                &[("content-type", "application/json")],
                late.to_string().as_bytes(),
            );
        }
        Some(Fault::Status(status)) => respond(
            stream,
            status,
            &[("content-type", "application/json")],
            json!({"error": "temporarily_unavailable", "error_description": "try later"})
                .to_string()
                .as_bytes(),
        ),
    }
}

/// A provider on a manual clock.
fn provider_at_start(policy_toml: &str) -> (Provider, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Duration::from_secs(START)));
    let provider = Provider::builder()
        .policy(policy(policy_toml))
        .clock(clock.clone())
        .refresh_spread(RefreshSpread::none())
        .build()
        .expect("the embedded component loads");
    (provider, clock)
}

/// One refresh-fault scenario: a provider, its config and the fault.
struct Scenario<'a> {
    name: String,
    provider: Provider,
    clock: Arc<ManualClock>,
    config: String,
    /// Makes the endpoint or source misbehave, and puts it right.
    fail: &'a dyn Fn(),
    recover: &'a dyn Fn(),
    /// Refresh attempts so far, when the servers can see them.
    attempts: &'a dyn Fn() -> Option<usize>,
    /// Exchanges the token endpoint answered with a token, so far.
    tokens_issued: &'a dyn Fn() -> usize,
    /// Whether an error is the one this fault should cause.
    expected_error: &'a dyn Fn(&Error) -> bool,
    /// The outcome of the last call, and the timeline printed at the end.
    last: RefCell<String>,
    timeline: RefCell<Vec<(String, String, String)>>,
}

impl Scenario<'_> {
    /// Moves the clock to `secs` after [`START`].
    fn at(&self, secs: u64) {
        let now = u64::try_from(self.clock.now().as_millis()).unwrap() - START * 1000;
        assert!(secs * 1000 >= now, "the clock only moves forward");
        self.clock.advance(Duration::from_millis(secs * 1000 - now));
    }

    fn token(&self, when: &str) -> String {
        match self.provider.get_token(&self.config) {
            Ok(token) => {
                let token = token.token.expose().to_string();
                *self.last.borrow_mut() = format!("token {}", short(&token));
                token
            }
            Err(error) => panic!("{}: {when}: a caller got an error: {error}", self.name),
        }
    }

    fn error(&self, when: &str) -> Error {
        let error = self
            .provider
            .get_token(&self.config)
            .expect_err(&format!("{}: {when}: an error is due", self.name));
        assert!(
            (self.expected_error)(&error),
            "{}: {when}: not the expected error: {error:?}",
            self.name
        );
        assert!(
            !matches!(error, Error::Component(_)),
            "{}: a trap",
            self.name
        );
        let leaks = leaked(&error, &[JWT, "sk-ant-oat01-demo", "sk-ant-oat01-late"]);
        assert!(leaks.is_empty(), "{}: secrets in {error:?}", self.name);
        *self.last.borrow_mut() = match &error {
            Error::SourceFailed { kind, .. } => format!("SourceFailed ({kind:?})"),
            Error::ExchangeFailed(_) => "ExchangeFailed".into(),
            Error::ExchangeRejected(r) => format!("ExchangeRejected ({})", r.status),
            other => format!("{other:?}"),
        };
        error
    }

    /// Checks the number of refresh attempts, when it can be seen.
    fn attempts_are(&self, expected: usize, when: &str) {
        let got = (self.attempts)();
        if let Some(got) = got {
            assert_eq!(got, expected, "{}: {when}: refresh attempts", self.name);
        }
        self.timeline.borrow_mut().push((
            when.to_string(),
            self.last.borrow().clone(),
            got.map_or("(not visible)".into(), |n| n.to_string()),
        ));
    }

    fn run(&self) {
        let e = EXPIRES_IN;
        self.at(0);
        assert_eq!(self.token("first call"), "sk-ant-oat01-demo-1");
        self.attempts_are(1, "3600 s left: first call");

        (self.fail)();
        self.at(e - 121);
        assert_eq!(self.token("121 s left"), "sk-ant-oat01-demo-1");
        self.attempts_are(1, "121 s left, fault on");

        // The advisory window opens: many callers at once, one attempt, no
        // error for anyone.
        self.at(e - 100);
        let barrier = Barrier::new(CALLERS);
        let (provider, config) = (&self.provider, &self.config);
        let got: Result<Vec<String>, Error> = std::thread::scope(|scope| {
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        provider
                            .get_token(config)
                            .map(|t| t.token.expose().to_string())
                    })
                })
                .collect();
            callers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let got =
            got.unwrap_or_else(|e| panic!("{}: a concurrent caller got an error: {e}", self.name));
        assert!(
            got.iter().all(|t| t == "sk-ant-oat01-demo-1"),
            "{}: {got:?}",
            self.name
        );
        *self.last.borrow_mut() = format!("{CALLERS} callers: token demo-1");
        self.attempts_are(2, "100 s left, concurrent callers");

        // The 5 s backoff, through the advisory window.
        for (secs, attempts) in [
            (e - 96, 2),
            (e - 95, 3),
            (e - 91, 3),
            (e - 61, 4),
            (e - 57, 4),
            (e - 56, 5),
            (e - 31, 6),
        ] {
            let left = e - secs;
            self.at(secs);
            assert_eq!(self.token(&format!("{left} s left")), "sk-ant-oat01-demo-1");
            self.attempts_are(attempts, &format!("{left} s left"));
        }

        // The mandatory window: every call tries, and fails.
        self.at(e - 30);
        self.error("30 s left");
        self.attempts_are(7, "30 s left");
        self.at(e - 29);
        self.error("29 s left");
        self.attempts_are(8, "29 s left (no backoff)");
        self.at(e + 10);
        self.error("expired");
        self.attempts_are(9, "expired 10 s ago");
        assert_eq!(
            (self.tokens_issued)(),
            1,
            "{}: no token while failing",
            self.name
        );

        // Back: the next call gets a new token, with no help.
        (self.recover)();
        self.at(e + 11);
        assert_eq!(self.token("after recovery"), "sk-ant-oat01-demo-2");
        self.attempts_are(10, "fault off, expired 11 s ago");

        // Once more, recovering within the advisory window: nobody sees an
        // error at all.
        let issued = e + 11;
        (self.fail)();
        self.at(issued + e - 100);
        assert_eq!(self.token("100 s left, again"), "sk-ant-oat01-demo-2");
        self.attempts_are(11, "new token: 100 s left, fault on");
        (self.recover)();
        self.at(issued + e - 96);
        assert_eq!(self.token("in the backoff"), "sk-ant-oat01-demo-2");
        self.attempts_are(11, "96 s left, fault off (backoff)");
        self.at(issued + e - 95);
        assert_eq!(self.token("after the backoff"), "sk-ant-oat01-demo-3");
        self.attempts_are(12, "95 s left");
        assert_eq!((self.tokens_issued)(), 3, "{}", self.name);
        self.print();
    }

    fn print(&self) {
        let timeline = self.timeline.borrow();
        let width = timeline.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let mut out = format!(
            "\n{}: step → outcome (refresh attempts so far)\n",
            self.name
        );
        for (when, outcome, attempts) in timeline.iter() {
            out.push_str(&format!("  {when:width$}  {outcome:34} {attempts}\n"));
        }
        println!("{out}");
    }
}

/// `sk-ant-oat01-demo-2` → `demo-2`: enough to tell tokens apart in the
/// printed timeline, not a usable token.
fn short(token: &str) -> &str {
    token.strip_prefix("sk-ant-oat01-").unwrap_or("?")
}

/// Which part of the flow is faulty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Faulty {
    TokenEndpoint,
    IdentityUrl,
}

/// A url source and a token endpoint, both switchable; `faulty` fails with
/// `fault`.
fn endpoint_fault(faulty: Faulty, fault: Fault) {
    // A new identity token on every request, as a real issuer hands out:
    // assertions are single-use.
    let minted = AtomicUsize::new(0);
    let identity = Switchable::start(move |_| {
        let n = minted.fetch_add(1, Ordering::SeqCst);
        Reply::json(200, &json!({"value": format!("{JWT}.{n}")}))
    });
    let tokens = Switchable::start(token_endpoint(EXPIRES_IN));
    let (provider, clock) = provider_at_start(&format!(
        "[http]\nallow_origins = {}\ntimeout_secs = {TIMEOUT_SECS}\n",
        q_list(&[identity.url(), tokens.url()])
    ));
    let config = config(
        &tokens.url(),
        json!({"url": format!("{}/oidc", identity.url()), "response_field": "value"}),
    );
    let target = match faulty {
        Faulty::TokenEndpoint => &tokens,
        Faulty::IdentityUrl => &identity,
    };
    // Each attempt fetches the identity token first: the identity server
    // counts attempts, unless it is the one that is down.
    let attempts =
        || (faulty == Faulty::TokenEndpoint || fault != Fault::Down).then(|| identity.requests());
    // Tokens issued: the 2xx answers of the token endpoint.
    let tokens_issued = || tokens.issued();
    let expected_error = |error: &Error| match (faulty, fault) {
        (Faulty::IdentityUrl, _) => matches!(
            error,
            Error::SourceFailed {
                kind: SourceKind::Url,
                ..
            }
        ),
        (Faulty::TokenEndpoint, Fault::Status(status)) => {
            matches!(error, Error::ExchangeRejected(r) if r.status == status)
        }
        (Faulty::TokenEndpoint, Fault::Slow) => {
            matches!(error, Error::ExchangeFailed(m) if m.contains("did not answer in time"))
        }
        (Faulty::TokenEndpoint, _) => matches!(error, Error::ExchangeFailed(_)),
    };
    Scenario {
        name: format!("{faulty:?} {fault:?}"),
        provider,
        clock,
        config,
        fail: &|| target.fail(fault),
        recover: &|| target.recover(),
        attempts: &attempts,
        tokens_issued: &tokens_issued,
        expected_error: &expected_error,
        last: RefCell::default(),
        timeline: RefCell::default(),
    }
    .run();
}

#[test]
fn token_endpoint_down() {
    endpoint_fault(Faulty::TokenEndpoint, Fault::Down);
}

#[test]
fn token_endpoint_hangs_up() {
    endpoint_fault(Faulty::TokenEndpoint, Fault::HangUp);
}

#[test]
fn token_endpoint_slow() {
    endpoint_fault(Faulty::TokenEndpoint, Fault::Slow);
}

#[test]
fn token_endpoint_503() {
    endpoint_fault(Faulty::TokenEndpoint, Fault::Status(503));
}

#[test]
fn identity_url_down() {
    endpoint_fault(Faulty::IdentityUrl, Fault::Down);
}

#[test]
fn identity_url_slow() {
    endpoint_fault(Faulty::IdentityUrl, Fault::Slow);
}

#[test]
fn identity_url_500() {
    endpoint_fault(Faulty::IdentityUrl, Fault::Status(500));
}

/// How a token file goes wrong.
#[derive(Clone, Copy, Debug)]
enum FileFault {
    Removed,
    Emptied,
}

fn break_file(path: &Path, fault: FileFault) {
    match fault {
        FileFault::Removed => std::fs::remove_file(path).unwrap(),
        FileFault::Emptied => std::fs::write(path, "").unwrap(),
    }
}

/// A file source whose file is removed or emptied; read directly (`file`)
/// or through a command that counts its runs (so that attempts can be
/// counted).
fn file_fault(fault: FileFault, through_command: bool) {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let counter = files.dir().join("runs");
    let (source, policy_toml) = if through_command {
        let script = format!(
            "echo run >> '{}'; cat '{}'",
            counter.display(),
            path.display()
        );
        (
            json!({"command": ["sh", "-c", script]}),
            format!(
                "[commands]\nallow = [[\"sh\", \"-c\"]]\n[http]\nallow_origins = [{}]\n",
                q(tokens.url())
            ),
        )
    } else {
        (
            json!({ "file": path }),
            format!(
                "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
                q(path.display().to_string()),
                q(tokens.url())
            ),
        )
    };
    let (provider, clock) = provider_at_start(&policy_toml);
    let config = config(&tokens.url(), source);
    let kind = if through_command {
        SourceKind::Command
    } else {
        SourceKind::File
    };
    let attempts = || {
        through_command.then(|| {
            std::fs::read_to_string(&counter)
                .map(|runs| runs.lines().count())
                .unwrap_or(0)
        })
    };
    let tokens_issued = || exchanges(&tokens).len();
    let rotations = AtomicUsize::new(0);
    let expected_error = |error: &Error| {
        matches!(error, Error::SourceFailed { kind: k, message, .. }
        if *k == kind && (through_command || message.contains(match fault {
            FileFault::Removed => "does not exist",
            FileFault::Emptied => "is empty",
        })))
    };
    Scenario {
        name: format!(
            "{fault:?} file{}",
            if through_command { " (command)" } else { "" }
        ),
        provider,
        clock,
        config,
        fail: &|| break_file(&path, fault),
        // The issuer writes a new identity token (assertions are
        // single-use).
        recover: &|| {
            let n = rotations.fetch_add(1, Ordering::SeqCst);
            std::fs::write(&path, format!("{JWT}.{n}")).unwrap();
        },
        attempts: &attempts,
        tokens_issued: &tokens_issued,
        expected_error: &expected_error,
        last: RefCell::default(),
        timeline: RefCell::default(),
    }
    .run();
}

#[test]
fn identity_file_removed() {
    file_fault(FileFault::Removed, false);
}

#[test]
fn identity_file_emptied() {
    file_fault(FileFault::Emptied, false);
}

#[test]
fn identity_file_removed_under_a_counting_command() {
    file_fault(FileFault::Removed, true);
}
