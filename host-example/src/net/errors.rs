//! Network failures in words that say what happened and what to do.
//!
//! Never uses a transport error's own text, which can quote the URL (and so
//! an expanded secret); never shows a proxy's credentials.

use std::io::ErrorKind;
use std::time::Duration;

use rustls::CertificateError;

use super::proxy::{ProxyUrl, Route};
use crate::origin::Origin;

/// What kind of failure, for the capability's error variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No complete answer in time.
    Timeout,
    /// An answer over a cap.
    TooLarge,
    /// Anything else.
    Failed,
}

/// A failure explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// Its kind.
    pub kind: FailureKind,
    /// The message: what happened and what to do.
    pub message: String,
}

fn failed(message: String) -> Explained {
    Explained {
        kind: FailureKind::Failed,
        message,
    }
}

/// A TLS failure with an `https://` proxy (not with the destination), as a
/// connector reports it inside an I/O error (`std::io::Error::other`), so
/// that [`explain`] names the proxy.
#[derive(Debug)]
pub struct ProxyTlsFailure(pub rustls::Error);

impl std::fmt::Display for ProxyTlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS with the proxy failed: {}", self.0)
    }
}

impl std::error::Error for ProxyTlsFailure {}

/// Explains a certificate or handshake failure with `host`.
pub fn explain_tls(error: &rustls::Error, host: &str) -> String {
    match error {
        rustls::Error::InvalidCertificate(problem) => match problem {
            CertificateError::UnknownIssuer => format!(
                "TLS: the certificate of {host} is signed by an unknown certificate authority (unknown issuer). \
                 On a network with a TLS-inspecting proxy (the usual cause) trust that proxy's CA: \
                 set SSL_CERT_FILE to a PEM bundle that includes it, or add it to the policy's [http] ca_files"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "TLS: the certificate presented by {host} is not valid for the name {host} (name mismatch)"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!(
                    "TLS: the certificate of {host} has expired (or this machine's clock is wrong)"
                )
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "TLS: the certificate of {host} is not valid yet (or this machine's clock is wrong)"
            ),
            CertificateError::Revoked => format!("TLS: the certificate of {host} is revoked"),
            other => format!("TLS: the certificate of {host} was rejected ({other:?})"),
        },
        rustls::Error::General(message) => format!("TLS setup failed: {message}"),
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// Explains a proxy's refusal of `CONNECT` with `status`.
pub fn explain_connect_refusal(status: u16, proxy: &ProxyUrl, origin: &Origin) -> String {
    match status {
        407 if proxy.has_credentials() => format!(
            "proxy {proxy} refused the tunnel to {origin}: 407 Proxy Authentication Required (its credentials were not accepted)"
        ),
        407 => format!(
            "proxy {proxy} refused the tunnel to {origin}: 407 Proxy Authentication Required; put credentials in the proxy URL, e.g. http://user:password@host:port"
        ),
        403 => format!(
            "proxy {proxy} refused the tunnel to {origin}: 403 Forbidden (the proxy's rules do not allow this destination)"
        ),
        other => format!("proxy {proxy} refused the tunnel to {origin} with status {other}"),
    }
}

/// The error inside an I/O error from rustls, as a ureq error, so that
/// [`explain`] can explain it.
pub fn unwrap_rustls(error: std::io::Error) -> ureq::Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ureq::Error::Rustls(tls.clone()),
        None => ureq::Error::Io(error),
    }
}

/// Whether an I/O failure of this kind may pass on a retry: a timeout, an
/// interruption, a peer or network that refused or dropped the connection,
/// an address still in use. Anything else (a missing file, a permission, an
/// invalid input) needs a change first.
pub fn is_transient_io(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::TimedOut
            | ErrorKind::WouldBlock
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
            | ErrorKind::BrokenPipe
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::NetworkDown
            | ErrorKind::AddrInUse
            | ErrorKind::AddrNotAvailable
            | ErrorKind::ResourceBusy
            | ErrorKind::UnexpectedEof
    )
}

