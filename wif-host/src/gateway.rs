//! `wif-host gateway`: a local authenticating gateway for clients that
//! only take a base URL.
//!
//! It listens on loopback or a Unix socket only (a Unix socket 0600, its
//! peers checked to be this user) and serves HTTP/1.1 with keep-alive
//! (hyper on a tokio runtime, at most [`MAX_CONNECTIONS`] connections).
//! Every request is vetted before anything else ([`vet`]): GET, POST and
//! DELETE only; a `Host` naming the gateway's own socket (against DNS
//! rebinding); no `Origin` and no cross-site `Sec-Fetch-Site` (against web
//! pages); a clean origin-form `/v1/…` target. Then it must carry the
//! gateway's [`ClientKey`] (as `x-api-key` or `Authorization: Bearer`),
//! which is never forwarded. An admitted request goes to the config's
//! `base_url` with `Authorization: Bearer <token>` and `oauth-2025-04-20`
//! merged into `anthropic-beta`, the hop-by-hop headers dropped; both
//! bodies stream (the response chunk by chunk as it arrives, so
//! server-sent events keep their timing). The upstream exchange runs on
//! the same runtime, on the policy's network (proxy, CA files, explained
//! errors: [`connect`]) through one pooled HTTP/1.1 client, with no thread
//! per request. On an upstream 401
//! it drops the rejected token and replays the request once, when the
//! request body was at most [`REPLAY_CAP_BYTES`]. Logs carry the method,
//! the path (escaped) and the status, never a header value or a body. On
//! a stop (SIGTERM or SIGINT for the command) it stops accepting, lets
//! the requests in flight finish for up to [`SHUTDOWN_GRACE`], and removes
//! the Unix socket it created.

use std::sync::Arc;
use std::time::Duration;

use crate::sync::Stop;
use anthropic_wif_host::Provider;
use anthropic_wif_host::net::HttpClient;
use anthropic_wif_host::net::proxy::{Route, RouteError};
use anthropic_wif_host::net::tls::LazyClientConfig;
use anthropic_wif_host::origin::Origin;
use hyper::{Response, StatusCode};

mod bridge;
pub mod client_key;
mod connect;
mod handle;
pub mod listener;
mod server;
mod upstream;
pub mod vet;

pub use client_key::{ClientKey, ClientKeyError};
pub use listener::{AddressError, Listen, ListenError, Listener};

