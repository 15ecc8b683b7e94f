//! The `auth` block: parsing and strict validation.
//!
//! Every rule names the field it checks, as a dotted path from the `auth`
//! block (`workload_identity_federation.identity_token.url`), and unknown
//! fields are errors everywhere, so a typo never silently changes behaviour.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::expand;
use crate::origin;

mod aws;
mod oauth;

pub(crate) use aws::is_region;
pub use aws::{AwsSource, DEFAULT_AUDIENCE, SigningAlgorithm};
pub use oauth::{ClientAuth, OauthSource};

/// The only supported `type`.
pub const AUTH_TYPE: &str = "workload_identity_federation";
/// The token endpoint's base URL when `base_url` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// How long a `command` source may run.
pub const COMMAND_TIMEOUT_MS: u32 = 30_000;

const WIF: &str = "workload_identity_federation";
const SOURCE: &str = "workload_identity_federation.identity_token";
const SOURCES: [&str; 6] = [
    "file",
    "env",
    "command",
    "url",
    "aws",
    "oauth_client_credentials",
];
/// How the "give one of" messages list the sources.
const SOURCE_LIST: &str = "`file`, `env`, `command`, `url`, `aws` or `oauth_client_credentials`";

/// A validated Workload Identity Federation configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// `fdrl_…`.
    pub federation_rule_id: String,
    /// A UUID.
    pub organization_id: String,
    /// `svac_…`, when set.
    pub service_account_id: Option<String>,
    /// `wrkspc_…` or `default`, when set.
    pub workspace_id: Option<String>,
    /// The token endpoint's base URL, without a trailing `/`.
    pub base_url: String,
    /// Where the identity token comes from.
    pub identity_token: IdentitySource,
}

/// Where the OIDC identity token (the assertion) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentitySource {
    /// A file, read whole.
    File(String),
    /// An environment variable.
    Env(String),
    /// A program's standard output (argv, no shell).
    Command(Vec<String>),
    /// An HTTP GET.
    Url {
        /// The URL as written, `${VAR}` references unexpanded.
        url: String,
        /// Header names and values (values may hold `${NAME}` or
        /// `${env.NAME}`).
        headers: Vec<(String, String)>,
        /// The top-level JSON string field holding the token, if the body
        /// is JSON.
        response_field: Option<String>,
    },
    /// AWS STS `GetWebIdentityToken`, signed with the workload's AWS
    /// credentials.
    Aws(AwsSource),
    /// An OAuth 2.0 client-credentials grant; its access token is the
    /// identity token.
    OauthClientCredentials(OauthSource),
}

