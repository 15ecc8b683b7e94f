//! `http-fetch` over `wasi:http/outgoing-handler`, called through the `wasi`
//! crate's bindings (WASI 0.2.12, the version wasmtime 48 provides).
//!
//! - A request with a body (and every `POST` and `PUT`) carries `content-length`, so
//!   the runtime never sends it chunked: some servers and proxies answer a
//!   chunked request with 411 Length Required, others read it as empty.
//! - The whole request — connecting, sending, the answer's head and its
//!   whole body — must finish within one deadline: [`DEFAULT_TIMEOUT`], or
//!   the seconds in [`TIMEOUT_VARIABLE`] when the runtime passes it. The
//!   adapter enforces it itself (every wait also waits on a monotonic-clock
//!   timer, and the clock is checked after every chunk read), so a server
//!   that never answers or drips its answer cannot hold a run; the runtime
//!   gets it too, as the connect, first-byte and between-bytes timeouts.
//! - Redirects are never followed (`wasi:http` does not); the body is capped
//!   at [`MAX_BODY_BYTES`], over the cap is an error, not a cut.
//!
//! Error details name the origin only: the URL may hold expanded secrets,
//! and header values are never shown.

use std::sync::OnceLock;
use std::time::Duration;

use wasi::clocks::monotonic_clock::{self, Instant};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, HeaderError, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{Pollable, poll};
use wasi::io::streams::{self, InputStream, OutputStream, StreamError};

use crate::bindings::exports::anthropic_wif::federation::capabilities::{
    CapError, Header, HttpRequest, HttpResponse,
};
use crate::printable;

/// The largest response body `http-fetch` returns.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// The variable (passed by the runtime, e.g. `--env`) that sets the
/// deadline of a whole request, in seconds.
pub const TIMEOUT_VARIABLE: &str = "ANTHROPIC_WIF_HTTP_TIMEOUT_SECS";
/// The deadline of a whole request when [`TIMEOUT_VARIABLE`] is unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest deadline [`TIMEOUT_VARIABLE`] may set.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// How much of the response body one read asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// Sends one request through `wasi:http` and reads the whole response
/// within the deadline.
pub fn http_fetch(request: HttpRequest) -> Result<HttpResponse, CapError> {
    let timeout = timeout()?;
    let target = Target::parse(&request.url)?;
    let deadline = Deadline::after(timeout, &target.origin);
    let method = method(&request.method)?;
    let sized = !request.body.is_empty() || matches!(method, Method::Post | Method::Put);
    let length = sized.then_some(request.body.len());
    let outgoing = OutgoingRequest::new(fields(&request.headers, length)?);
    let invalid = |what: &str| CapError::Failed(format!("the URL's {what} is not valid"));
    outgoing
        .set_method(&method)
        .map_err(|()| invalid("method"))?;
    outgoing
        .set_scheme(Some(&target.scheme))
        .map_err(|()| invalid("scheme"))?;
    outgoing
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("host"))?;
    outgoing
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| invalid("path or query"))?;
    let body = outgoing
        .body()
        .map_err(|()| deadline.failure("the request body cannot be written"))?;
    let future = outgoing_handler::handle(outgoing, Some(options(timeout)))
        .map_err(|code| deadline.error(&code))?;
    send_body(body, &request.body, &deadline)?;
    let response = await_response(&future, &deadline)?;
    drop(future);
    read_response(response, &deadline)
}

/// The deadline from [`TIMEOUT_VARIABLE`], or [`DEFAULT_TIMEOUT`]; read
/// once (the instance's environment does not change).
fn timeout() -> Result<Duration, CapError> {
    static TIMEOUT: OnceLock<Result<Duration, String>> = OnceLock::new();
    TIMEOUT
        .get_or_init(|| {
            let invalid = || {
                format!(
                    "{TIMEOUT_VARIABLE} must be a number of seconds from 0.001 to {}, e.g. `30`",
                    MAX_TIMEOUT.as_secs()
                )
            };
            match std::env::var(TIMEOUT_VARIABLE) {
                Ok(text) => parse_timeout(&text).ok_or_else(invalid),
                Err(std::env::VarError::NotPresent) => Ok(DEFAULT_TIMEOUT),
                Err(std::env::VarError::NotUnicode(_)) => Err(invalid()),
            }
        })
        .clone()
        .map_err(CapError::Failed)
}

/// Seconds from 0.001 (one millisecond) to [`MAX_TIMEOUT`], fractions allowed.
fn parse_timeout(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.001 && secs <= MAX_TIMEOUT.as_secs_f64())
        .then(|| Duration::from_secs_f64(secs))
}

/// The runtime's own timeouts, each the whole deadline. A runtime that does
/// not support one refuses to set it; the adapter's own deadline still
/// holds, so a refusal is not an error.
fn options(timeout: Duration) -> RequestOptions {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    options
}

