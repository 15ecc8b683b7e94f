//! Entry points for the fuzz targets in `fuzz/`, compiled only with the
//! `fuzzing` cargo feature. Not part of the API.
//!
//! Each function drives one parser with untrusted input and panics only when
//! an invariant breaks: a panic inside the library, a secret shown in an
//! error, or a result that contradicts the input. They return whether the
//! input was accepted, so a target can tell the two paths apart.

use std::cell::RefCell;

use serde_json::{Map, Value, json};

use crate::capabilities::{
    CapError, Capabilities, CommandOutput, Header, HttpRequest, HttpResponse,
};
use crate::config::{Config, IdentitySource};
use crate::error::Error;
use crate::requirements::Requirements;
use crate::secret::Secret;
use crate::{exchange, expand, sources};

/// The identity assertion of the exchange and identity targets; it never
/// shows in an error, whatever the response holds.
pub const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.fuzz-assertion-secret.c2ln";
/// The bearer token the identity URL source sends (`${REQUEST_TOKEN}`).
pub const REQUEST_TOKEN: &str = "fuzz-request-bearer-7f3a9c";
/// The value of `${AUDIENCE}` in the identity URL's query.
pub const AUDIENCE: &str = "fuzz-audience-secret-51d2";

/// Parses and validates an `auth` block. An accepted config re-parses to
/// itself from its own fields and has requirements.
pub fn parse_config(json: &str) -> bool {
    let config = match Config::parse(json) {
        Ok(config) => config,
        Err(e) => {
            let _ = (e.to_string(), format!("{e:?}"));
            return false;
        }
    };
    let again = Config::from_value(&auth_block(&config))
        .unwrap_or_else(|e| panic!("an accepted config no longer parses: {e}"));
    assert_eq!(again, config, "an accepted config re-parses differently");
    assert!(!config.base_url.ends_with('/'), "{}", config.base_url);
    Requirements::of(&config).expect("an accepted config has requirements");
    true
}

/// The `auth` block that means `config`.
fn auth_block(config: &Config) -> Value {
    let source = match &config.identity_token {
        IdentitySource::File(path) => json!({"file": path}),
        IdentitySource::Env(name) => json!({"env": name}),
        IdentitySource::Command(argv) => json!({"command": argv}),
        IdentitySource::Url {
            url,
            headers,
            response_field,
        } => {
            let mut source = json!({"url": url});
            if !headers.is_empty() {
                let headers: Map<String, Value> = headers
                    .iter()
                    .map(|(name, value)| (name.clone(), json!(value)))
                    .collect();
                source["headers"] = Value::Object(headers);
            }
            if let Some(field) = response_field {
                source["response_field"] = json!(field);
            }
            source
        }
    };
    let mut wif = json!({
        "federation_rule_id": config.federation_rule_id,
        "organization_id": config.organization_id,
        "base_url": config.base_url,
        "identity_token": source,
    });
    if let Some(id) = &config.service_account_id {
        wif["service_account_id"] = json!(id);
    }
    if let Some(id) = &config.workspace_id {
        wif["workspace_id"] = json!(id);
    }
    json!({"type": "workload_identity_federation", "workload_identity_federation": wif})
}

/// Lists and expands the `${NAME}` and `${env.NAME}` references of
/// `template`, each variable standing for its name reversed. Both agree on
/// whether the template is well formed; expansion is not recursive, leaves
/// text without `${` untouched, and expanding every `NAME` to `${NAME}` gives
/// the template back with `${env.` written `${`.
pub fn expand(template: &str) -> bool {
    let reversed = |name: &str| Ok::<_, String>(name.chars().rev().collect::<String>());
    let names = expand::variables(template);
    let expanded = expand::expand(template, reversed, |e| e.0);
    match (names, expanded) {
        (Ok(names), Ok(out)) => {
            for (i, name) in names.iter().enumerate() {
                assert!(expand::is_variable_name(name), "{name:?}");
                assert!(!names[..i].contains(name), "{name:?} listed twice");
            }
            if !expand::has_reference(template) {
                assert!(names.is_empty());
                assert_eq!(out, template);
            }
            // Each `${NAME}` becomes NAME reversed: 3 bytes fewer per
            // reference, and 4 more for the `env.` of `${env.NAME}`.
            let references = template.matches("${").count();
            let env_references = template.matches("${env.").count();
            assert_eq!(
                out.len() + 3 * references + 4 * env_references,
                template.len()
            );
            let itself =
                expand::expand(template, |n| Ok::<_, String>(format!("${{{n}}}")), |e| e.0);
            assert_eq!(itself, Ok(template.replace("${env.", "${")));
            true
        }
        (Err(listed), Err(expanded)) => {
            assert_eq!(listed.0, expanded);
            false
        }
        (names, out) => panic!("variables and expand disagree: {names:?} vs {out:?}"),
    }
}