impl Config {
    /// Parses and validates the JSON text of an `auth` block.
    pub fn parse(json: &str) -> Result<Config, Error> {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            Error::config(
                "",
                format!(
                    "is not valid JSON ({}, line {} column {})",
                    classify(&e),
                    e.line(),
                    e.column()
                ),
            )
        })?;
        Config::from_value(&value)
    }

    /// Validates an already parsed `auth` block.
    pub fn from_value(value: &Value) -> Result<Config, Error> {
        let auth = object(value, "")?;
        allow_only(auth, "", &["type", WIF])?;
        match auth.get("type") {
            None => {
                return Err(Error::config(
                    "type",
                    format!("is missing; write `type: {AUTH_TYPE}`"),
                ));
            }
            Some(Value::String(t)) if t == AUTH_TYPE => {}
            Some(Value::String(t)) => {
                return Err(Error::config(
                    "type",
                    format!("`{t}` is not supported; the only type is `{AUTH_TYPE}`"),
                ));
            }
            Some(_) => {
                return Err(Error::config(
                    "type",
                    format!("must be the string `{AUTH_TYPE}`"),
                ));
            }
        }
        let wif = auth.get(WIF).ok_or_else(|| {
            Error::config(
                WIF,
                "is missing; add the `workload_identity_federation` block",
            )
        })?;
        let wif = object(wif, WIF)?;
        allow_only(
            wif,
            WIF,
            &[
                "federation_rule_id",
                "organization_id",
                "service_account_id",
                "workspace_id",
                "base_url",
                "identity_token",
            ],
        )?;

        let federation_rule_id = required_string(wif, WIF, "federation_rule_id")?;
        check_prefixed_id(
            &federation_rule_id,
            "fdrl_",
            &path(WIF, "federation_rule_id"),
        )?;
        let organization_id = required_string(wif, WIF, "organization_id")?;
        if !is_uuid(&organization_id) {
            return Err(Error::config(
                path(WIF, "organization_id"),
                "must be a UUID like `00000000-0000-0000-0000-000000000000`",
            ));
        }
        let service_account_id = optional_string(wif, WIF, "service_account_id")?;
        if let Some(id) = &service_account_id {
            check_prefixed_id(id, "svac_", &path(WIF, "service_account_id"))?;
        }
        let workspace_id = optional_string(wif, WIF, "workspace_id")?;
        if let Some(id) = workspace_id.as_ref().filter(|id| *id != "default") {
            check_prefixed_id(id, "wrkspc_", &path(WIF, "workspace_id")).map_err(|_| {
                Error::config(path(WIF, "workspace_id"), "must be `wrkspc_…` or `default`")
            })?;
        }
        let base_url = match optional_string(wif, WIF, "base_url")? {
            Some(url) => check_base_url(&url)?,
            None => DEFAULT_BASE_URL.to_string(),
        };
        let source = wif.get("identity_token").ok_or_else(|| {
            Error::config(SOURCE, format!("is missing; give one of {SOURCE_LIST}"))
        })?;
        let identity_token = identity_source(object(source, SOURCE)?)?;

        Ok(Config {
            federation_rule_id,
            organization_id,
            service_account_id,
            workspace_id,
            base_url,
            identity_token,
        })
    }

    /// A canonical text of the validated config: equal for configs that mean
    /// the same, different for configs that do not. Cache entries are keyed
    /// by it.
    pub fn canonical_key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn identity_source(source: &Map<String, Value>) -> Result<IdentitySource, Error> {
    allow_only(
        source,
        SOURCE,
        &[
            "file",
            "env",
            "command",
            "url",
            "aws",
            "oauth_client_credentials",
            "headers",
            "response_field",
        ],
    )?;
    let given: Vec<&str> = SOURCES
        .iter()
        .copied()
        .filter(|k| source.contains_key(*k))
        .collect();
    let kind = match given.as_slice() {
        [] => {
            return Err(Error::config(
                SOURCE,
                format!("has no source; give exactly one of {SOURCE_LIST}"),
            ));
        }
        [kind] => *kind,
        several => {
            return Err(Error::config(
                SOURCE,
                format!(
                    "has several sources ({}); keep exactly one",
                    crate::text::join(several, ", ")
                ),
            ));
        }
    };
    if kind != "url" {
        for url_only in ["headers", "response_field"] {
            if source.contains_key(url_only) {
                return Err(Error::config(
                    path(SOURCE, url_only),
                    "is only allowed with a `url` source",
                ));
            }
        }
    }
    Ok(match kind {
        "file" => {
            let file = required_string(source, SOURCE, "file")?;
            if file.contains('\0') {
                return Err(Error::config(
                    path(SOURCE, "file"),
                    "must not contain a NUL character",
                ));
            }
            IdentitySource::File(file)
        }
        "env" => {
            let name = required_string(source, SOURCE, "env")?;
            if name.contains(['=', '\0']) {
                return Err(Error::config(
                    path(SOURCE, "env"),
                    "must be a variable name, without `=` or NUL characters",
                ));
            }
            IdentitySource::Env(name)
        }
        "command" => IdentitySource::Command(argv(source)?),
        "aws" => IdentitySource::Aws(AwsSource::from_value(
            source.get("aws").unwrap_or(&Value::Null),
            &path(SOURCE, "aws"),
        )?),
        "oauth_client_credentials" => {
            IdentitySource::OauthClientCredentials(OauthSource::from_value(
                source
                    .get("oauth_client_credentials")
                    .unwrap_or(&Value::Null),
                &path(SOURCE, "oauth_client_credentials"),
            )?)
        }
        _ => url_source(source)?,
    })
}