fn method(method: &str) -> Result<Method, CapError> {
    match method {
        "GET" => Ok(Method::Get),
        "POST" => Ok(Method::Post),
        // IMDSv2 opens its session with a PUT.
        "PUT" => Ok(Method::Put),
        other => Err(CapError::Failed(format!(
            "method {} is not supported",
            printable(other)
        ))),
    }
}

/// The request headers, and `content-length: LENGTH` when the body is
/// sized (one in `headers` is replaced: the body's own length is the truth).
fn fields(headers: &[Header], length: Option<usize>) -> Result<Fields, CapError> {
    let fields = Fields::new();
    let append = |name: &str, value: &[u8]| match fields.append(name, value) {
        Ok(()) => Ok(()),
        Err(HeaderError::Forbidden) => Err(CapError::Failed(format!(
            "the runtime does not allow the header {name}"
        ))),
        // The value is never shown: it may hold an expanded secret.
        Err(_) => Err(CapError::Failed(format!(
            "the value of header {name} is not valid"
        ))),
    };
    for header in headers {
        let name = header.name.to_ascii_lowercase();
        if !valid_name(&name) {
            return Err(CapError::Failed(format!(
                "header name {} is not valid",
                printable(&header.name)
            )));
        }
        if length.is_some() && name == "content-length" {
            continue;
        }
        append(&name, header.value.as_bytes())?;
    }
    if let Some(length) = length {
        append("content-length", length.to_string().as_bytes())?;
    }
    Ok(fields)
}

/// An HTTP token (RFC 9110): the characters a header name may hold.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Writes the whole body and finishes it. A stream the runtime closes
/// before every byte is written (the server answered or the connection
/// ended first) leaves the body unfinished; the response, or its error,
/// then tells what happened.
fn send_body(body: OutgoingBody, bytes: &[u8], deadline: &Deadline) -> Result<(), CapError> {
    let complete = {
        let stream = body
            .write()
            .map_err(|()| deadline.failure("the request body cannot be written"))?;
        write_all(&stream, bytes, deadline)?
    };
    if complete {
        OutgoingBody::finish(body, None).map_err(|code| deadline.error(&code))?;
    }
    Ok(())
}

/// Writes `bytes` and flushes; `false` when the stream closed first.
fn write_all(
    stream: &OutputStream,
    mut bytes: &[u8],
    deadline: &Deadline,
) -> Result<bool, CapError> {
    let ready = stream.subscribe();
    while !bytes.is_empty() {
        let permit = match stream.check_write() {
            Ok(0) => {
                deadline.wait(&ready)?;
                continue;
            }
            Ok(permit) => usize::try_from(permit).unwrap_or(usize::MAX),
            Err(StreamError::Closed) => return Ok(false),
            Err(StreamError::LastOperationFailed(e)) => return Err(deadline.stream_error(&e)),
        };
        let (now, rest) = bytes.split_at(permit.min(bytes.len()));
        match stream.write(now) {
            Ok(()) => bytes = rest,
            Err(StreamError::Closed) => return Ok(false),
            Err(StreamError::LastOperationFailed(e)) => return Err(deadline.stream_error(&e)),
        }
    }
    // With a known length the runtime may close the stream as soon as it
    // has the last byte: after a complete write, closed means sent.
    match stream.flush() {
        Ok(()) | Err(StreamError::Closed) => {}
        Err(StreamError::LastOperationFailed(e)) => return Err(deadline.stream_error(&e)),
    }
    loop {
        match stream.check_write() {
            Ok(0) => deadline.wait(&ready)?,
            Ok(_) | Err(StreamError::Closed) => return Ok(true),
            Err(StreamError::LastOperationFailed(e)) => return Err(deadline.stream_error(&e)),
        }
    }
}

/// Waits for the response's head.
fn await_response(
    future: &FutureIncomingResponse,
    deadline: &Deadline,
) -> Result<IncomingResponse, CapError> {
    let ready = future.subscribe();
    loop {
        match future.get() {
            None => deadline.wait(&ready)?,
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(deadline.error(&code)),
            Some(Err(())) => return Err(deadline.failure("the response was already taken")),
        }
    }
}