/// Request bodies up to this size are kept for the replay after a 401.
pub const REPLAY_CAP_BYTES: usize = 8 * 1024 * 1024;
/// An upstream read (or write) that makes no progress for this long ends
/// the request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed to connect to the upstream (through the proxy and TLS
/// included).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest head of an upstream answer, in bytes (also the largest
/// read buffer of an upstream connection).
pub const MAX_RESPONSE_HEAD_BYTES: usize = 16 * 1024;
/// Idle upstream connections kept for reuse.
pub const POOL_MAX_IDLE: usize = 64;
/// An idle upstream connection is closed after this long.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// A client that sends no request body data for this long is dropped.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A client must send a whole request head within this time; an idle
/// kept-alive connection is closed after it.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head, in bytes (hyper's read buffer).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header lines in a request.
pub const MAX_HEADERS: usize = 128;
/// Connections served at once; a new one beyond this gets a 503 and is
/// closed.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a stopping gateway waits for the requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a gateway cannot be made or cannot serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The upstream is not an http or https URL.
    #[error("the upstream {upstream} is not an http or https URL")]
    Upstream {
        /// The upstream base URL.
        upstream: String,
    },
    /// The route to the upstream cannot be chosen (a proxy variable or
    /// setting is unusable).
    #[error("the route to {upstream}: {source}")]
    Route {
        /// The upstream base URL.
        upstream: String,
        /// What is wrong (never a proxy's credentials).
        #[source]
        source: RouteError,
    },
    /// The runtime (threads) could not be started.
    #[error("cannot start the gateway's threads: {0}")]
    Runtime(#[source] std::io::Error),
    /// The listening socket could not be served.
    #[error("cannot serve the listening socket: {0}")]
    Serve(#[source] std::io::Error),
}

impl GatewayError {
    /// Whether trying again may succeed: a passing failure to start the
    /// threads or to serve the socket. A bad upstream or route needs a
    /// change of the config, the policy or the proxy variables.
    pub fn is_transient(&self) -> bool {
        match self {
            GatewayError::Runtime(source) | GatewayError::Serve(source) => {
                anthropic_wif_host::net::errors::is_transient_io(source.kind())
            }
            GatewayError::Upstream { .. } | GatewayError::Route { .. } => false,
        }
    }
}

/// The gateway: a provider, the `auth` block, the upstream and the key
/// clients must present.
pub struct Gateway {
    provider: Provider,
    auth: String,
    upstream: String,
    client_key: ClientKey,
    /// The upstream's origin and how requests reach it, for the errors.
    origin: Origin,
    route: Route,
    /// One client for every exchange: it pools upstream connections.
    client: upstream::Client,
}

impl Gateway {
    /// A gateway forwarding to `upstream` (a base URL) with tokens for
    /// `auth_json`, for clients that present `client_key`. API requests
    /// take the network the provider's policy says, as the token exchange
    /// does: its proxy setting (or the proxy variables) and its CA files.
    /// Connections are opened when the first requests need them.
    pub fn new(
        provider: Provider,
        auth_json: String,
        upstream: &str,
        client_key: ClientKey,
    ) -> Result<Gateway, GatewayError> {
        let upstream = upstream.trim_end_matches('/').to_string();
        let origin = url::Url::parse(&upstream)
            .ok()
            .as_ref()
            .and_then(Origin::of)
            .ok_or_else(|| GatewayError::Upstream {
                upstream: upstream.clone(),
            })?;
        let route = HttpClient::for_policy(provider.policy())
            .route(&origin)
            .map_err(|source| GatewayError::Route {
                upstream: upstream.clone(),
                source,
            })?;
        let tls = LazyClientConfig::new(provider.policy().ca_files.clone());
        let client = upstream::client(connect::Connector::new(
            route.clone(),
            tls,
            CONNECT_TIMEOUT,
            IDLE_TIMEOUT,
        ));
        Ok(Gateway {
            provider,
            auth: auth_json,
            upstream,
            client_key,
            origin,
            route,
            client,
        })
    }

    /// The upstream base URL of an `auth` block: its `base_url`, else the
    /// Anthropic API.
    pub fn upstream_of(auth_json: &str) -> String {
        serde_json::from_str::<serde_json::Value>(auth_json)
            .ok()
            .and_then(|auth| {
                auth["workload_identity_federation"]["base_url"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "https://api.anthropic.com".to_string())
    }

    /// Serves connections from `listener` until `stop` is requested. Then
    /// it stops accepting, drops the listener (which removes the socket
    /// file it created), closes idle connections and waits up to `grace`
    /// for the requests in flight. Returns how many connections were still
    /// open when the grace period ended.
    pub fn serve(
        self: Arc<Self>,
        listener: Listener,
        stop: Stop,
        grace: Duration,
    ) -> Result<usize, GatewayError> {
        server::run(self, listener, stop, grace)
    }
}

/// An answer of the gateway itself, in the Anthropic API's error shape.
pub struct Failure {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Failure {
    /// A failure with `status`, of the API error type that status has.
    fn new(status: StatusCode, message: &str) -> Failure {
        let kind = match status.as_u16() {
            400 | 405 | 421 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            _ => "api_error",
        };
        Failure {
            status,
            kind,
            message: message.to_string(),
        }
    }

    /// The answer: `{"type":"error","error":{"type":…,"message":…}}`.
    fn response(&self) -> Response<bridge::ResponseBody> {
        let body = serde_json::json!({"type": "error", "error": {"type": self.kind,
            "message": format!("wif-host gateway: {}", self.message)}})
        .to_string();
        let mut response = Response::new(bridge::ResponseBody::fixed(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, POST, DELETE"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests;
