//! `http-fetch`: granted origins only, no redirects, a body cap and a
//! timeout.

use std::io::ErrorKind;

use super::printable;
use crate::bindings::anthropic_wif::federation::capabilities::{
    CapError, Header, HttpRequest, HttpResponse,
};
use crate::policy::{Origin, Policy};

/// The HTTP agent of a policy: no redirects, no proxy, statuses returned as
/// responses, the policy's timeout.
pub(super) fn agent(policy: &Policy) -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(policy.http_timeout))
        .build()
        .into()
}

/// Sends a request to a granted origin and reads the whole response.
pub(super) fn fetch(
    policy: &Policy,
    agent: &ureq::Agent,
    request: HttpRequest,
) -> Result<HttpResponse, CapError> {
    let url = url::Url::parse(&request.url)
        .map_err(|_| CapError::Failed("the URL is not valid".into()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CapError::Denied(
            "URLs with user information are never fetched".into(),
        ));
    }
    let origin = Origin::of(&url)
        .ok_or_else(|| CapError::Denied("only http and https URLs are fetched".into()))?;
    if !policy.allows_origin(&origin) {
        return Err(CapError::Denied(format!("origin {origin} is not granted")));
    }
    check_headers(&request.headers)?;
    let response = match request.method.as_str() {
        "GET" => with_headers(agent.get(url.as_str()), &request.headers).call(),
        "POST" => with_headers(agent.post(url.as_str()), &request.headers).send(&request.body[..]),
        other => {
            return Err(CapError::Failed(format!(
                "method {} is not supported",
                printable(other)
            )));
        }
    };
    let mut response = response.map_err(|e| transport_error(&e, policy))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some(Header {
                name: name.as_str().to_string(),
                value: value.to_str().ok()?.to_string(),
            })
        })
        .collect();
    let body = response
        .body_mut()
        .with_config()
        .limit(policy.max_body_bytes)
        .read_to_vec()
        .map_err(|e| transport_error(&e, policy))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The request headers that the HTTP client sets from the URL and the
/// request: one from a component would send the request to another virtual
/// host (`Host`), smuggle or stall it (`Content-Length`,
/// `Transfer-Encoding`, `Expect`) or speak to a proxy (`Proxy-*`). Compared
/// without regard to case. The component's config validation refuses the
/// same names; this is the host's own check, for every component.
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

/// Refuses, before any connection, a header the client sets itself, a name
/// that is not an RFC 7230 token and a value with a line break or NUL.
fn check_headers(headers: &[Header]) -> Result<(), CapError> {
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        if TRANSPORT_HEADERS.contains(&name.as_str()) || name.starts_with("proxy-") {
            return Err(CapError::Denied(format!(
                "header {} is set by the HTTP client and cannot be given by a component",
                printable(&header.name)
            )));
        }
        let is_token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !is_token {
            return Err(CapError::Failed(format!(
                "header name {} is not a valid HTTP header name",
                printable(&header.name)
            )));
        }
        if header.value.contains(['\r', '\n', '\0']) {
            return Err(CapError::Failed(format!(
                "header {} has a line break or NUL in its value",
                printable(&header.name)
            )));
        }
    }
    Ok(())
}

fn with_headers<B>(
    mut builder: ureq::RequestBuilder<B>,
    headers: &[Header],
) -> ureq::RequestBuilder<B> {
    for header in headers {
        builder = builder.header(header.name.as_str(), header.value.as_str());
    }
    builder
}

/// A transport failure as a capability error. Never uses the error's own
/// text, which can quote the URL (and so an expanded secret).
fn transport_error(error: &ureq::Error, policy: &Policy) -> CapError {
    match error {
        ureq::Error::Timeout(_) => CapError::Timeout(format!(
            "no complete answer within {:?}",
            policy.http_timeout
        )),
        ureq::Error::BodyExceedsLimit(limit) => {
            CapError::TooLarge(format!("the response body exceeds {limit} bytes"))
        }
        ureq::Error::HostNotFound => CapError::Failed("host not found".into()),
        ureq::Error::ConnectionFailed => CapError::Failed("connection failed".into()),
        ureq::Error::Io(e)
            if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock =>
        {
            CapError::Timeout(format!(
                "no complete answer within {:?}",
                policy.http_timeout
            ))
        }
        ureq::Error::Io(e) => CapError::Failed(format!("I/O error: {}", e.kind())),
        ureq::Error::Tls(what) => CapError::Failed(format!("TLS error: {what}")),
        ureq::Error::Rustls(e) => CapError::Failed(format!("TLS error: {e}")),
        ureq::Error::Protocol(_) => CapError::Failed("the server broke the HTTP protocol".into()),
        ureq::Error::LargeResponseHeader(..) => {
            CapError::TooLarge("the response headers are too large".into())
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            CapError::Failed("the request is not valid HTTP".into())
        }
        ureq::Error::Decompress(encoding, _) => CapError::Failed(format!(
            "the response body is not valid {encoding} (content-encoding)"
        )),
        _ => CapError::Failed("the request failed".into()),
    }
}

#[cfg(test)]
mod tests;
