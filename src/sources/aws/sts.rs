//! STS `GetWebIdentityToken`: the endpoint, the signed query-protocol
//! request and its XML answer.

use super::sigv4::{self, Credentials, Request, Scope};
use super::xml::element_text;
use super::{ENDPOINT_VARIABLES, Fail, endpoint_url, send, var};
use crate::capabilities::{Capabilities, Header, HttpRequest, HttpResponse};
use crate::config::AwsSource;
use crate::error::Error;
use crate::form;
use crate::sources::USER_AGENT;
use crate::text::{SNIPPET_BYTES, snippet};

/// The query protocol's API version.
pub(super) const VERSION: &str = "2011-06-15";
/// The body's media type, as the AWS SDKs send it.
pub(super) const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Where the request goes.
pub(super) struct Endpoint {
    /// `scheme://host[:port]`, also the only part of it errors show.
    pub(super) origin: String,
    /// The path, `/` for the regional endpoints.
    pub(super) path: String,
}

/// The regional STS endpoint of `region` (`GetWebIdentityToken` is not
/// served by the global one), or the first endpoint variable set.
pub(super) fn endpoint(
    caps: &impl Capabilities,
    region: &str,
    fail: Fail<'_>,
) -> Result<Endpoint, Error> {
    for name in ENDPOINT_VARIABLES {
        if let Some(value) = var(caps, name, fail)? {
            let (origin, path) = endpoint_url(&value, &[])
                .map_err(|e| fail(format!("the STS endpoint {name} {e}")))?;
            return Ok(Endpoint { origin, path });
        }
    }
    Ok(Endpoint {
        origin: regional_origin(region),
        path: "/".into(),
    })
}

/// `https://sts.REGION.amazonaws.com` (`.com.cn` in the China regions).
pub(crate) fn regional_origin(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}")
}

/// Sends the signed request and reads `WebIdentityToken` from the answer.
pub(super) fn get_web_identity_token(
    caps: &impl Capabilities,
    source: &AwsSource,
    region: &str,
    endpoint: &Endpoint,
    credentials: &Credentials,
    fail: Fail<'_>,
) -> Result<String, Error> {
    let duration = source.duration_seconds.map(|d| d.to_string());
    let mut pairs = vec![
        ("Action", "GetWebIdentityToken"),
        ("Version", VERSION),
        ("Audience.member.1", source.audience.as_str()),
        ("SigningAlgorithm", source.signing_algorithm.as_str()),
    ];
    if let Some(duration) = &duration {
        pairs.push(("DurationSeconds", duration));
    }
    let body = form::body(&pairs);
    let amz_date = sigv4::amz_date(caps.now_millis() / 1000);
    let mut signed_headers = vec![
        ("content-type".to_string(), CONTENT_TYPE.to_string()),
        ("x-amz-date".to_string(), amz_date.clone()),
    ];
    if let Some(token) = &credentials.session_token {
        signed_headers.push(("x-amz-security-token".into(), token.expose().into()));
    }
    let host = endpoint
        .origin
        .split_once("://")
        .map_or(endpoint.origin.as_str(), |(_, host)| host);
    let signed = sigv4::sign(
        &Request {
            method: "POST",
            host,
            path: &endpoint.path,
            query: "",
            headers: &signed_headers,
            body: body.as_bytes(),
        },
        credentials,
        &Scope {
            region,
            service: "sts",
            amz_date: &amz_date,
        },
    );
    let mut headers: Vec<Header> = signed_headers
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect();
    headers.push(Header {
        name: "authorization".into(),
        value: signed.authorization,
    });
    headers.push(Header {
        name: "user-agent".into(),
        value: USER_AGENT.into(),
    });
    let request = HttpRequest {
        method: "POST".into(),
        url: format!("{}{}", endpoint.origin, endpoint.path),
        headers,
        body: body.into_bytes(),
    };
    let step = format!("STS GetWebIdentityToken at {}", endpoint.origin);
    let response = send(caps, &step, &request, fail)?;
    let body = String::from_utf8_lossy(&response.body);
    if !response.is_success() {
        let mut secrets = vec![
            credentials.secret_access_key.expose(),
            signed.signature.as_str(),
        ];
        secrets.extend(credentials.session_token.as_ref().map(|t| t.expose()));
        return Err(fail(refusal(&step, &response, &body, &secrets, hint)));
    }
    match element_text(&body, "WebIdentityToken") {
        Some(token) if !token.trim().is_empty() => Ok(token),
        _ => Err(fail(format!(
            "{step}: status {} without a WebIdentityToken in the answer",
            response.status
        ))),
    }
}

/// STS's error answer as text: the status, AWS's error code and message
/// (bounded, with `secrets` redacted), the request id and what the code
/// usually means (`hint`).
pub(super) fn refusal(
    step: &str,
    response: &HttpResponse,
    body: &str,
    secrets: &[&str],
    hint: fn(&str) -> Option<&'static str>,
) -> String {
    let code = element_text(body, "Code")
        .map(|code| snippet(code.as_bytes(), 100, secrets))
        .unwrap_or_else(|| "no AWS error code".into());
    let mut message = format!("{step}: status {}: {code}", response.status);
    if let Some(text) = element_text(body, "Message") {
        message.push_str(&format!(
            ": {}",
            snippet(text.as_bytes(), SNIPPET_BYTES, secrets)
        ));
    } else if !body.trim().is_empty() && !body.trim_start().starts_with('<') {
        message.push_str(&format!(
            ": {}",
            snippet(body.as_bytes(), SNIPPET_BYTES, secrets)
        ));
    }
    let request_id = element_text(body, "RequestId")
        .or_else(|| response.header("x-amzn-requestid").map(str::to_string));
    if let Some(id) = request_id {
        message.push_str(&format!(
            " [request id {}]",
            snippet(id.as_bytes(), 100, &[])
        ));
    }
    if let Some(hint) = hint(&code) {
        message.push_str(&format!(". Hint: {hint}"));
    }
    message
}

/// What an STS error code usually means.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "OutboundWebIdentityFederationDisabledException" => {
            "outbound identity federation is disabled for this AWS account; an administrator enables it in IAM (account settings) before STS issues web identity tokens"
        }
        "AccessDenied" | "AccessDeniedException" => {
            "the IAM policy of these credentials must allow sts:GetWebIdentityToken (check conditions on the audience and signing algorithm)"
        }
        "SignatureDoesNotMatch" => {
            "the secret key does not belong to the access key id, or the endpoint or region differs from the one signed for"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the session credentials have expired, or this machine's clock is off"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" => {
            "AWS does not know this access key id (deleted, or from another partition)"
        }
        _ => return None,
    })
}