/// Explains a failed request to `origin`, sent by `route`.
pub fn explain(
    error: &ureq::Error,
    origin: &Origin,
    route: &Route,
    timeout: Duration,
) -> Explained {
    let proxy = match route {
        Route::Proxy { proxy, .. } => Some(proxy),
        Route::Direct(_) => None,
    };
    let timed_out = || Explained {
        kind: FailureKind::Timeout,
        message: format!("no complete answer within {timeout:?}"),
    };
    match error {
        ureq::Error::Timeout(ureq::Timeout::Resolve) => Explained {
            kind: FailureKind::Timeout,
            message: match proxy {
                Some(proxy) => format!(
                    "DNS: no answer for the proxy host {} within {timeout:?} (proxy {proxy})",
                    proxy.host()
                ),
                None => format!(
                    "DNS: no answer for the host {} within {timeout:?}",
                    origin.host
                ),
            },
        },
        ureq::Error::Timeout(_) => timed_out(),
        ureq::Error::Io(e)
            if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock =>
        {
            timed_out()
        }
        ureq::Error::BodyExceedsLimit(limit) => Explained {
            kind: FailureKind::TooLarge,
            message: format!("the response body exceeds {limit} bytes"),
        },
        ureq::Error::LargeResponseHeader(..) => Explained {
            kind: FailureKind::TooLarge,
            message: "the response headers are too large".into(),
        },
        ureq::Error::Rustls(tls) => failed(explain_tls(tls, &origin.host)),
        ureq::Error::Io(e) if e.get_ref().is_some_and(|i| i.is::<ProxyTlsFailure>()) => {
            let tls = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<ProxyTlsFailure>());
            match (tls, proxy) {
                (Some(ProxyTlsFailure(tls)), Some(proxy)) => {
                    failed(format!("proxy {proxy}: {}", explain_tls(tls, proxy.host())))
                }
                _ => failed("TLS with the proxy failed".into()),
            }
        }
        ureq::Error::Io(e) if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
            match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(tls) => failed(explain_tls(tls, &origin.host)),
                None => failed(format!("I/O error: {}", e.kind())),
            }
        }
        ureq::Error::ConnectProxyFailed(reason) => match (proxy, connect_status(reason)) {
            (Some(proxy), Some(status)) => failed(explain_connect_refusal(status, proxy, origin)),
            (Some(proxy), None) => failed(format!(
                "proxy {proxy} did not open a tunnel to {origin} (no valid answer to CONNECT)"
            )),
            (None, _) => failed("the proxy did not open a tunnel".into()),
        },
        ureq::Error::HostNotFound => match proxy {
            Some(proxy) => failed(format!(
                "DNS: the proxy host {} was not found (proxy {proxy})",
                proxy.host()
            )),
            None => failed(format!("DNS: the host {} was not found", origin.host)),
        },
        ureq::Error::ConnectionFailed | ureq::Error::Io(_) if is_connect_failure(error) => {
            match proxy {
                Some(proxy) => failed(format!("proxy {proxy} is unreachable ({})", io_kind(error))),
                None => failed(format!("cannot connect to {origin} ({})", io_kind(error))),
            }
        }
        ureq::Error::Io(e) => failed(format!("I/O error: {}", e.kind())),
        ureq::Error::Tls(what) => failed(format!("TLS error with {}: {what}", origin.host)),
        ureq::Error::Protocol(_) => failed("the server broke the HTTP protocol".into()),
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => {
            failed("the request is not valid HTTP".into())
        }
        ureq::Error::Decompress(encoding, _) => failed(format!(
            "the response body is not valid {encoding} (content-encoding)"
        )),
        _ => failed("the request failed".into()),
    }
}

/// The status in ureq's "proxy server responded 407/…" reason.
fn connect_status(reason: &str) -> Option<u16> {
    let rest = reason.strip_prefix("proxy server responded ")?;
    rest.split('/').next()?.trim().parse().ok()
}

fn is_connect_failure(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::HostUnreachable
                | ErrorKind::NetworkUnreachable
                | ErrorKind::AddrNotAvailable
        ),
        _ => false,
    }
}

fn io_kind(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Io(e) => e.kind().to_string(),
        _ => "connection failed".into(),
    }
}

#[cfg(test)]
mod tests;