/// The status, the headers and the whole body, up to [`MAX_BODY_BYTES`].
fn read_response(
    response: IncomingResponse,
    deadline: &Deadline,
) -> Result<HttpResponse, CapError> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| Header {
            name,
            value: String::from_utf8_lossy(&value).into_owned(),
        })
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| deadline.failure("the response body cannot be read"))?;
    let stream = incoming
        .stream()
        .map_err(|()| deadline.failure("the response body cannot be read"))?;
    let body = read_body(&stream, deadline)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn read_body(stream: &InputStream, deadline: &Deadline) -> Result<Vec<u8>, CapError> {
    let ready = stream.subscribe();
    let mut body = Vec::new();
    loop {
        deadline.check()?;
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => deadline.wait(&ready)?,
            Ok(chunk) => {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > MAX_BODY_BYTES {
                    return Err(CapError::TooLarge(format!(
                        "the response body from {} exceeds {MAX_BODY_BYTES} bytes",
                        deadline.origin
                    )));
                }
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(e)) => return Err(deadline.stream_error(&e)),
        }
    }
}

/// The parts of an absolute `http` or `https` URL that `wasi:http` takes.
struct Target {
    scheme: Scheme,
    /// `host[:port]`.
    authority: String,
    /// From the first `/` or `?`, without the fragment; `/` when empty.
    path_with_query: String,
    /// `scheme://host[:port]`, for messages.
    origin: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, CapError> {
        let invalid = |why: &str| CapError::Failed(format!("the URL {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("is not a valid http or https URL"))?;
        let (scheme, name) = match scheme.to_ascii_lowercase().as_str() {
            "http" => (Scheme::Http, "http"),
            "https" => (Scheme::Https, "https"),
            _ => return Err(invalid("is not a valid http or https URL")),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("has no host"));
        }
        // Never shown, and never sent: it may be a credential.
        if authority.contains('@') {
            return Err(invalid(
                "holds user information (`user@`), which wasi:http cannot send",
            ));
        }
        let tail = tail.split('#').next().unwrap_or_default();
        let path_with_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Target {
            scheme,
            authority: authority.to_string(),
            path_with_query,
            origin: format!("{name}://{authority}"),
        })
    }
}

/// When a request must be over, and the origin its errors name.
struct Deadline {
    at: Instant,
    timeout: Duration,
    origin: String,
}

impl Deadline {
    fn after(timeout: Duration, origin: &str) -> Deadline {
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Deadline {
            at: monotonic_clock::now().saturating_add(nanos),
            timeout,
            origin: origin.to_string(),
        }
    }

    /// Waits until `ready` is ready or the deadline passes, whichever is
    /// first; an error when the deadline has passed.
    fn wait(&self, ready: &Pollable) -> Result<(), CapError> {
        let timer = monotonic_clock::subscribe_instant(self.at);
        poll(&[ready, &timer]);
        self.check()
    }

    /// An error when the deadline has passed.
    fn check(&self) -> Result<(), CapError> {
        if monotonic_clock::now() >= self.at {
            Err(self.expired())
        } else {
            Ok(())
        }
    }

    fn expired(&self) -> CapError {
        CapError::Timeout(format!(
            "{} did not answer within {} s (the deadline of a whole request; {TIMEOUT_VARIABLE} \
             sets it)",
            self.origin,
            self.timeout.as_secs_f64()
        ))
    }

    fn failure(&self, what: &str) -> CapError {
        CapError::Failed(format!("the request to {}: {what}", self.origin))
    }

    /// A failed stream operation as a capability error.
    fn stream_error(&self, error: &streams::Error) -> CapError {
        match wasi::http::types::http_error_code(error) {
            Some(code) => self.error(&code),
            None => self.failure("the connection failed"),
        }
    }

    /// A `wasi:http` error code as a capability error. Never uses a
    /// free-form text, which can quote the URL (and so an expanded secret).
    fn error(&self, code: &ErrorCode) -> CapError {
        use ErrorCode as E;
        let origin = &self.origin;
        match code {
            E::DnsTimeout
            | E::ConnectionTimeout
            | E::ConnectionReadTimeout
            | E::ConnectionWriteTimeout
            | E::HttpResponseTimeout => self.expired(),
            E::HttpRequestDenied => CapError::Denied(format!(
                "the runtime does not grant HTTP requests to {origin}"
            )),
            E::HttpResponseBodySize(_) | E::HttpResponseHeaderSize(_) => {
                CapError::TooLarge(format!("the response from {origin} is too large"))
            }
            E::DnsError(_) | E::DestinationNotFound => {
                CapError::Failed(format!("host of {origin} not found"))
            }
            E::ConnectionRefused | E::DestinationUnavailable => {
                CapError::Failed(format!("connection to {origin} refused"))
            }
            E::TlsProtocolError | E::TlsCertificateError | E::TlsAlertReceived(_) => {
                CapError::Failed(format!("TLS error with {origin}"))
            }
            E::InternalError(_) => CapError::Failed(format!(
                "the request to {origin} failed (the runtime's internal error)"
            )),
            _ => CapError::Failed(format!("the request to {origin} failed ({code:?})")),
        }
    }
}

#[cfg(test)]
mod tests;
