//! The `capabilities` interface of `anthropic-wif`, implemented with
//! standard WASI for plain WASI runtimes.
//!
//! Built for `wasm32-wasip2`, this component exports the capabilities the
//! federation component imports, so that the composition of the two needs
//! nothing but standard WASI. The runtime's own grants are the policy:
//!
//! - `read-file`: Rust std, so only what the runtime preopened (`--dir`);
//!   at most 1 MiB.
//! - `get-env`: Rust std, so only what the runtime passed (`--env`); any
//!   other variable reads as unset.
//! - `http-fetch`: `wasi:http/outgoing-handler` through `waki`, so only
//!   when the runtime enables wasi-http. `wasi:http` never follows
//!   redirects; the body is capped at 1 MiB (over the cap is an error, not a
//!   cut), and the connection must be made within 30 s.
//! - `run-command`: always denied; a WASI runtime runs no programs.

mod bindings {
    wit_bindgen::generate!({
        world: "wasi-capabilities",
        path: "../../wit",
    });
}

use std::io::{ErrorKind, Read};
use std::path::Path;
use std::time::Duration;

use waki::header::{HeaderName, HeaderValue};

use bindings::exports::anthropic_wif::federation::capabilities::{
    CapError, CommandOutput, Guest, Header, HttpRequest, HttpResponse,
};

/// The largest file `read-file` returns.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The largest response body `http-fetch` returns.
pub const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// How long `http-fetch` waits for a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The capabilities over standard WASI.
pub struct WasiCapabilities;

impl Guest for WasiCapabilities {
    fn read_file(path: String) -> Result<Vec<u8>, CapError> {
        read_file(&path)
    }

    fn get_env(name: String) -> Result<Option<String>, CapError> {
        get_env(&name)
    }

    fn http_fetch(request: HttpRequest) -> Result<HttpResponse, CapError> {
        http_fetch(request)
    }

    fn run_command(_argv: Vec<String>, _timeout_ms: u32) -> Result<CommandOutput, CapError> {
        Err(CapError::Denied(
            "run-command is not available in a plain WASI runtime".into(),
        ))
    }
}

// Exported for WebAssembly only: natively the export names (with `:` and
// `@`) are not valid linker symbols, and the crate is built natively only
// for its unit tests and lints.
#[cfg(target_arch = "wasm32")]
bindings::export!(WasiCapabilities with_types_in bindings);

/// Reads a file the runtime preopened, whole, up to [`MAX_FILE_BYTES`].
pub fn read_file(path: &str) -> Result<Vec<u8>, CapError> {
    let shown = printable(path);
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == ErrorKind::NotFound && !preopened(Path::new(path)) {
            CapError::Denied(format!(
                "path {shown} is not inside a directory the runtime preopened"
            ))
        } else {
            file_error(&shown, &e)
        }
    })?;
    let meta = file.metadata().map_err(|e| file_error(&shown, &e))?;
    if meta.is_dir() {
        return Err(CapError::IsDirectory(format!("{shown} is a directory")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| file_error(&shown, &e))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(CapError::TooLarge(format!(
            "{shown} is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    Ok(bytes)
}

/// Whether a preopened directory covers `path`: the runtime resolves a path
/// only under its preopens, so when none of its ancestors can be seen
/// either, the path is outside every grant (rather than missing).
fn preopened(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            }
        })
        .any(|dir| std::fs::metadata(dir).is_ok())
}

fn file_error(shown: &str, e: &std::io::Error) -> CapError {
    match e.kind() {
        ErrorKind::NotFound => CapError::NotFound(format!("{shown} does not exist")),
        ErrorKind::IsADirectory => CapError::IsDirectory(format!("{shown} is a directory")),
        ErrorKind::PermissionDenied => {
            CapError::Denied(format!("the runtime does not allow reading {shown}"))
        }
        kind => CapError::Failed(format!("reading {shown} failed: {kind}")),
    }
}

/// Reads a variable the runtime passed; any other reads as unset.
pub fn get_env(name: &str) -> Result<Option<String>, CapError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(CapError::Failed(format!(
            "environment variable {} is not valid UTF-8",
            printable(name)
        ))),
    }
}

/// Sends one request through `wasi:http` and reads the whole response, up
/// to [`MAX_BODY_BYTES`]. Error details name the origin only: the URL may
/// hold expanded secrets.
pub fn http_fetch(request: HttpRequest) -> Result<HttpResponse, CapError> {
    let origin = origin(&request.url)
        .ok_or_else(|| CapError::Failed("the URL is not a valid http or https URL".into()))?;
    let method = match request.method.as_str() {
        "GET" => waki::Method::Get,
        "POST" => waki::Method::Post,
        other => {
            return Err(CapError::Failed(format!(
                "method {} is not supported",
                printable(other)
            )));
        }
    };
    let mut builder = waki::Client::new()
        .request(method, &request.url)
        .connect_timeout(CONNECT_TIMEOUT);
    for header in &request.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            CapError::Failed(format!(
                "header name {} is not valid",
                printable(&header.name)
            ))
        })?;
        // The value is never shown: it may hold an expanded secret.
        let value = HeaderValue::from_str(&header.value)
            .map_err(|_| CapError::Failed(format!("the value of header {name} is not valid")))?;
        builder = builder.header(name, value);
    }
    if !request.body.is_empty() {
        // Sent chunked, without `content-length`: with a sized body, waki
        // 0.5.1 checks the stream once more after the last byte, and fails
        // with `StreamError::Closed` whenever the runtime has already
        // finished sending it (a race, seen in wasmtime 48).
        builder = builder.body(request.body);
    }
    let response = builder.send().map_err(|e| transport_error(&e, &origin))?;
    let status = response.status_code();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk(64 * 1024)
        .map_err(|e| transport_error(&e, &origin))?
    {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > MAX_BODY_BYTES {
            return Err(CapError::TooLarge(format!(
                "the response body from {origin} exceeds {MAX_BODY_BYTES} bytes"
            )));
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A transport failure as a capability error. Never uses a free-form error
/// text, which can quote the URL (and so an expanded secret).
fn transport_error(error: &anyhow::Error, origin: &str) -> CapError {
    use waki::ErrorCode as E;
    let Some(code) = error.downcast_ref::<E>() else {
        return CapError::Failed(format!("the request to {origin} failed: {error:#}"));
    };
    match code {
        E::DnsTimeout
        | E::ConnectionTimeout
        | E::ConnectionReadTimeout
        | E::ConnectionWriteTimeout
        | E::HttpResponseTimeout => CapError::Timeout(format!("{origin} did not answer in time")),
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
        _ => CapError::Failed(format!("the request to {origin} failed ({code:?})")),
    }
}

/// `scheme://host[:port]` of an absolute http or https URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    // User information is never shown.
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// `text` quoted and escaped, at most 200 characters.
fn printable(text: &str) -> String {
    let escaped: String = text
        .chars()
        .flat_map(char::escape_debug)
        .take(200)
        .collect();
    format!("`{escaped}`")
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origin_keeps_scheme_host_and_port_only() {
        assert_eq!(
            origin("http://127.0.0.1:8080/token?secret=x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://user:pw@example.com#frag").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin("ftp://example.com"), None);
        assert_eq!(origin("not a url"), None);
    }
}