/// Reads a token endpoint answer with a fixed valid config and assertion.
/// An error never shows the assertion, nor an `access_token` of the body
/// that starts with `sk-ant-`; an accepted answer yields a non-empty,
/// trimmed token and a positive lifetime.
pub fn parse_exchange_response(status: u16, body: &[u8]) -> bool {
    let config = fixed_config(IdentitySource::File("/var/run/token".into()));
    let response = HttpResponse {
        status,
        headers: vec![Header {
            name: "request-id".into(),
            value: format!("req_{ASSERTION}"),
        }],
        body: body.to_vec(),
    };
    match exchange::parse(response, &config, &Secret::new(ASSERTION)) {
        Ok(issued) => {
            let token = issued.token.expose();
            assert!(!token.is_empty() && token.trim() == token, "{token:?}");
            assert!(issued.expires_in_secs > 0);
            true
        }
        Err(error) => {
            let mut secrets = vec![ASSERTION.to_string()];
            if let Some(token) = body_field(body, "access_token")
                .map(|t| t.trim().to_string())
                .filter(|t| t.starts_with("sk-ant-"))
            {
                secrets.push(token);
            }
            assert_hidden(&error, &secrets);
            false
        }
    }
}

/// Runs the `url` identity source against an endpoint that answers `status`
/// and `body`. An error never shows the bearer token or variable values that
/// went into the request (unless `response_field` itself holds them), nor,
/// for a 2xx answer, an identity token starting with `eyJ`; an accepted
/// answer yields a non-empty, trimmed assertion within the size limit.
pub fn read_identity_response(status: u16, body: &[u8], response_field: Option<&str>) -> bool {
    let config = fixed_config(IdentitySource::Url {
        url: "https://idp.example/token?audience=${AUDIENCE}".into(),
        headers: vec![("Authorization".into(), "Bearer ${REQUEST_TOKEN}".into())],
        response_field: response_field.map(str::to_string),
    });
    let caps = Answer {
        response: HttpResponse {
            status,
            headers: Vec::new(),
            body: body.to_vec(),
        },
        requests: RefCell::new(0),
    };
    let result = sources::read_assertion(&caps, &config);
    assert_eq!(*caps.requests.borrow(), 1, "one GET per read");
    match result {
        Ok(assertion) => {
            let token = assertion.expose();
            assert!(!token.is_empty() && token.trim() == token, "{token:?}");
            assert!(token.len() <= sources::MAX_ASSERTION_BYTES);
            if response_field.is_none() {
                assert_eq!(Ok(token), std::str::from_utf8(body).map(str::trim));
            }
            true
        }
        Err(error) => {
            let field = response_field.unwrap_or_default();
            let mut secrets: Vec<String> = [REQUEST_TOKEN, AUDIENCE]
                .into_iter()
                .filter(|s| !field.contains(s))
                .map(str::to_string)
                .collect();
            if (200..300).contains(&status) {
                let token = match response_field {
                    Some(name) => body_field(body, name),
                    None => String::from_utf8(body.to_vec()).ok(),
                };
                secrets.extend(
                    token
                        .map(|t| t.trim().to_string())
                        .filter(|t| t.starts_with("eyJ") && !field.contains(t.as_str())),
                );
            }
            assert_hidden(&error, &secrets);
            false
        }
    }
}

fn fixed_config(identity_token: IdentitySource) -> Config {
    Config {
        federation_rule_id: "fdrl_fuzz".into(),
        organization_id: "12345678-9abc-def0-1234-56789abcdef0".into(),
        service_account_id: None,
        workspace_id: None,
        base_url: "https://api.anthropic.com".into(),
        identity_token,
    }
}

/// The string field `name` of a JSON object body.
fn body_field(body: &[u8], name: &str) -> Option<String> {
    match serde_json::from_slice::<Value>(body).ok()?.get(name)? {
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Panics when the error's `Display` or `Debug` shows one of `secrets`.
fn assert_hidden(error: &Error, secrets: &[String]) {
    let shown = format!("{error} {error:?}");
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(
            !shown.contains(secret.as_str()),
            "`{secret}` shown in: {shown}"
        );
    }
}

/// Capabilities that answer every request with one response and set
/// `${AUDIENCE}` and `${REQUEST_TOKEN}`.
struct Answer {
    response: HttpResponse,
    requests: RefCell<usize>,
}

impl Capabilities for Answer {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, CapError> {
        Err(CapError::Denied(path.into()))
    }

    fn get_env(&self, name: &str) -> Result<Option<String>, CapError> {
        Ok(match name {
            "AUDIENCE" => Some(AUDIENCE.into()),
            "REQUEST_TOKEN" => Some(REQUEST_TOKEN.into()),
            _ => None,
        })
    }

    fn http_fetch(&self, _request: &HttpRequest) -> Result<HttpResponse, CapError> {
        *self.requests.borrow_mut() += 1;
        Ok(self.response.clone())
    }

    fn run_command(&self, argv: &[String], _timeout_ms: u32) -> Result<CommandOutput, CapError> {
        Err(CapError::Denied(argv.join(" ")))
    }

    fn now_millis(&self) -> u64 {
        0
    }
}
