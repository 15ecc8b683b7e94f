//! The token exchange: `POST {base_url}/v1/oauth/token` with the identity
//! token as a JWT-bearer assertion, as the official SDKs send it.

use serde::Serialize;
use serde_json::Value;

use crate::capabilities::{CapError, Capabilities, Header, HttpRequest, HttpResponse};
use crate::config::Config;
use crate::error::{Capability, Error, Rejection};
use crate::secret::Secret;
use crate::sources::USER_AGENT;
use crate::text::{SNIPPET_BYTES, duplicate_field, field_name, snippet};
use crate::token::is_b64token;

/// The OAuth grant type of the exchange.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `anthropic-beta` header of the exchange.
pub(crate) const BETA: &str = "oauth-2025-04-20,oidc-federation-2026-04-01";
/// The longest OAuth error field kept, in bytes.
const FIELD_BYTES: usize = 500;

/// A token the endpoint issued.
pub(crate) struct Issued {
    pub(crate) token: Secret,
    pub(crate) expires_in_secs: u64,
}

#[derive(Serialize)]
struct Body<'a> {
    grant_type: &'a str,
    assertion: &'a str,
    federation_rule_id: &'a str,
    organization_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace_id: Option<&'a str>,
}

/// The token endpoint of a base URL.
pub(crate) fn token_endpoint(base_url: &str) -> String {
    format!("{base_url}/v1/oauth/token")
}

/// The exchange request for `config` and `assertion`.
pub(crate) fn request(config: &Config, assertion: &Secret) -> HttpRequest {
    let body = Body {
        grant_type: GRANT_TYPE,
        assertion: assertion.expose(),
        federation_rule_id: &config.federation_rule_id,
        organization_id: &config.organization_id,
        service_account_id: config.service_account_id.as_deref(),
        workspace_id: config.workspace_id.as_deref(),
    };
    let header = |name: &str, value: &str| Header {
        name: name.into(),
        value: value.into(),
    };
    HttpRequest {
        method: "POST".into(),
        url: token_endpoint(&config.base_url),
        headers: vec![
            header("content-type", "application/json"),
            header("anthropic-beta", BETA),
            header("user-agent", USER_AGENT),
        ],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// Sends the exchange and reads its answer.
pub(crate) fn exchange(
    caps: &impl Capabilities,
    config: &Config,
    assertion: &Secret,
) -> Result<Issued, Error> {
    let response = caps
        .http_fetch(&request(config, assertion))
        .map_err(|e| match e {
            CapError::Denied(detail) => Error::Denied {
                capability: Capability::HttpFetch,
                detail,
            },
            CapError::Timeout(detail) => Error::ExchangeFailed(format!(
                "{} did not answer in time ({detail})",
                token_endpoint(&config.base_url)
            )),
            other => {
                Error::ExchangeFailed(format!("{}: {other}", token_endpoint(&config.base_url)))
            }
        })?;
    parse(response, config, assertion)
}

/// Reads the endpoint's answer: a token, or the reason it refused.
pub(crate) fn parse(
    response: HttpResponse,
    config: &Config,
    assertion: &Secret,
) -> Result<Issued, Error> {
    if !response.is_success() {
        return Err(Error::ExchangeRejected(Box::new(rejection(
            &response, config, assertion,
        ))));
    }
    let malformed =
        |what: &str| Error::MalformedResponse(format!("status {}: {what}", response.status));
    let json: Value =
        serde_json::from_slice(&response.body).map_err(|_| malformed("the body is not JSON"))?;
    let object = json
        .as_object()
        .ok_or_else(|| malformed("the body is not a JSON object"))?;
    if let Some(name) = duplicate_field(&response.body) {
        return Err(malformed(&format!(
            "{} appears more than once",
            field_name(&name, &["access_token", "expires_in", "token_type"])
        )));
    }
    let token = match object.get("access_token") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.trim(),
        Some(Value::String(_)) => return Err(malformed("`access_token` is empty")),
        Some(_) => return Err(malformed("`access_token` is not a string")),
        None => return Err(malformed("`access_token` is missing")),
    };
    if !is_b64token(token) {
        return Err(malformed(
            "`access_token` has characters outside the RFC 6750 token alphabet \
             (letters, digits and -._~+/ with trailing =)",
        ));
    }
    let expires_in_secs = match object.get("expires_in") {
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|secs| *secs > 0)
            .ok_or_else(|| malformed("`expires_in` is not a positive whole number of seconds"))?,
        Some(_) => return Err(malformed("`expires_in` is not a number")),
        None => return Err(malformed("`expires_in` is missing")),
    };
    match object.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => {}
        Some(Value::String(t)) => {
            return Err(malformed(&format!(
                "`token_type` is `{}`, expected `Bearer`",
                snippet(t.as_bytes(), 40, &[token])
            )));
        }
        Some(_) => return Err(malformed("`token_type` is not a string")),
    }
    Ok(Issued {
        token: Secret::new(token),
        expires_in_secs,
    })
}

fn rejection(response: &HttpResponse, config: &Config, assertion: &Secret) -> Rejection {
    let json = serde_json::from_slice::<Value>(&response.body).ok();
    // A refusal should carry no token, but if its body holds one anyway, it
    // is as secret as the assertion.
    let token = json
        .as_ref()
        .and_then(|body| body.get("access_token"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let secrets: Vec<&str> = [Some(assertion.expose()), token]
        .into_iter()
        .flatten()
        .collect();
    let field = |value: Option<&Value>| match value {
        Some(Value::String(s)) if !s.is_empty() => {
            Some(snippet(s.as_bytes(), FIELD_BYTES, &secrets))
        }
        _ => None,
    };
    let mut rejection = Rejection {
        status: response.status,
        request_id: response
            .header("request-id")
            .map(|id| snippet(id.as_bytes(), 100, &secrets)),
        ..Rejection::default()
    };
    if let Some(Value::Object(body)) = &json {
        match body.get("error") {
            // Anthropic's API error shape: {"type":"error","error":{"type":…,"message":…}}
            Some(Value::Object(inner)) => {
                rejection.error = field(inner.get("type"));
                rejection.error_description = field(inner.get("message"));
            }
            error => {
                rejection.error = field(error);
                rejection.error_description = field(body.get("error_description"));
                rejection.error_uri = field(body.get("error_uri"));
            }
        }
    }
    if rejection.error.is_none() && rejection.error_description.is_none() {
        let body = match &json {
            // The body as text may spell the token with escapes that a
            // search for its value misses: show it with the token replaced.
            Some(Value::Object(body)) if body.contains_key("access_token") => {
                let mut body = body.clone();
                body.insert("access_token".into(), Value::from("[redacted]"));
                snippet(
                    Value::Object(body).to_string().as_bytes(),
                    SNIPPET_BYTES,
                    &secrets,
                )
            }
            _ => snippet(&response.body, SNIPPET_BYTES, &secrets),
        };
        rejection.body_snippet = (!body.is_empty()).then_some(body);
    }
    rejection.hint = hint(response.status, config);
    rejection
}

fn hint(status: u16, config: &Config) -> Option<String> {
    match status {
        401 => {
            let mut hint = "check that the federation rule matches the identity token's issuer, subject and audience, \
                            and that the organization id is right"
                .to_string();
            if config.workspace_id.is_none() {
                hint.push_str("; if the rule spans several workspaces, set workspace_id");
            }
            Some(hint)
        }
        300..=399 => {
            Some("the token endpoint redirected; redirects are not followed, check base_url".into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
