//! One exchange with the upstream, on the gateway's runtime: the request
//! with the client's headers (minus its credentials and the hop-by-hop
//! ones) and a token, its body streamed from the client; on a 401, the
//! rejected token dropped and the request replayed once (when its body was
//! at most [`super::REPLAY_CAP_BYTES`]); the answer's body then streams to the
//! client as the upstream sends it. Upstream connections come from one
//! pool ([`Client`]) that opens them as [`super::connect`] says.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::bridge::{ResponseBody, Upload};
use super::connect::Connector;
use super::{
    Failure, Gateway, IDLE_TIMEOUT, MAX_RESPONSE_HEAD_BYTES, POOL_IDLE_TIMEOUT, POOL_MAX_IDLE,
};
use anthropic_wif_host::net::errors::explain;
use anthropic_wif_host::net::headers;
use anthropic_wif_host::net::proxy::Route;
use anthropic_wif_host::origin::Origin;
use anthropic_wif_host::{AccessToken, OAUTH_BETA};

/// The body of an upstream request: the client's, streamed, or the kept
/// copy for the replay.
type Outbound = Either<Upload, Full<Bytes>>;

/// The pooled HTTP/1.1 client for the upstream.
pub type Client = legacy::Client<Connector, Outbound>;

/// The client pooling connections that `connector` opens: at most
/// [`POOL_MAX_IDLE`] idle ones, each closed after [`POOL_IDLE_TIMEOUT`];
/// an answer's head at most [`MAX_RESPONSE_HEAD_BYTES`].
pub fn client(connector: Connector) -> Client {
    legacy::Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .http1_max_buf_size(MAX_RESPONSE_HEAD_BYTES)
        .build(connector)
}

/// What is sent upstream, taken from the client's request.
pub struct Outgoing {
    method: Method,
    /// The path and query.
    target: String,
    /// The forwarded headers, `anthropic-beta` merged.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Outgoing {
    /// The request to forward for the client's `parts`.
    pub fn new(parts: &Parts) -> Outgoing {
        let listed = connection_listed(&parts.headers);
        let mut betas: Vec<String> = Vec::new();
        let mut headers = Vec::new();
        for (name, value) in &parts.headers {
            if name.as_str() == "anthropic-beta" {
                if let Ok(value) = value.to_str() {
                    betas.extend(
                        value
                            .split(',')
                            .map(|b| b.trim().to_string())
                            .filter(|b| !b.is_empty()),
                    );
                }
                continue;
            }
            // The framing and hop-by-hop headers (the host's one list),
            // the client's credentials, and its encodings (the upstream
            // then answers unencoded).
            let dropped = headers::is_set_by_client(name.as_str())
                || listed.iter().any(|l| l == name.as_str())
                || matches!(
                    name.as_str(),
                    "x-api-key" | "authorization" | "accept-encoding"
                );
            if !dropped {
                headers.push((name.clone(), value.clone()));
            }
        }
        if !betas.iter().any(|b| b == OAUTH_BETA) {
            betas.push(OAUTH_BETA.to_string());
        }
        if let Ok(value) = HeaderValue::from_str(&betas.join(",")) {
            headers.push((HeaderName::from_static("anthropic-beta"), value));
        }
        Outgoing {
            method: parts.method.clone(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
            headers,
        }
    }
}

/// The names a `Connection` header lists (lowercase).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect()
}

