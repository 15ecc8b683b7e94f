//! An in-memory [`Capabilities`] with a settable clock, for unit tests.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::capabilities::{
    CapError, Capabilities, CommandOutput, Header, HttpRequest, HttpResponse,
};

type Responder = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, CapError>>;
type Runner = Box<dyn Fn(&[String], u32) -> Result<CommandOutput, CapError>>;

/// Files, variables, HTTP answers and commands held in memory.
pub(crate) struct FakeCaps {
    pub(crate) files: HashMap<String, Result<Vec<u8>, CapError>>,
    pub(crate) env: HashMap<String, Result<Option<String>, CapError>>,
    pub(crate) http: HashMap<String, Responder>,
    pub(crate) runner: Option<Runner>,
    pub(crate) now_ms: Cell<u64>,
    pub(crate) requests: RefCell<Vec<HttpRequest>>,
    pub(crate) commands: RefCell<Vec<(Vec<String>, u32)>>,
}

pub(crate) const T0: u64 = 1_800_000_000_000;

impl FakeCaps {
    pub(crate) fn new() -> FakeCaps {
        FakeCaps {
            files: HashMap::new(),
            env: HashMap::new(),
            http: HashMap::new(),
            runner: None,
            now_ms: Cell::new(T0),
            requests: RefCell::new(Vec::new()),
            commands: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn file(mut self, path: &str, content: &str) -> FakeCaps {
        self.files
            .insert(path.into(), Ok(content.as_bytes().to_vec()));
        self
    }

    pub(crate) fn env(mut self, name: &str, value: &str) -> FakeCaps {
        self.env.insert(name.into(), Ok(Some(value.into())));
        self
    }

    /// Answers requests whose URL starts with `prefix`.
    pub(crate) fn route(
        mut self,
        prefix: &str,
        answer: impl Fn(&HttpRequest) -> Result<HttpResponse, CapError> + 'static,
    ) -> FakeCaps {
        self.http.insert(prefix.into(), Box::new(answer));
        self
    }

    pub(crate) fn commands(
        mut self,
        run: impl Fn(&[String], u32) -> Result<CommandOutput, CapError> + 'static,
    ) -> FakeCaps {
        self.runner = Some(Box::new(run));
        self
    }

    pub(crate) fn advance_secs(&self, secs: u64) {
        self.now_ms.set(self.now_ms.get() + secs * 1000);
    }

    pub(crate) fn exchanges(&self) -> usize {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.url.ends_with("/v1/oauth/token"))
            .count()
    }
}

/// A response with `status`, a JSON content type and `body`.
pub(crate) fn respond(status: u16, body: &str) -> Result<HttpResponse, CapError> {
    Ok(HttpResponse {
        status,
        headers: vec![Header {
            name: "Content-Type".into(),
            value: "application/json".into(),
        }],
        body: body.as_bytes().to_vec(),
    })
}

impl Capabilities for FakeCaps {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, CapError> {
        self.files
            .get(path)
            .cloned()
            .unwrap_or_else(|| Err(CapError::NotFound(path.into())))
    }

    fn get_env(&self, name: &str) -> Result<Option<String>, CapError> {
        self.env.get(name).cloned().unwrap_or(Ok(None))
    }

    fn http_fetch(&self, request: &HttpRequest) -> Result<HttpResponse, CapError> {
        self.requests.borrow_mut().push(request.clone());
        let mut routes: Vec<_> = self
            .http
            .iter()
            .filter(|(p, _)| request.url.starts_with(p.as_str()))
            .collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        match routes.first() {
            Some((_, answer)) => answer(request),
            None => Err(CapError::Denied(format!("no route for {}", request.method))),
        }
    }

    fn run_command(&self, argv: &[String], timeout_ms: u32) -> Result<CommandOutput, CapError> {
        self.commands.borrow_mut().push((argv.to_vec(), timeout_ms));
        match &self.runner {
            Some(run) => run(argv, timeout_ms),
            None => Err(CapError::Denied(format!("command {}", argv.join(" ")))),
        }
    }

    fn now_millis(&self) -> u64 {
        self.now_ms.get()
    }
}

/// The JSON text of an `auth` block with `source` as its identity token and
/// `extra` fields in the federation block.
pub(crate) fn config_json(source: serde_json::Value, extra: serde_json::Value) -> String {
    let mut wif = serde_json::json!({
        "federation_rule_id": "fdrl_rule1",
        "organization_id": "12345678-9abc-def0-1234-56789abcdef0",
        "base_url": "https://api.anthropic.com",
        "identity_token": source,
    });
    if let (Some(wif), Some(extra)) = (wif.as_object_mut(), extra.as_object()) {
        wif.extend(extra.clone());
    }
    serde_json::json!({"type": "workload_identity_federation", "workload_identity_federation": wif})
        .to_string()
}

/// The parsed config of [`config_json`].
pub(crate) fn config(source: serde_json::Value) -> crate::Config {
    crate::Config::parse(&config_json(source, serde_json::json!({}))).expect("valid test config")
}

/// Every place a secret could show in an error: its `Display` and `Debug`.
pub(crate) fn assert_no_secret(error: &crate::Error, secrets: &[&str]) {
    let shown = format!("{error} {error:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "`{secret}` leaked into: {shown}");
    }
}
