//! The identity-token sources. Each is read anew for every exchange.

pub(crate) mod aws;
mod oauth;

use crate::capabilities::{CapError, Capabilities, Header, HttpRequest};
use crate::config::{COMMAND_TIMEOUT_MS, Config, IdentitySource};
use crate::error::{Capability, Error, SourceKind};
use crate::expand;
use crate::secret::Secret;
use crate::text::{SNIPPET_BYTES, duplicate_field, field_name, redact_credentials, snippet};

/// The largest identity token accepted, in bytes.
pub(crate) const MAX_ASSERTION_BYTES: usize = 16_384;

/// The user agent of every request the component makes.
pub(crate) const USER_AGENT: &str = concat!("anthropic-wif/", env!("CARGO_PKG_VERSION"));

/// Reads the identity token (the assertion) the config points at.
pub(crate) fn read_assertion(caps: &impl Capabilities, config: &Config) -> Result<Secret, Error> {
    let source = &config.identity_token;
    let kind = kind_of(source);
    let fail = |message: String| Error::SourceFailed {
        kind,
        federation_rule_id: config.federation_rule_id.clone(),
        message,
    };
    let raw = match source {
        IdentitySource::File(path) => read_file(caps, path, &fail)?,
        IdentitySource::Env(name) => read_env(caps, name, &fail)?,
        IdentitySource::Command(argv) => run(caps, argv, &fail)?,
        IdentitySource::Url {
            url,
            headers,
            response_field,
        } => fetch(caps, url, headers, response_field.as_deref(), &fail)?,
        IdentitySource::Aws(aws) => aws::read(caps, aws, &fail)?,
        IdentitySource::OauthClientCredentials(oauth) => oauth::read(caps, oauth, &fail)?,
    };
    let token = raw.trim();
    if token.is_empty() {
        return Err(fail("the identity token is empty".into()));
    }
    if token.len() > MAX_ASSERTION_BYTES {
        return Err(fail(format!(
            "the identity token is {} bytes; the limit is {MAX_ASSERTION_BYTES}",
            token.len()
        )));
    }
    Ok(Secret::new(token))
}

/// The kind of a source.
pub(crate) fn kind_of(source: &IdentitySource) -> SourceKind {
    match source {
        IdentitySource::File(_) => SourceKind::File,
        IdentitySource::Env(_) => SourceKind::Env,
        IdentitySource::Command(_) => SourceKind::Command,
        IdentitySource::Url { .. } => SourceKind::Url,
        IdentitySource::Aws(_) => SourceKind::Aws,
        IdentitySource::OauthClientCredentials(_) => SourceKind::OauthClientCredentials,
    }
}

fn denied(capability: Capability, detail: String) -> Error {
    Error::Denied { capability, detail }
}

fn read_file(
    caps: &impl Capabilities,
    path: &str,
    fail: &impl Fn(String) -> Error,
) -> Result<String, Error> {
    let bytes = caps.read_file(path).map_err(|e| match e {
        CapError::Denied(detail) => denied(Capability::ReadFile, detail),
        CapError::NotFound(_) => fail(format!("file {path} does not exist")),
        CapError::IsDirectory(_) => fail(format!("{path} is a directory, not a file")),
        CapError::TooLarge(detail) => fail(format!("file {path} is too large ({detail})")),
        other => fail(format!("reading file {path} failed: {other}")),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(format!("file {path} is empty")));
    }
    String::from_utf8(bytes).map_err(|_| fail(format!("file {path} is not valid UTF-8")))
}

fn read_env(
    caps: &impl Capabilities,
    name: &str,
    fail: &impl Fn(String) -> Error,
) -> Result<String, Error> {
    match caps.get_env(name) {
        Ok(Some(value)) if value.trim().is_empty() => {
            Err(fail(format!("environment variable {name} is empty")))
        }
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(fail(format!("environment variable {name} is not set"))),
        Err(CapError::Denied(detail)) => Err(denied(Capability::GetEnv, detail)),
        Err(other) => Err(fail(format!(
            "reading environment variable {name} failed: {other}"
        ))),
    }
}

