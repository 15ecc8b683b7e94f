//! One exchange with the upstream, on the blocking pool: the request with
//! the client's headers (minus its credentials and the hop-by-hop ones)
//! and a token, its body streamed from the client; on a 401, the rejected
//! token dropped and the request replayed once (when its body was at most
//! [`REPLAY_CAP_BYTES`]); then the answer's head and its body, chunk by
//! chunk as the upstream sends it.

use std::io::{self, Read};

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};
use tokio::sync::{mpsc, oneshot};

use super::bridge::{ChannelReader, Chunk};
use super::{Failure, Gateway, IDLE_TIMEOUT, REPLAY_CAP_BYTES};
use anthropic_wif_host::net::errors::explain;
use anthropic_wif_host::net::headers;
use anthropic_wif_host::{AccessToken, OAUTH_BETA};

/// The size of one read from the upstream's body (events are small; a
/// large body takes more reads, each a chunk to the client).
const READ_BYTES: usize = 8 * 1024;

/// What is sent upstream, taken from the client's request.
pub struct Outgoing {
    method: Method,
    /// The path and query.
    target: String,
    /// The forwarded headers, `anthropic-beta` merged.
    headers: Vec<(HeaderName, HeaderValue)>,
    body: BodyKind,
}

/// The framing of the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// None.
    Empty,
    /// This many bytes.
    Length(u64),
    /// Of unknown length (chunked).
    Chunked,
}

/// The head of the upstream's answer, as relayed to the client.
pub struct ResponseHead {
    /// The status.
    pub status: StatusCode,
    /// The relayed headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Outgoing {
    /// The request to forward for the client's `parts`, whose body has
    /// `length` bytes (`None`: unknown, chunked).
    pub fn new(parts: &Parts, length: Option<u64>) -> Outgoing {
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
            // the client's credentials, and its encodings (the response is
            // relayed as the upstream sends it).
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
        let body = match length {
            Some(0) => BodyKind::Empty,
            Some(n) => BodyKind::Length(n),
            None => BodyKind::Chunked,
        };
        Outgoing {
            method: parts.method.clone(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
            headers,
            body,
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
    /// Runs one exchange (blocking): sends `outgoing` with `body`, replays
    /// it after a 401, then sends the answer's head on `head` and its body
    /// on `chunks`, until the body ends or the client is gone.
    pub(super) fn exchange(
        &self,
        outgoing: Outgoing,
        body: ChannelReader,
        head: oneshot::Sender<Result<ResponseHead, Failure>>,
        chunks: mpsc::Sender<Chunk>,
    ) {
        let response = match self.send_with_replay(&outgoing, body) {
            Ok(response) => response,
            Err(failure) => {
                let _ = head.send(Err(failure));
                return;
            }
        };
        let (parts, body) = response.into_parts();
        let relayed = ResponseHead {
            status: parts.status,
            headers: relayed_headers(&parts.headers),
        };
        if head.send(Ok(relayed)).is_err() {
            return;
        }
        let mut reader = body.into_reader();
        let mut buffer = vec![0u8; READ_BYTES];
        loop {
            let chunk = match reader.read(&mut buffer) {
                Ok(0) => return,
                Ok(read) => Ok(Bytes::copy_from_slice(&buffer[..read])),
                Err(e) => Err(e),
            };
            let last = chunk.is_err();
            if chunks.blocking_send(chunk).is_err() || last {
                return;
            }
        }
    }

    /// Sends `outgoing`; on a 401 drops the token the upstream rejected
    /// and replays once with a new one, when the body was kept.
    fn send_with_replay(
        &self,
        outgoing: &Outgoing,
        body: ChannelReader,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let mut kept = Tee {
            inner: body,
            copy: Some(Vec::new()),
        };
        let (response, used) = self.send(outgoing, Upload::Stream(&mut kept))?;
        if response.status() != 401 {
            return Ok(response);
        }
        let copy = kept.drain_copy();
        self.provider
            .invalidate_rejected(&self.auth, &used.token)
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
                Ok(self.send(outgoing, Upload::Copy(copy))?.0)
            }
            None => Ok(response),
        }
    }

    /// Sends the request upstream with a token; the answer and the token
    /// it carried.
    fn send(
        &self,
        outgoing: &Outgoing,
        upload: Upload<'_>,
    ) -> Result<(ureq::http::Response<ureq::Body>, AccessToken), Failure> {
        let token = self.provider.get_token(&self.auth).map_err(|e| {
            Failure::new(StatusCode::SERVICE_UNAVAILABLE, &format!("no token: {e}"))
        })?;
        let url = format!("{}{}", self.upstream, outgoing.target);
        let mut request = ureq::http::Request::builder()
            .method(outgoing.method.as_str())
            .uri(url.as_str());
        for (name, value) in &outgoing.headers {
            request = request.header(name.as_str(), value.as_bytes());
        }
        request = request.header("authorization", format!("Bearer {}", token.token.expose()));
        let result = match (upload, outgoing.body) {
            (_, BodyKind::Empty) => request
                .body(ureq::SendBody::none())
                .map(|r| self.agent.run(r)),
            (Upload::Copy(copy), _) => request
                .header("content-length", copy.len())
                .body(ureq::SendBody::from_owned_reader(io::Cursor::new(copy)))
                .map(|r| self.agent.run(r)),
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
                StatusCode::BAD_GATEWAY,
                &format!(
                    "upstream failed: {}",
                    explain(&error, &self.origin, &self.route, IDLE_TIMEOUT).message
                ),
            )),
            Err(_) => Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "the request cannot be forwarded",
            )),
        }
    }
}

/// The headers of the upstream's answer that are relayed: not the
/// hop-by-hop ones (nor those its `Connection` lists), not the framing
/// (the gateway frames the body itself; the upstream client decodes a
/// compressed body), and no CORS permission for a browser.
fn relayed_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let listed = connection_listed(headers);
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !(headers::is_hop_by_hop(name)
                || listed.iter().any(|l| l == name)
                || matches!(name, "content-length" | "content-encoding")
                || name.starts_with("access-control-"))
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// The request body for one upstream try.
enum Upload<'a> {
    /// The client's body, streamed (and copied up to the cap).
    Stream(&'a mut Tee),
    /// The kept copy, for the replay.
    Copy(Vec<u8>),
}

/// Reads through `inner`, keeping a copy of what was read up to
/// [`REPLAY_CAP_BYTES`] (`None` once the body is larger).
pub(super) struct Tee<R = ChannelReader> {
    pub(super) inner: R,
    pub(super) copy: Option<Vec<u8>>,
}

impl<R: Read> Read for Tee<R> {
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

impl<R: Read> Tee<R> {
    /// The whole body as kept, after reading what the upstream did not (a
    /// 401 may come before the body was sent); `None` when it is over the
    /// cap or ended early.
    pub(super) fn drain_copy(mut self) -> Option<Vec<u8>> {
        let mut sink = [0u8; 8192];
        loop {
            match self.read(&mut sink) {
                Ok(0) => return self.copy,
                Ok(_) if self.copy.is_none() => return None,
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}
