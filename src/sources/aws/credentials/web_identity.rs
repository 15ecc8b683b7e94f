//! EKS IAM roles for service accounts (IRSA), as the AWS SDKs read them:
//! the token in the file `AWS_WEB_IDENTITY_TOKEN_FILE` names, exchanged for
//! the role `AWS_ROLE_ARN`'s credentials with STS
//! `AssumeRoleWithWebIdentity` (an unsigned request: the token is the
//! proof).

use super::super::sigv4::Credentials;
use super::super::sts::{CONTENT_TYPE, Endpoint, VERSION, refusal};
use super::super::xml::element_text;
use super::super::{Fail, send, var};
use super::header;
use crate::capabilities::{CapError, Capabilities, HttpRequest};
use crate::error::{Capability, Error};
use crate::form;
use crate::secret::Secret;
use crate::sources::USER_AGENT;

/// The role's credentials when `AWS_WEB_IDENTITY_TOKEN_FILE` is set;
/// `None` when it is not.
pub(super) fn load(
    caps: &impl Capabilities,
    sts: &Endpoint,
    fail: Fail<'_>,
) -> Result<Option<Credentials>, Error> {
    let Some(path) = var(caps, "AWS_WEB_IDENTITY_TOKEN_FILE", fail)? else {
        return Ok(None);
    };
    let Some(role_arn) = var(caps, "AWS_ROLE_ARN", fail)? else {
        return Err(fail(
            "credentials from a web identity token: AWS_WEB_IDENTITY_TOKEN_FILE is set but \
             AWS_ROLE_ARN is not (both are set for a service account annotated with \
             eks.amazonaws.com/role-arn)"
                .into(),
        ));
    };
    let session_name = match var(caps, "AWS_ROLE_SESSION_NAME", fail)? {
        Some(name) => name,
        None => format!("anthropic-wif-{}", caps.now_millis()),
    };
    let token = read_token(caps, &path, fail)?;
    let body = form::body(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", VERSION),
        ("RoleArn", &role_arn),
        ("RoleSessionName", &session_name),
        ("WebIdentityToken", token.expose()),
    ]);
    let request = HttpRequest {
        method: "POST".into(),
        url: format!("{}{}", sts.origin, sts.path),
        headers: vec![
            header("content-type", CONTENT_TYPE),
            header("user-agent", USER_AGENT),
        ],
        body: body.into_bytes(),
    };
    let step = format!(
        "credentials from a web identity token: STS AssumeRoleWithWebIdentity at {} for {role_arn}",
        sts.origin
    );
    let response = send(caps, &step, &request, fail)?;
    let answer = String::from_utf8_lossy(&response.body);
    if !response.is_success() {
        return Err(fail(refusal(
            &step,
            &response,
            &answer,
            &[token.expose()],
            hint,
        )));
    }
    let field = |name: &str| {
        element_text(&answer, name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
            .ok_or_else(|| fail(format!("{step}: the answer has no {name}")))
    };
    Ok(Some(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Secret::new(field("SecretAccessKey")?),
        session_token: Some(Secret::new(field("SessionToken")?)),
    }))
}

/// The web identity token: the file's text, trimmed.
fn read_token(caps: &impl Capabilities, path: &str, fail: Fail<'_>) -> Result<Secret, Error> {
    let what = "credentials from a web identity token";
    let bytes = caps.read_file(path).map_err(|e| match e {
        CapError::Denied(detail) => Error::Denied {
            capability: Capability::ReadFile,
            detail,
        },
        CapError::NotFound(_) => fail(format!(
            "{what}: the file AWS_WEB_IDENTITY_TOKEN_FILE names ({path}) does not exist"
        )),
        other => fail(format!(
            "{what}: reading the file AWS_WEB_IDENTITY_TOKEN_FILE names ({path}) failed: {other}"
        )),
    })?;
    match String::from_utf8(bytes) {
        Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim())),
        Ok(_) => Err(fail(format!("{what}: the token file {path} is empty"))),
        Err(_) => Err(fail(format!("{what}: the token file {path} is not UTF-8"))),
    }
}

/// What an `AssumeRoleWithWebIdentity` error code usually means.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AccessDenied" => {
            "the role's trust policy must allow sts:AssumeRoleWithWebIdentity for this \
             cluster's OIDC provider and this service account (its sub and aud conditions)"
        }
        "InvalidIdentityToken" => {
            "STS could not verify the token: the cluster's OIDC provider must be registered \
             in IAM, with the audience sts.amazonaws.com"
        }
        "ExpiredTokenException" => {
            "the web identity token in the file has expired: kubelet rewrites it; check the \
             pod's projected token volume"
        }
        "IDPCommunicationError" | "IDPRejectedClaim" => {
            "STS could not use the cluster's OIDC provider: check that it is reachable and \
             that the token's claims match what IAM expects"
        }
        _ => return None,
    })
}
