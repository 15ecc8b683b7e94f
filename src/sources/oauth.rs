//! The `oauth_client_credentials` source: an OAuth 2.0 client-credentials
//! grant (RFC 6749 4.4) whose access token is the identity token, the client
//! authenticated with a signed JWT assertion (`private_key_jwt`, RFC 7523)
//! or HTTP Basic (`client_secret_basic`, RFC 6749 2.3.1).

use std::sync::atomic::{AtomicU64, Ordering};

use base64ct::{Base64, Encoding};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::capabilities::{CapError, Capabilities, Header, HttpRequest};
use crate::config::{ClientAuth, OauthSource};
use crate::error::{Capability, Error};
use crate::form;
use crate::jwt::SigningKey;
use crate::secret::Secret;
use crate::sources::USER_AGENT;
use crate::text::{SNIPPET_BYTES, snippet};

/// The client assertion type of `private_key_jwt`.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a client assertion is valid, in seconds: five minutes (Okta
/// accepts at most an hour; its SDKs use minutes).
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// Assertions minted by this instance, for `jti`.
static ASSERTIONS: AtomicU64 = AtomicU64::new(0);

/// How a step of the source reports a failure.
type Fail<'a> = &'a dyn Fn(String) -> Error;

/// Runs the grant and returns its `access_token`.
pub(super) fn read(
    caps: &impl Capabilities,
    source: &OauthSource,
    fail: Fail<'_>,
) -> Result<String, Error> {
    let mut pairs: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
    if let Some(scope) = &source.scope {
        pairs.push(("scope", scope.clone()));
    }
    let mut headers = vec![
        header("content-type", "application/x-www-form-urlencoded"),
        header("accept", "application/json"),
        header("user-agent", USER_AGENT),
    ];
    let secret = match &source.client_auth {
        ClientAuth::PrivateKeyJwt {
            private_key_file,
            key_id,
        } => {
            let key = signing_key(caps, private_key_file, fail)?;
            let assertion =
                client_assertion(caps, source, &key, key_id.as_deref()).ok_or_else(|| {
                    fail(format!(
                        "private_key_file {private_key_file} holds an RSA key whose numbers do not \
                         belong together (its signature does not verify)"
                    ))
                })?;
            pairs.push(("client_assertion_type", ASSERTION_TYPE.into()));
            pairs.push(("client_assertion", assertion.expose().into()));
            assertion
        }
        ClientAuth::ClientSecretBasic { client_secret_env } => {
            let secret = client_secret(caps, client_secret_env, fail)?;
            // RFC 6749 2.3.1: both form-urlencoded before the Basic scheme.
            let credentials = format!(
                "{}:{}",
                form::encode(&source.client_id),
                form::encode(secret.expose())
            );
            headers.push(header(
                "authorization",
                &format!("Basic {}", Base64::encode_string(credentials.as_bytes())),
            ));
            secret
        }
    };
    let body: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let request = HttpRequest {
        method: "POST".into(),
        url: source.token_url.clone(),
        headers,
        body: form::body(&body).into_bytes(),
    };
    let url = &source.token_url;
    let response = caps.http_fetch(&request).map_err(|e| match e {
        CapError::Denied(detail) => Error::Denied {
            capability: Capability::HttpFetch,
            detail,
        },
        CapError::Timeout(detail) => fail(format!("POST {url}: no answer in time ({detail})")),
        other => fail(format!("POST {url}: {other}")),
    })?;
    let secrets = [secret.expose()];
    let json: Option<Value> = serde_json::from_slice(&response.body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(Value::as_str)
            .map(|v| snippet(v.as_bytes(), SNIPPET_BYTES, &secrets))
    };
    if !response.is_success() {
        let detail = match (field("error"), field("error_description")) {
            (Some(error), Some(description)) => format!("{error}: {description}"),
            (Some(error), None) => error,
            _ => snippet(&response.body, SNIPPET_BYTES, &secrets),
        };
        return Err(fail(format!(
            "POST {url} returned status {}: {detail}",
            response.status
        )));
    }
    match json.as_ref().and_then(|j| j.get("access_token")) {
        Some(Value::String(token)) if !token.trim().is_empty() => Ok(token.clone()),
        _ => Err(fail(format!(
            "POST {url} returned status {} without an access_token",
            response.status
        ))),
    }
}

/// The key file, read and parsed; errors name the file, never its content.
fn signing_key(caps: &impl Capabilities, path: &str, fail: Fail<'_>) -> Result<SigningKey, Error> {
    let pem = caps.read_file(path).map_err(|e| match e {
        CapError::Denied(detail) => Error::Denied {
            capability: Capability::ReadFile,
            detail,
        },
        CapError::NotFound(_) => fail(format!("private_key_file {path} does not exist")),
        other => fail(format!("reading private_key_file {path} failed: {other}")),
    })?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| fail(format!("private_key_file {path} {}", e.0)))
}

/// The client secret the variable holds.
fn client_secret(caps: &impl Capabilities, name: &str, fail: Fail<'_>) -> Result<Secret, Error> {
    match caps.get_env(name) {
        Ok(Some(value)) if !value.trim().is_empty() => Ok(Secret::new(value.trim())),
        Ok(_) => Err(fail(format!(
            "client_secret_env: environment variable {name} is not set"
        ))),
        Err(CapError::Denied(detail)) => Err(Error::Denied {
            capability: Capability::GetEnv,
            detail,
        }),
        Err(other) => Err(fail(format!(
            "reading environment variable {name} failed: {other}"
        ))),
    }
}

/// A signed client assertion: `iss` = `sub` = the client id, `aud` = the
/// token URL, valid for [`ASSERTION_LIFETIME_SECS`], with a unique `jti`;
/// `None` when the key's signature does not verify.
fn client_assertion(
    caps: &impl Capabilities,
    source: &OauthSource,
    key: &SigningKey,
    kid: Option<&str>,
) -> Option<Secret> {
    let now_ms = caps.now_millis();
    let iat = now_ms / 1000;
    // There is no random import: the jti is a hash of the wall clock (ms),
    // a counter of this instance's assertions and the assertion's inputs.
    // Two assertions of one instance always differ (the counter); two
    // instances would need the same millisecond, client and endpoint, and
    // even then the authorization server only sees a replay of a jti it
    // refuses anyway.
    let count = ASSERTIONS.fetch_add(1, Ordering::Relaxed);
    let mut hash = Sha256::new();
    for part in [
        now_ms.to_string().as_bytes(),
        count.to_string().as_bytes(),
        source.client_id.as_bytes(),
        source.token_url.as_bytes(),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let jti: String = hash
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let claims = serde_json::json!({
        "iss": source.client_id,
        "sub": source.client_id,
        "aud": source.token_url,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME_SECS,
        "jti": jti,
    });
    key.sign(kid, &claims).map(Secret::new)
}

/// A request header.
fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

#[cfg(test)]
mod tests;
