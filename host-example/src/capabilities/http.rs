//! `http-fetch`: granted origins only, no redirects, a body cap and a
//! timeout.

use super::printable;
use crate::bindings::anthropic_wif::federation::capabilities::{
    CapError, Header, HttpRequest, HttpResponse,
};
use crate::net::HttpClient;
use crate::net::errors::{FailureKind, explain};
use crate::net::proxy::Route;
use crate::policy::{Origin, Policy};

/// Sends a request to a granted origin and reads the whole response.
pub(super) fn fetch(
    policy: &Policy,
    client: &HttpClient,
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
    let route = client
        .route(&origin)
        .map_err(|e| CapError::Failed(e.to_string()))?;
    tracing::debug!(%origin, ?route, "http-fetch route");
    let agent = client
        .agent(&route)
        .map_err(|e| CapError::Failed(e.to_string()))?;
    let response = match request.method.as_str() {
        "GET" => with_headers(agent.get(url.as_str()), &request.headers).call(),
        "POST" => with_headers(agent.post(url.as_str()), &request.headers).send(&request.body[..]),
        // IMDSv2 opens its session with a PUT.
        "PUT" => with_headers(agent.put(url.as_str()), &request.headers).send(&request.body[..]),
        other => {
            return Err(CapError::Failed(format!(
                "method {} is not supported",
                printable(other)
            )));
        }
    };
    let mut response = response.map_err(|e| transport_error(&e, &origin, &route, client))?;
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
        .map_err(|e| transport_error(&e, &origin, &route, client))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Refuses, before any connection, a header the client sets itself, a name
/// that is not an RFC 7230 token and a value with a line break or NUL.
fn check_headers(headers: &[Header]) -> Result<(), CapError> {
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        if crate::net::headers::is_set_by_client(&name) {
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

/// A transport failure as a capability error (see [`explain`]).
fn transport_error(
    error: &ureq::Error,
    origin: &Origin,
    route: &Route,
    client: &HttpClient,
) -> CapError {
    let explained = explain(error, origin, route, client.timeout());
    match explained.kind {
        FailureKind::Timeout => CapError::Timeout(explained.message),
        FailureKind::TooLarge => CapError::TooLarge(explained.message),
        FailureKind::Failed => CapError::Failed(explained.message),
    }
}

#[cfg(test)]
mod tests;
