//! AWS credentials, found in the AWS SDKs' order: the environment, a web
//! identity token file and role (EKS IAM roles for service accounts, through
//! STS `AssumeRoleWithWebIdentity`), the container credentials endpoint
//! (ECS, EKS Pod Identity), then the EC2 instance metadata service (IMDSv2).

use serde_json::Value;

mod web_identity;

use super::sigv4::Credentials;
use super::sts::Endpoint;
use super::{Fail, endpoint_url, send, var};
use crate::capabilities::{CapError, Capabilities, Header, HttpRequest, HttpResponse};
use crate::error::{Capability, Error};
use crate::secret::Secret;
use crate::sources::USER_AGENT;
use crate::text::{SNIPPET_BYTES, snippet};

/// The container credentials endpoint's host, which
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative to.
pub(crate) const CONTAINER_HOST: &str = "http://169.254.170.2";
/// The hosts a `AWS_CONTAINER_CREDENTIALS_FULL_URI` may reach over plain
/// http besides loopback: the ECS and EKS Pod Identity agents.
const CONTAINER_LINK_LOCAL: [&str; 3] = ["169.254.170.2", "169.254.170.23", "[fd00:ec2::23]"];
/// The instance metadata service, unless
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT` says otherwise.
pub(crate) const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The IMDS hosts plain http may reach besides loopback.
const IMDS_LINK_LOCAL: [&str; 2] = ["169.254.169.254", "[fd00:ec2::254]"];
/// The lifetime asked for an IMDSv2 session token, in seconds (the SDKs'
/// default).
const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// The first credentials the chain finds; `sts` is where a web identity
/// token is exchanged.
pub(super) fn load(
    caps: &impl Capabilities,
    sts: &Endpoint,
    fail: Fail<'_>,
) -> Result<Credentials, Error> {
    if let Some(credentials) = from_environment(caps, fail)? {
        return Ok(credentials);
    }
    if let Some(credentials) = web_identity::load(caps, sts, fail)? {
        return Ok(credentials);
    }
    if let Some(credentials) = from_container(caps, fail)? {
        return Ok(credentials);
    }
    let disabled = var(caps, "AWS_EC2_METADATA_DISABLED", fail)?
        .is_some_and(|value| value.eq_ignore_ascii_case("true"));
    if disabled {
        return Err(fail(
            "no AWS credentials: AWS_ACCESS_KEY_ID is not set, nor AWS_WEB_IDENTITY_TOKEN_FILE, \
             no container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or \
             …_FULL_URI) is set, and AWS_EC2_METADATA_DISABLED turns off the EC2 instance \
             metadata service"
                .into(),
        ));
    }
    from_imds(caps, fail)
}

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
fn from_environment(
    caps: &impl Capabilities,
    fail: Fail<'_>,
) -> Result<Option<Credentials>, Error> {
    let Some(access_key_id) = var(caps, "AWS_ACCESS_KEY_ID", fail)? else {
        return Ok(None);
    };
    let Some(secret) = var(caps, "AWS_SECRET_ACCESS_KEY", fail)? else {
        return Err(fail(
            "credentials from the environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
                .into(),
        ));
    };
    Ok(Some(Credentials {
        access_key_id,
        secret_access_key: Secret::new(secret),
        session_token: var(caps, "AWS_SESSION_TOKEN", fail)?.map(Secret::new),
    }))
}

/// The container credentials endpoint, when a variable names it.
fn from_container(caps: &impl Capabilities, fail: Fail<'_>) -> Result<Option<Credentials>, Error> {
    let (variable, url) =
        if let Some(relative) = var(caps, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", fail)? {
            if !relative.starts_with('/') {
                return Err(fail(
                "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with `/`"
                    .into(),
            ));
            }
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                format!("{CONTAINER_HOST}{relative}"),
            )
        } else if let Some(full) = var(caps, "AWS_CONTAINER_CREDENTIALS_FULL_URI", fail)? {
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full)
        } else {
            return Ok(None);
        };
    let (origin, _) = endpoint_url(&url, &CONTAINER_LINK_LOCAL)
        .map_err(|e| fail(format!("container credentials: {variable} {e}")))?;
    let step = format!("container credentials endpoint {origin} (from {variable})");
    let authorization = container_authorization(caps, fail)?;
    let mut headers = vec![header("user-agent", USER_AGENT)];
    if let Some(token) = &authorization {
        headers.push(header("authorization", token.expose()));
    }
    let request = HttpRequest {
        method: "GET".into(),
        url,
        headers,
        body: Vec::new(),
    };
    let response = send(caps, &step, &request, fail)?;
    let secrets: Vec<&str> = authorization.iter().map(Secret::expose).collect();
    check_status(&response, &step, &secrets, fail)?;
    credentials_json(&response.body, &step, fail).map(Some)
}

/// The container endpoint's authorization token: the file
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` names (EKS Pod Identity), else
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
fn container_authorization(
    caps: &impl Capabilities,
    fail: Fail<'_>,
) -> Result<Option<Secret>, Error> {
    let token = if let Some(path) = var(caps, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", fail)? {
        let bytes = caps.read_file(&path).map_err(|e| match e {
            CapError::Denied(detail) => Error::Denied {
                capability: Capability::ReadFile,
                detail,
            },
            other => fail(format!(
                "container credentials: reading the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names ({path}) failed: {other}"
            )),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            fail(format!(
                "container credentials: the authorization token file {path} is not UTF-8"
            ))
        })?;
        text.trim().to_string()
    } else if let Some(token) = var(caps, "AWS_CONTAINER_AUTHORIZATION_TOKEN", fail)? {
        token
    } else {
        return Ok(None);
    };
    if token.is_empty() || token.contains(['\r', '\n', '\0']) {
        return Err(fail(
            "container credentials: the authorization token is empty or has a line break".into(),
        ));
    }
    Ok(Some(Secret::new(token)))
}

