//! One request, from the server's side: vetted ([`super::vet`]),
//! authenticated with the client key, then forwarded through an exchange
//! with the upstream ([`super::upstream`]) whose bodies stream through
//! [`super::bridge`].
//! Logged with its method, path (escaped) and status, never a header
//! value or a body.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper::{Request, Response, StatusCode};

use super::bridge::{ResponseBody, Upload};
use super::upstream::Outgoing;
use super::vet::{Served, vet};
use super::{CLIENT_IDLE_TIMEOUT, Failure, Gateway};

/// Answers `request`, which arrived on `served`.
pub async fn handle(
    gateway: Arc<Gateway>,
    served: Served,
    request: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let response = match vet(&parts, served).and_then(|()| authenticate(&gateway, &parts)) {
        Ok(()) => forward(gateway, parts.clone(), body).await,
        Err(failure) => failure.response(),
    };
    tracing::info!(
        method = %parts.method.as_str().escape_debug(),
        path = %parts.uri.path().escape_debug(),
        status = response.status().as_u16(),
        "gateway"
    );
    Ok(response)
}

/// Admits a request that carries the client key.
fn authenticate(gateway: &Gateway, parts: &hyper::http::request::Parts) -> Result<(), Failure> {
    if gateway.client_key.admits(&parts.headers) {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "the gateway's client key is missing or wrong: send it as x-api-key \
             (ANTHROPIC_API_KEY) or Authorization: Bearer (ANTHROPIC_AUTH_TOKEN)",
        ))
    }
}

/// Forwards an admitted request: its body streamed upstream, the
/// answer's body streamed back.
async fn forward(
    gateway: Arc<Gateway>,
    parts: hyper::http::request::Parts,
    body: Incoming,
) -> Response<ResponseBody> {
    let outgoing = Outgoing::new(&parts);
    let length = body.size_hint().exact();
    let upload = Upload::new(body, length, CLIENT_IDLE_TIMEOUT);
    match gateway.exchange(outgoing, upload).await {
        Ok(response) => response,
        Err(failure) => failure.response(),
    }
}
