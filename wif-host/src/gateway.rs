//! `wif-host proxy`: a local authenticating gateway for clients that only
//! take a base URL.
//!
//! It listens on loopback or a Unix socket only, forwards `/v1/*` to the
//! config's `base_url`, drops the client's `x-api-key` and `authorization`,
//! adds `Authorization: Bearer <token>`, merges `oauth-2025-04-20` into
//! `anthropic-beta`, and streams both bodies (the response as chunks, each
//! flushed as it arrives, so server-sent events keep their timing). On an
//! upstream 401 it drops the token and replays the request once, when the
//! request body was at most [`REPLAY_CAP_BYTES`] (a copy is kept up to that
//! size while it is streamed). Each connection has its own thread and
//! serves one request (`Connection: close`). Logs carry the method, the
//! path and the status, never a header value or a body. On SIGTERM or
//! SIGINT it stops accepting, lets the requests in flight finish for up to
//! [`SHUTDOWN_GRACE`], and removes the Unix socket it created.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::sync::Stop;
use anthropic_wif_host::net::errors::explain;
use anthropic_wif_host::net::headers;
use anthropic_wif_host::net::proxy::{Route, RouteError};
use anthropic_wif_host::net::{ClientError, HttpClient};
use anthropic_wif_host::origin::Origin;
use anthropic_wif_host::{AccessToken, OAUTH_BETA, Provider};

pub mod http1;
pub mod in_flight;
pub mod listener;

use http1::{BodyKind, ChunkedReader, ChunkedWriter, Head};
use in_flight::InFlight;
pub use listener::{Connection, Listen, ListenAddressError, ListenError, Listener};

/// Request bodies up to this size are kept for the replay after a 401.
pub const REPLAY_CAP_BYTES: usize = 8 * 1024 * 1024;
/// An upstream read (or write) that makes no progress for this long ends
/// the request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed to connect to the upstream.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that sends nothing for this long is dropped.
pub const CLIENT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a stopping gateway waits for the requests in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why a gateway cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The upstream is not an `http` or `https` URL.
    #[error("the upstream {upstream} is not an http or https URL")]
    Upstream {
        /// The upstream base URL.
        upstream: String,
    },
    /// A proxy variable that would route the upstream is invalid.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// No HTTP agent for the route (the proxy URL is not usable).
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl GatewayError {
    /// Whether a retry may help: never, each is a matter of configuration
    /// (the config's `base_url`, the proxy variables or the policy).
    pub fn is_transient(&self) -> bool {
        match self {
            GatewayError::Upstream { .. } => false,
            GatewayError::Route(e) => e.is_transient(),
            GatewayError::Client(e) => e.is_transient(),
        }
    }
}

/// The gateway: a provider, the `auth` block and the upstream.
pub struct Gateway {
    provider: Provider,
    auth: String,
    upstream: String,
    /// The upstream's origin and how requests reach it, for the errors.
    origin: Origin,
    route: Route,
    agent: ureq::Agent,
}