impl Gateway {
    /// Runs one exchange: sends `outgoing` with `body`, replays it after
    /// a 401; the answer, its body streaming from the upstream.
    pub(super) async fn exchange(
        self: Arc<Self>,
        outgoing: Outgoing,
        body: Upload,
    ) -> Result<Response<ResponseBody>, Failure> {
        let kept = body.handle();
        let (response, used) = self.send(&outgoing, Either::Left(body)).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(relayed(response));
        }
        let copy = kept.drain().await;
        let gateway = self.clone();
        tokio::task::spawn_blocking(move || {
            gateway
                .provider
                .invalidate_rejected(&gateway.auth, &used.token)
        })
        .await
        .map_err(|_| Failure::new(StatusCode::SERVICE_UNAVAILABLE, "cannot renew the token"))?
        .map_err(|e| {
            Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("cannot renew the token: {e}"),
            )
        })?;
        match copy {
            Some(copy) => {
                tracing::info!(
                    path = %outgoing.target.split('?').next().unwrap_or_default().escape_debug(),
                    "upstream answered 401; replaying once with a new token"
                );
                drop(response);
                let replayed = Either::Right(Full::new(Bytes::from(copy)));
                Ok(relayed(self.send(&outgoing, replayed).await?.0))
            }
            None => Ok(relayed(response)),
        }
    }

    /// Sends the request upstream with a token; the answer's head and the
    /// token it carried.
    async fn send(
        self: &Arc<Self>,
        outgoing: &Outgoing,
        body: Outbound,
    ) -> Result<(Response<hyper::body::Incoming>, AccessToken), Failure> {
        let token = self.token().await?;
        let mut request = Request::builder()
            .method(outgoing.method.clone())
            .uri(format!("{}{}", self.upstream, outgoing.target));
        for (name, value) in &outgoing.headers {
            request = request.header(name, value);
        }
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.token.expose()))
            .map_err(|_| {
                Failure::new(StatusCode::BAD_GATEWAY, "the token is not a header value")
            })?;
        bearer.set_sensitive(true);
        let request = request
            .header(hyper::header::AUTHORIZATION, bearer)
            .body(body)
            .map_err(|_| {
                Failure::new(StatusCode::BAD_REQUEST, "the request cannot be forwarded")
            })?;
        match self.client.request(request).await {
            Ok(response) => Ok((response, token)),
            Err(error) => Err(Failure::new(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "upstream failed: {}",
                    explained(&error, &self.origin, &self.route)
                ),
            )),
        }
    }

    /// A token: the provider's cached one at once, else the provider's
    /// answer on the blocking pool (it may read files, run a command or
    /// exchange over the network).
    async fn token(self: &Arc<Self>) -> Result<AccessToken, Failure> {
        if let Some(token) = self.provider.cached_token(&self.auth) {
            return Ok(token);
        }
        let gateway = self.clone();
        tokio::task::spawn_blocking(move || gateway.provider.get_token(&gateway.auth))
            .await
            .map_err(|_| Failure::new(StatusCode::SERVICE_UNAVAILABLE, "no token"))?
            .map_err(|e| Failure::new(StatusCode::SERVICE_UNAVAILABLE, &format!("no token: {e}")))
    }
}

/// Explains the failure of an upstream request as the host's HTTP client
/// explains one: by what the connector reported, else by the I/O failure
/// under the HTTP error, else as a broken exchange.
fn explained(error: &legacy::Error, origin: &Origin, route: &Route) -> String {
    let owned;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let transport = loop {
        let Some(current) = source else {
            owned = ureq::Error::Io(io::Error::from(io::ErrorKind::ConnectionAborted));
            break &owned;
        };
        if let Some(connect) = current.downcast_ref::<ureq::Error>() {
            break connect;
        }
        if let Some(failure) = current.downcast_ref::<io::Error>() {
            owned = ureq::Error::Io(io::Error::from(failure.kind()));
            break &owned;
        }
        source = current.source();
    };
    explain(transport, origin, route, IDLE_TIMEOUT).message
}

/// The answer relayed to the client: its status, its headers but the
/// hop-by-hop ones (and those its `Connection` lists), the framing (the
/// gateway frames the body itself) and any CORS permission for a browser;
/// its body as the upstream sends it.
fn relayed(response: Response<hyper::body::Incoming>) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    let listed = connection_listed(&parts.headers);
    let names: Vec<HeaderName> = parts.headers.keys().cloned().collect();
    for name in names {
        let text = name.as_str();
        if headers::is_hop_by_hop(text)
            || listed.iter().any(|l| l == text)
            || text == "content-length"
            || text.starts_with("access-control-")
        {
            parts.headers.remove(&name);
        }
    }
    Response::from_parts(parts, ResponseBody::Upstream(body))
}