fn argv(source: &Map<String, Value>) -> Result<Vec<String>, Error> {
    let field = path(SOURCE, "command");
    let Some(Value::Array(items)) = source.get("command") else {
        return Err(Error::config(
            field,
            "must be a list of arguments, e.g. `[gcloud, auth, print-identity-token]`",
        ));
    };
    if items.is_empty() {
        return Err(Error::config(
            field,
            "must not be empty; give the program and its arguments",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if s.is_empty() => {
                Err(Error::config(format!("{field}[{i}]"), "must not be empty"))
            }
            Value::String(s) if s.contains('\0') => Err(Error::config(
                format!("{field}[{i}]"),
                "must not contain a NUL character",
            )),
            Value::String(s) => Ok(s.clone()),
            _ => Err(Error::config(format!("{field}[{i}]"), "must be a string")),
        })
        .collect()
}

fn url_source(source: &Map<String, Value>) -> Result<IdentitySource, Error> {
    let url = required_string(source, SOURCE, "url")?;
    let url_field = path(SOURCE, "url");
    expand::variables(&url).map_err(|e| Error::config(&url_field, e.0))?;
    origin::check_template(&url).map_err(|e| Error::config(&url_field, e))?;
    let headers_field = path(SOURCE, "headers");
    let headers = match source.get("headers") {
        None => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| {
                let field = format!("{headers_field}.{name}");
                if !is_header_name(name) {
                    return Err(Error::config(field, "is not a valid HTTP header name"));
                }
                if is_transport_header(name) {
                    return Err(Error::config(
                        field,
                        "is set by the HTTP client from the URL and the request, and cannot be configured",
                    ));
                }
                let Value::String(value) = value else {
                    return Err(Error::config(field, "must be a string"));
                };
                if value.contains(['\r', '\n', '\0']) {
                    return Err(Error::config(
                        field,
                        "must not contain line breaks or NUL characters",
                    ));
                }
                expand::variables(value).map_err(|e| Error::config(&field, e.0))?;
                Ok((name.clone(), value.clone()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Error::config(
                headers_field,
                "must be a map of header names to values, e.g. `{Authorization: \"bearer ${TOKEN}\"}`",
            ));
        }
    };
    let response_field = optional_string(source, SOURCE, "response_field")?;
    Ok(IdentitySource::Url {
        url,
        headers,
        response_field,
    })
}

fn check_base_url(url: &str) -> Result<String, Error> {
    let field = path(WIF, "base_url");
    let origin = origin::origin(url).map_err(|e| Error::config(&field, e))?;
    if !origin.starts_with("https://") && !origin::is_loopback(&origin) {
        return Err(Error::config(
            field,
            "must use https (plain http is only allowed for localhost, 127.0.0.1 and [::1])",
        ));
    }
    if url.contains(['?', '#']) {
        return Err(Error::config(field, "must not have a query or a fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn check_prefixed_id(id: &str, prefix: &str, field: &str) -> Result<(), Error> {
    let rest = id.strip_prefix(prefix).unwrap_or_default();
    if rest.is_empty()
        || !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::config(
            field,
            format!("must be `{prefix}` followed by letters and digits"),
        ));
    }
    Ok(())
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The request headers that describe the connection or the message framing
/// rather than the request: the HTTP client sets them, and one given by a
/// config would send the request to another virtual host (`Host`), smuggle
/// or stall it (`Content-Length`, `Transfer-Encoding`, `Expect`) or talk to
/// a proxy (`Proxy-*`). Compared without regard to case.
const TRANSPORT_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "keep-alive",
];

/// Whether the header `name` is one of [`TRANSPORT_HEADERS`] or a `Proxy-*`
/// header, in any case.
fn is_transport_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    TRANSPORT_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-")
}

fn path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn object<'a>(value: &'a Value, field: &str) -> Result<&'a Map<String, Value>, Error> {
    value
        .as_object()
        .ok_or_else(|| Error::config(field, "must be a map of fields"))
}

fn allow_only(map: &Map<String, Value>, parent: &str, allowed: &[&str]) -> Result<(), Error> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(Error::config(
            path(parent, unknown),
            format!(
                "is not a known field; expected one of: {}",
                crate::text::join(allowed, ", ")
            ),
        )),
        None => Ok(()),
    }
}

fn required_string(map: &Map<String, Value>, parent: &str, key: &str) -> Result<String, Error> {
    optional_string(map, parent, key)?
        .ok_or_else(|| Error::config(path(parent, key), "is required"))
}

fn optional_string(
    map: &Map<String, Value>,
    parent: &str,
    key: &str,
) -> Result<Option<String>, Error> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(Error::config(path(parent, key), "must not be empty"))
        }
        Some(Value::String(s)) if s.trim() != s => Err(Error::config(
            path(parent, key),
            "must not start or end with white space",
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::config(path(parent, key), "must be a string")),
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong type",
        serde_json::error::Category::Io => "read error",
    }
}

#[cfg(test)]
mod tests;