/// IMDSv2: a session token, the role's name, then its credentials.
fn from_imds(caps: &impl Capabilities, fail: Fail<'_>) -> Result<Credentials, Error> {
    let base = match var(caps, "AWS_EC2_METADATA_SERVICE_ENDPOINT", fail)? {
        Some(value) => {
            let (origin, path) = endpoint_url(&value, &IMDS_LINK_LOCAL).map_err(|e| {
                fail(format!(
                    "EC2 instance metadata: AWS_EC2_METADATA_SERVICE_ENDPOINT {e}"
                ))
            })?;
            format!("{origin}{}", path.trim_end_matches('/'))
        }
        None => IMDS_ENDPOINT.to_string(),
    };
    let origin = crate::origin::origin(&base).unwrap_or_else(|_| base.clone());
    let step = |what: &str| format!("EC2 instance metadata (IMDSv2) at {origin}, {what}");
    let session = {
        let step = step("session token (PUT /latest/api/token)");
        let request = HttpRequest {
            method: "PUT".into(),
            url: format!("{base}/latest/api/token"),
            headers: vec![
                header("user-agent", USER_AGENT),
                header(
                    "x-aws-ec2-metadata-token-ttl-seconds",
                    IMDS_TOKEN_TTL_SECONDS,
                ),
            ],
            body: Vec::new(),
        };
        let response = send(caps, &step, &request, &|message| {
            fail(format!(
                "no AWS credentials: AWS_ACCESS_KEY_ID is not set, nor AWS_WEB_IDENTITY_TOKEN_FILE, no container credentials endpoint is set, and {message}"
            ))
        })?;
        check_status(&response, &step, &[], fail)?;
        let token = String::from_utf8(response.body)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && !t.contains(['\r', '\n', '\0']))
            .ok_or_else(|| fail(format!("{step}: the answer is not a token")))?;
        Secret::new(token)
    };
    let get = |path: &str, step: &str| -> Result<HttpResponse, Error> {
        let request = HttpRequest {
            method: "GET".into(),
            url: format!("{base}{path}"),
            headers: vec![
                header("user-agent", USER_AGENT),
                header("x-aws-ec2-metadata-token", session.expose()),
            ],
            body: Vec::new(),
        };
        let response = send(caps, step, &request, fail)?;
        if response.status == 404 {
            return Err(fail(format!(
                "{step}: not found (404); the instance has no IAM role (instance profile) attached"
            )));
        }
        check_status(&response, step, &[session.expose()], fail)?;
        Ok(response)
    };
    let roles_path = "/latest/meta-data/iam/security-credentials/";
    let role_step = step("role name");
    let roles = get(roles_path, &role_step)?;
    let role = String::from_utf8_lossy(&roles.body)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .filter(|role| {
            role.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
        })
        .ok_or_else(|| fail(format!("{role_step}: the answer is not an IAM role name")))?;
    let credentials_step = step(&format!("credentials of role {role}"));
    let answer = get(&format!("{roles_path}{role}"), &credentials_step)?;
    credentials_json(&answer.body, &credentials_step, fail)
}

/// A non-2xx answer as an error: the status and a bounded snippet with
/// `secrets` redacted.
fn check_status(
    response: &HttpResponse,
    step: &str,
    secrets: &[&str],
    fail: Fail<'_>,
) -> Result<(), Error> {
    if response.is_success() {
        return Ok(());
    }
    let redirect = if (300..400).contains(&response.status) {
        " (redirects are not followed)"
    } else {
        ""
    };
    Err(fail(format!(
        "{step}: status {}{redirect}: {}",
        response.status,
        snippet(&response.body, SNIPPET_BYTES, secrets)
    )))
}

/// `AccessKeyId`, `SecretAccessKey` and `Token` of a credentials answer
/// (container endpoint and IMDS alike). The body holds secrets: no part of
/// it goes into an error.
fn credentials_json(body: &[u8], step: &str, fail: Fail<'_>) -> Result<Credentials, Error> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|_| fail(format!("{step}: the answer is not JSON")))?;
    if let Some(code) = json.get("Code").and_then(Value::as_str)
        && code != "Success"
    {
        let code: String = code
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(64)
            .collect();
        return Err(fail(format!("{step}: the answer's Code is {code}")));
    }
    let field = |name: &str| {
        json.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let missing = |name: &str| fail(format!("{step}: the answer has no {name}"));
    Ok(Credentials {
        access_key_id: field("AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?,
        secret_access_key: Secret::new(
            field("SecretAccessKey").ok_or_else(|| missing("SecretAccessKey"))?,
        ),
        session_token: field("Token").map(Secret::new),
    })
}

pub(super) fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}