impl Gateway {
    /// A gateway forwarding to `upstream` (a base URL) with tokens for
    /// `auth_json`. API requests take the network the provider's policy
    /// says, as the token exchange does: its proxy setting (or the proxy
    /// variables) and its CA files.
    pub fn new(
        provider: Provider,
        auth_json: String,
        upstream: &str,
    ) -> Result<Gateway, GatewayError> {
        let upstream = upstream.trim_end_matches('/').to_string();
        let origin = url::Url::parse(&upstream)
            .ok()
            .as_ref()
            .and_then(Origin::of)
            .ok_or_else(|| GatewayError::Upstream {
                upstream: upstream.clone(),
            })?;
        let client = HttpClient::for_policy(provider.policy());
        let route = client.route(&origin)?;
        let agent = client.streaming_agent(&route, CONNECT_TIMEOUT, IDLE_TIMEOUT)?;
        Ok(Gateway {
            provider,
            auth: auth_json,
            upstream,
            origin,
            route,
            agent,
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

    /// Serves connections from `listener` until `stop` is requested. Then it
    /// stops accepting, drops the listener (which removes the socket file
    /// it created) and waits up to `grace` for the connections in flight.
    /// Returns how many were still running when the grace period ended.
    pub fn serve(
        self: Arc<Self>,
        listener: Listener,
        stop: Stop,
        grace: Duration,
    ) -> io::Result<usize> {
        let in_flight = Arc::new(InFlight::default());
        self.accept_until_stopped(&listener, stop, &in_flight)?;
        drop(listener);
        Ok(in_flight.wait_idle(grace))
    }

    /// Accepts and serves connections until `stop` is requested.
    fn accept_until_stopped(
        self: &Arc<Self>,
        listener: &Listener,
        stop: Stop,
        in_flight: &Arc<InFlight>,
    ) -> io::Result<()> {
        let (wake, woken) = std::os::unix::net::UnixStream::pair()?;
        std::thread::spawn(move || {
            stop.wait_until_requested();
            drop(woken);
        });
        loop {
            match listener.accept_until(&wake) {
                Ok(Some(connection)) => self.clone().spawn(connection, in_flight),
                Ok(None) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Serves `connection` on a thread of its own, counted in `in_flight`.
    fn spawn(self: Arc<Self>, connection: Connection, in_flight: &Arc<InFlight>) {
        let served = in_flight.enter();
        let _ = connection.set_read_timeout(CLIENT_IDLE_TIMEOUT);
        std::thread::spawn(move || {
            let _served = served;
            if let Ok(reader) = connection.try_clone() {
                self.connection(BufReader::new(reader), connection);
            }
        });
    }

    /// One request on one connection.
    fn connection(&self, mut reader: impl BufRead, mut writer: impl Write) {
        let head = match http1::read_head(&mut reader) {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let _ = error_reply(&mut writer, 400, &format!("bad request: {e}"));
                return;
            }
        };
        let path = head
            .target
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string();
        let status = match self.forward(&head, &mut reader, &mut writer) {
            Ok(status) => status,
            Err(Failure { status, message }) => {
                let _ = error_reply(&mut writer, status, &message);
                status
            }
        };
        tracing::info!(method = %head.method, %path, status, "proxied");
    }

    fn forward(
        &self,
        head: &Head,
        reader: &mut dyn BufRead,
        writer: &mut dyn Write,
    ) -> Result<u16, Failure> {
        if !head.target.starts_with("/v1/") {
            return Err(Failure::new(404, "the gateway forwards /v1/* only"));
        }
        let kind = http1::body_kind(head).map_err(|e| Failure::new(400, &e.to_string()))?;
        if head
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        {
            writer
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| Failure::new(400, "client gone"))?;
        }
        let mut body: Box<dyn Read + '_> = match kind {
            BodyKind::Empty => Box::new(io::empty()),
            BodyKind::Length(n) => Box::new(reader.take(n)),
            BodyKind::Chunked => Box::new(ChunkedReader::new(reader)),
        };
        let mut kept = Tee {
            inner: &mut body,
            copy: Some(Vec::new()),
        };
        let (response, used) = self.send(head, kind, Upload::Stream(&mut kept))?;
        let response = if response.status() == 401 {
            let copy = drain_copy(kept);
            self.provider
                .invalidate_rejected(&self.auth, &used.token)
                .map_err(|e| Failure::new(503, &format!("cannot renew the token: {e}")))?;
            match copy {
                Some(copy) => {
                    tracing::info!(path = %head.target.split('?').next().unwrap_or_default(), "upstream answered 401; replaying once with a new token");
                    drop(response);
                    self.send(head, kind, Upload::Copy(copy))?.0
                }
                None => response,
            }
        } else {
            response
        };
        relay(response, head, writer)
    }

    /// Sends the request upstream with a token; returns the answer and the
    /// token it carried.
    fn send(
        &self,
        head: &Head,
        kind: BodyKind,
        upload: Upload<'_>,
    ) -> Result<(ureq::http::Response<ureq::Body>, AccessToken), Failure> {
        let token = self
            .provider
            .get_token(&self.auth)
            .map_err(|e| Failure::new(503, &format!("no token: {e}")))?;
        let url = format!("{}{}", self.upstream, head.target);
        let mut request = ureq::http::Request::builder()
            .method(head.method.as_str())
            .uri(url.as_str());
        let connection_listed: Vec<String> = head
            .header("connection")
            .map(|c| {
                c.split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect()
            })
            .unwrap_or_default();
        let mut betas: Vec<String> = Vec::new();
        for (name, value) in &head.headers {
            let lower = name.to_ascii_lowercase();
            if lower == "anthropic-beta" {
                betas.extend(
                    value
                        .split(',')
                        .map(|b| b.trim().to_string())
                        .filter(|b| !b.is_empty()),
                );
                continue;
            }
            let dropped = headers::is_set_by_client(&lower)
                || connection_listed.contains(&lower)
                || matches!(
                    lower.as_str(),
                    "x-api-key" | "authorization" | "accept-encoding"
                );
            if !dropped {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        if !betas.iter().any(|b| b == OAUTH_BETA) {
            betas.push(OAUTH_BETA.to_string());
        }
        request = request
            .header("anthropic-beta", betas.join(","))
            .header("authorization", format!("Bearer {}", token.token.expose()));
        let result = match (upload, kind) {
            (_, BodyKind::Empty) => request
                .body(ureq::SendBody::none())
                .map(|r| self.agent.run(r)),
            (Upload::Copy(copy), _) => {
                let length = copy.len();
                request
                    .header("content-length", length)
                    .body(ureq::SendBody::from_owned_reader(io::Cursor::new(copy)))
                    .map(|r| self.agent.run(r))
            }
            (Upload::Stream(body), BodyKind::Length(n)) => request
                .header("content-length", n)
                .body(ureq::SendBody::from_reader(body))
                .map(|r| self.agent.run(r)),
            (Upload::Stream(body), BodyKind::Chunked) => request
                .body(ureq::SendBody::from_reader(body))
                .map(|r| self.agent.run(r)),
        };
        match result {
            Ok(Ok(response)) => Ok((response, token)),
            Ok(Err(error)) => Err(Failure::new(
                502,
                &format!(
                    "upstream failed: {}",
                    explain(&error, &self.origin, &self.route, IDLE_TIMEOUT).message
                ),
            )),
            Err(_) => Err(Failure::new(400, "the request cannot be forwarded")),
        }
    }
}

/// The request body for one upstream try.
enum Upload<'a> {
    /// The client's body, streamed (and copied up to the cap).
    Stream(&'a mut dyn Read),
    /// The kept copy, for the replay.
    Copy(Vec<u8>),
}

/// Reads through `inner`, keeping a copy of what was read up to
/// [`REPLAY_CAP_BYTES`] (`None` once the body is larger).
struct Tee<'a> {
    inner: &'a mut dyn Read,
    copy: Option<Vec<u8>>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        if let Some(copy) = &mut self.copy {
            if copy.len() + read > REPLAY_CAP_BYTES {
                self.copy = None;
            } else {
                copy.extend_from_slice(&buf[..read]);
            }
        }
        Ok(read)
    }
}

/// The whole body as kept, after reading what the upstream did not (a 401
/// may come before the body was sent); `None` when it is over the cap.
fn drain_copy(mut tee: Tee<'_>) -> Option<Vec<u8>> {
    let mut sink = [0u8; 8192];
    loop {
        match tee.read(&mut sink) {
            Ok(0) => return tee.copy,
            Ok(_) if tee.copy.is_none() => return None,
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Writes the upstream response to the client, streaming its body.
fn relay(
    response: ureq::http::Response<ureq::Body>,
    head: &Head,
    writer: &mut dyn Write,
) -> Result<u16, Failure> {
    let status = response.status();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let connection_listed: Vec<String> = response
        .headers()
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            v.split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    for (name, value) in response.headers() {
        let lower = name.as_str();
        if headers::is_hop_by_hop(lower)
            || connection_listed.iter().any(|c| c == lower)
            || matches!(lower, "content-length" | "content-encoding")
        {
            continue;
        }
        if let Ok(value) = value.to_str() {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    let no_body = head.method.eq_ignore_ascii_case("HEAD")
        || status.as_u16() == 204
        || status.as_u16() == 304
        || status.is_informational();
    out.push_str("connection: close\r\n");
    if !no_body {
        out.push_str("transfer-encoding: chunked\r\n");
    }
    out.push_str("\r\n");
    let client_gone = |_| Failure::new(499, "client gone");
    writer.write_all(out.as_bytes()).map_err(client_gone)?;
    writer.flush().map_err(client_gone)?;
    if no_body {
        return Ok(status.as_u16());
    }
    let mut body = response.into_body().into_reader();
    let mut chunks = ChunkedWriter::new(writer);
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            // The head is sent: end the stream without its last chunk, so
            // the client sees a cut-short body rather than a complete one.
            Err(_) => return Ok(status.as_u16()),
        };
        chunks.write_all(&buffer[..read]).map_err(client_gone)?;
    }
    chunks.finish().map_err(client_gone)?;
    Ok(status.as_u16())
}

/// An answer of the gateway itself.
struct Failure {
    status: u16,
    message: String,
}

impl Failure {
    fn new(status: u16, message: &str) -> Failure {
        Failure {
            status,
            message: message.to_string(),
        }
    }
}

/// An error answer in the Anthropic API's shape.
fn error_reply(writer: &mut dyn Write, status: u16, message: &str) -> io::Result<()> {
    if status == 499 {
        return Ok(());
    }
    let body = serde_json::json!({"type": "error", "error": {"type": "api_error", "message": format!("wif-host proxy: {message}")}})
        .to_string();
    write!(
        writer,
        "HTTP/1.1 {status} Gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    writer.flush()
}

#[cfg(test)]
mod tests;
