//! The `aws` source: an identity token from AWS STS `GetWebIdentityToken`
//! (outbound identity federation), the request signed with SigV4 and the
//! workload's AWS credentials, found as the AWS SDKs find them (IRSA's
//! `AssumeRoleWithWebIdentity` included).

mod credentials;
mod sigv4;
mod sts;
mod xml;

use crate::capabilities::{CapError, Capabilities, HttpRequest, HttpResponse};
use crate::config::AwsSource;
use crate::config::is_region;
use crate::error::{Capability, Error};

pub(crate) use credentials::{CONTAINER_HOST, IMDS_ENDPOINT};
pub(crate) use sts::regional_origin;

/// The variables that name the region, in the order they are read.
pub(crate) const REGION_VARIABLES: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];
/// The variables that override the STS endpoint, in the order they are read.
pub(crate) const ENDPOINT_VARIABLES: [&str; 2] = ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"];
/// Every variable the credential chain reads, in order.
pub(crate) const CREDENTIAL_VARIABLES: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
];

/// How a step of the source reports a failure.
type Fail<'a> = &'a dyn Fn(String) -> Error;

/// Reads an identity token from STS.
pub(super) fn read(
    caps: &impl Capabilities,
    source: &AwsSource,
    fail: Fail<'_>,
) -> Result<String, Error> {
    let region = region(caps, source, fail)?;
    let endpoint = sts::endpoint(caps, &region, fail)?;
    let credentials = credentials::load(caps, &endpoint, fail)?;
    sts::get_web_identity_token(caps, source, &region, &endpoint, &credentials, fail)
}

/// The configured region, else the first region variable set.
fn region(caps: &impl Capabilities, source: &AwsSource, fail: Fail<'_>) -> Result<String, Error> {
    if let Some(region) = &source.region {
        return Ok(region.clone());
    }
    for name in REGION_VARIABLES {
        if let Some(region) = var(caps, name, fail)? {
            if !is_region(&region) {
                return Err(fail(format!(
                    "{name} is not an AWS region name such as `us-east-1`"
                )));
            }
            return Ok(region);
        }
    }
    Err(fail(
        "no AWS region: set `region` in the aws source, AWS_REGION or AWS_DEFAULT_REGION".into(),
    ))
}

/// A variable's value, trimmed; `None` when it is unset or empty, as the
/// AWS SDKs read them.
fn var(caps: &impl Capabilities, name: &str, fail: Fail<'_>) -> Result<Option<String>, Error> {
    match caps.get_env(name) {
        Ok(Some(value)) if value.trim().is_empty() => Ok(None),
        Ok(Some(value)) => Ok(Some(value.trim().to_string())),
        Ok(None) => Ok(None),
        Err(CapError::Denied(detail)) => Err(Error::Denied {
            capability: Capability::GetEnv,
            detail,
        }),
        Err(other) => Err(fail(format!(
            "reading environment variable {name} failed: {other}"
        ))),
    }
}

/// Sends one request of `step`; a failure names the step, never the
/// request's headers or body.
fn send(
    caps: &impl Capabilities,
    step: &str,
    request: &HttpRequest,
    fail: Fail<'_>,
) -> Result<HttpResponse, Error> {
    caps.http_fetch(request).map_err(|e| match e {
        CapError::Denied(detail) => Error::Denied {
            capability: Capability::HttpFetch,
            detail,
        },
        CapError::Timeout(detail) => fail(format!("{step}: no answer in time ({detail})")),
        CapError::TooLarge(detail) => fail(format!("{step}: the answer is too large ({detail})")),
        other => fail(format!("{step}: {other}")),
    })
}

/// The URL of an endpoint variable's value, checked: an absolute URL with
/// no user information, query or fragment, `https` or plain `http` on
/// loopback or on one of `link_local`. Returns its origin and its path
/// (`/` when it has none); the error says what is wrong without quoting the
/// value.
fn endpoint_url(value: &str, link_local: &[&str]) -> Result<(String, String), String> {
    let origin = crate::origin::origin(value)?;
    if value.contains(['?', '#']) {
        return Err("has a query or a fragment".into());
    }
    let host = origin.split_once("://").map_or("", |(_, a)| a);
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() {
            h
        } else {
            host
        }
    });
    if origin.starts_with("http://")
        && !crate::origin::is_loopback(&origin)
        && !link_local.contains(&host)
    {
        return Err("uses plain http off loopback; use https".into());
    }
    let after_scheme = value.split_once("://").map_or("", |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |slash| &after_scheme[slash..]);
    Ok((origin, path.to_string()))
}

#[cfg(test)]
mod tests;
