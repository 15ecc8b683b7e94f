//! The I/O the component is granted by its host.
//!
//! These types mirror the `capabilities` interface of `wit/federation.wit`.
//! The logic of this crate calls nothing else, so that natively it can be
//! driven by any implementation (tests use an in-memory one) and in
//! WebAssembly by the host's imports.

use std::fmt;

/// Why a capability call did not succeed, as reported by the host.
///
/// The detail string names the refused or failing item (path, variable,
/// origin, program) and never a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapError {
    /// The host's policy does not grant the item.
    Denied(String),
    /// The file or program does not exist.
    NotFound(String),
    /// The path names a directory where a file was expected.
    IsDirectory(String),
    /// The operation did not finish in time.
    Timeout(String),
    /// A body or an output exceeded the host's size cap.
    TooLarge(String),
    /// Any other failure.
    Failed(String),
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapError::Denied(d) => write!(f, "denied by the host's policy: {d}"),
            CapError::NotFound(d) => write!(f, "not found: {d}"),
            CapError::IsDirectory(d) => write!(f, "is a directory: {d}"),
            CapError::Timeout(d) => write!(f, "timed out: {d}"),
            CapError::TooLarge(d) => write!(f, "too large: {d}"),
            CapError::Failed(d) => write!(f, "{d}"),
        }
    }
}

/// One HTTP header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name; compared case-insensitively.
    pub name: String,
    /// Header value. May be a secret (an `Authorization` header), so
    /// `Debug` does not print it.
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [redacted]", self.name)
    }
}

/// An HTTP request for the host to send. Its URL, header values and body may
/// hold secrets, so it has no `Debug` implementation.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// Absolute URL, after `${VAR}` expansion.
    pub url: String,
    /// Request headers.
    pub headers: Vec<Header>,
    /// Request body.
    pub body: Vec<u8>,
}

/// The response the host received; 3xx included, as hosts follow no
/// redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<Header>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a finished command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code; `None` when a signal ended the process.
    pub exit_code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// The host's I/O, as the component sees it.
pub trait Capabilities {
    /// Reads a whole file.
    fn read_file(&self, path: &str) -> Result<Vec<u8>, CapError>;
    /// Reads an environment variable; `None` when unset.
    fn get_env(&self, name: &str) -> Result<Option<String>, CapError>;
    /// Sends a request and returns the response, whatever its status.
    fn http_fetch(&self, request: &HttpRequest) -> Result<HttpResponse, CapError>;
    /// Runs `argv` without a shell, for at most `timeout_ms` milliseconds.
    fn run_command(&self, argv: &[String], timeout_ms: u32) -> Result<CommandOutput, CapError>;
    /// The wall clock, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;
}