fn run(
    caps: &impl Capabilities,
    argv: &[String],
    fail: &impl Fn(String) -> Error,
) -> Result<String, Error> {
    let program = argv.first().map_or("", String::as_str);
    let output = caps
        .run_command(argv, COMMAND_TIMEOUT_MS)
        .map_err(|e| match e {
            CapError::Denied(detail) => denied(Capability::RunCommand, detail),
            CapError::NotFound(_) => fail(format!("program `{program}` was not found")),
            CapError::Timeout(detail) => fail(format!(
                "command `{program}` did not finish in time (the component allows {} s; the host: {detail})",
                COMMAND_TIMEOUT_MS / 1000
            )),
            CapError::TooLarge(detail) => {
                fail(format!("command `{program}` printed too much ({detail})"))
            }
            other => fail(format!("command `{program}` could not run: {other}")),
        })?;
    if output.exit_code != Some(0) {
        let status = match output.exit_code {
            Some(code) => format!("exited with status {code}"),
            None => "was ended by a signal".to_string(),
        };
        // The child gets the granted variables and may print them, or the
        // token it fetched, on stderr: credential-shaped strings are hidden
        // before the snippet is cut.
        let stderr = redact_credentials(&String::from_utf8_lossy(&output.stderr));
        let stderr = snippet(stderr.as_bytes(), SNIPPET_BYTES, &[]);
        let stderr = if stderr.is_empty() {
            "no stderr".to_string()
        } else {
            format!("stderr: {stderr}")
        };
        return Err(fail(format!("command `{program}` {status} ({stderr})")));
    }
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(format!(
            "command `{program}` printed nothing on stdout"
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| fail(format!("command `{program}` printed invalid UTF-8")))
}

fn fetch(
    caps: &impl Capabilities,
    url: &str,
    headers: &[(String, String)],
    response_field: Option<&str>,
    fail: &impl Fn(String) -> Error,
) -> Result<String, Error> {
    let syntax = |e: expand::SyntaxError| fail(e.0);
    let mut names = expand::variables(url).map_err(syntax)?;
    for (_, value) in headers {
        for name in expand::variables(value).map_err(syntax)? {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let values = names
        .into_iter()
        .map(|name| match caps.get_env(&name) {
            Ok(Some(value)) if !value.is_empty() => Ok((name, value)),
            Ok(_) => Err(fail(format!(
                "environment variable {name}, used in the url source, is not set"
            ))),
            Err(CapError::Denied(detail)) => Err(denied(Capability::GetEnv, detail)),
            Err(other) => Err(fail(format!(
                "reading environment variable {name} failed: {other}"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let lookup = |name: &str| {
        values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| fail(format!("environment variable {name} is not set")))
    };
    let expanded = expand::expand(url, lookup, syntax)?;
    if let Err(reason) = crate::origin::origin(&expanded) {
        // The reason can quote part of the expanded URL: never the values.
        let secrets: Vec<&str> = values.iter().map(|(_, value)| value.as_str()).collect();
        let reason = crate::text::snippet(reason.as_bytes(), reason.len(), &secrets);
        return Err(fail(format!(
            "{url} does not expand to an absolute http or https URL: it {reason}"
        )));
    }
    let mut request_headers = vec![Header {
        name: "user-agent".into(),
        value: USER_AGENT.into(),
    }];
    for (name, value) in headers {
        let value = expand::expand(value, lookup, syntax)?;
        if value.contains(['\r', '\n', '\0']) {
            return Err(fail(format!(
                "header {name} expands to a value with a line break"
            )));
        }
        request_headers.push(Header {
            name: name.clone(),
            value,
        });
    }
    let request = HttpRequest {
        method: "GET".into(),
        url: expanded,
        headers: request_headers,
        body: Vec::new(),
    };
    let response = caps.http_fetch(&request).map_err(|e| match e {
        CapError::Denied(detail) => denied(Capability::HttpFetch, detail),
        CapError::Timeout(detail) => fail(format!("GET {url} timed out ({detail})")),
        CapError::TooLarge(detail) => fail(format!("GET {url}: response too large ({detail})")),
        other => fail(format!("GET {url} failed: {other}")),
    })?;
    let secrets = expanded_secrets(url, headers, &request.headers[1..], &values);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    if !response.is_success() {
        let redirect = if (300..400).contains(&response.status) {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(fail(format!(
            "GET {url} returned status {}{redirect}: {}",
            response.status,
            snippet(&response.body, SNIPPET_BYTES, &secrets)
        )));
    }
    let body = String::from_utf8(response.body)
        .map_err(|_| fail(format!("GET {url} returned invalid UTF-8")))?;
    let Some(field) = response_field else {
        return Ok(body);
    };
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| fail(format!("GET {url} did not return JSON")))?;
    let object = json
        .as_object()
        .ok_or_else(|| fail(format!("GET {url} returned JSON that is not an object")))?;
    if let Some(name) = duplicate_field(body.as_bytes()) {
        return Err(fail(format!(
            "the response of GET {url} gives {} more than once",
            field_name(&name, &[field])
        )));
    }
    match object.get(field) {
        None => Err(fail(format!(
            "the response of GET {url} has no field `{field}`"
        ))),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Err(fail(format!(
            "field `{field}` of the response of GET {url} is empty"
        ))),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(fail(format!(
            "field `{field}` of the response of GET {url} is {}, not a string",
            json_type(other)
        ))),
    }
}

/// What an echoing endpoint must not get back into an error: every expanded
/// header value and variable value, and each piece of a variable value (split
/// at URL delimiters) that the templates do not already show, since a server
/// may echo only a part of the URL, such as its query.
fn expanded_secrets(
    url: &str,
    templates: &[(String, String)],
    headers: &[Header],
    values: &[(String, String)],
) -> Vec<String> {
    const MIN_PIECE: usize = 6;
    let shown =
        |piece: &str| url.contains(piece) || templates.iter().any(|(_, t)| t.contains(piece));
    let mut secrets: Vec<String> = headers.iter().map(|h| h.value.clone()).collect();
    for (_, value) in values {
        secrets.push(value.clone());
        let pieces = value.split(['/', '?', '&', '=', '#', ':', ';', ',', '@', ' ']);
        secrets.extend(
            pieces
                .filter(|p| p.len() >= MIN_PIECE && !shown(p))
                .map(str::to_string),
        );
    }
    for header in headers {
        let pieces = header.value.split(' ');
        secrets.extend(
            pieces
                .filter(|p| p.len() >= MIN_PIECE && !shown(p))
                .map(str::to_string),
        );
    }
    // Longest first, so a secret is replaced whole before any of its pieces.
    crate::text::sort_small(&mut secrets, |a, b| a.len() < b.len());
    secrets
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
