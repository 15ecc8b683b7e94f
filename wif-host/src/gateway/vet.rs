//! The checks every request passes before it is authenticated and before
//! anything goes upstream: the method, the `Host` (against DNS
//! rebinding), the browser headers (against web pages), and the target.

use hyper::header::{HOST, HeaderMap, ORIGIN};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};

use super::Failure;

/// The header browsers send on every request they make.
const SEC_FETCH_SITE: &str = "sec-fetch-site";

/// What a request's `Host` must name: the socket the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A loopback TCP port: `127.0.0.1:PORT`, `localhost:PORT` or
    /// `[::1]:PORT`.
    Tcp {
        /// The bound port.
        port: u16,
    },
    /// A Unix socket: `localhost`.
    Unix,
}

impl Served {
    /// Whether `host` (a `Host` value) names this socket.
    fn admits_host(self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            Served::Unix => host == "localhost",
            Served::Tcp { port } => {
                let (name, given_port) = match host.rsplit_once(':') {
                    Some((name, port)) if !name.is_empty() && !port.contains(']') => (
                        name,
                        port.bytes()
                            .all(|b| b.is_ascii_digit())
                            .then(|| port.parse::<u16>().ok())
                            .flatten(),
                    ),
                    _ => (host.as_str(), Some(80)),
                };
                given_port == Some(port) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
            }
        }
    }
}

/// Refuses what the gateway never serves, in this order: a method other
/// than GET, POST or DELETE (405), a `Host` that is not the gateway
/// (421), a request from a web page (403), a target that is not a clean
/// origin-form path (400), or a path outside `/v1/` (404).
pub fn vet(parts: &Parts, served: Served) -> Result<(), Failure> {
    if !matches!(parts.method, Method::GET | Method::POST | Method::DELETE) {
        return Err(Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "the gateway serves GET, POST and DELETE only",
        ));
    }
    check_host(&parts.headers, served)?;
    check_not_from_a_page(&parts.headers)?;
    if parts.uri.scheme().is_some() || parts.uri.authority().is_some() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "the request target must be a path (origin-form)",
        ));
    }
    let path = parts.uri.path();
    check_path(path)?;
    if let Some(query) = parts.uri.query()
        && !query.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "the query is not printable ASCII",
        ));
    }
    if !path.starts_with("/v1/") {
        return Err(Failure::new(
            StatusCode::NOT_FOUND,
            "the gateway forwards /v1/* only",
        ));
    }
    Ok(())
}

/// One `Host`, naming the gateway's own socket; a page that rebinds a
/// name of its own to 127.0.0.1 sends that name.
fn check_host(headers: &HeaderMap, served: Served) -> Result<(), Failure> {
    let mut hosts = headers.get_all(HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        _ => None,
    };
    if host.is_some_and(|host| served.admits_host(host)) {
        return Ok(());
    }
    let expected = match served {
        Served::Tcp { port } => format!("127.0.0.1:{port}, localhost:{port} or [::1]:{port}"),
        Served::Unix => "localhost".to_string(),
    };
    Err(Failure::new(
        StatusCode::MISDIRECTED_REQUEST,
        &format!("the Host header must be {expected}"),
    ))
}

/// Browsers mark what pages send: `Origin` on cross-origin and most
/// same-origin requests, `Sec-Fetch-Site` on all of them. A client of the
/// API sends neither (or `Sec-Fetch-Site: none` / `same-origin`).
fn check_not_from_a_page(headers: &HeaderMap) -> Result<(), Failure> {
    let site_ok = headers.get_all(SEC_FETCH_SITE).iter().all(|site| {
        site.as_bytes().eq_ignore_ascii_case(b"none")
            || site.as_bytes().eq_ignore_ascii_case(b"same-origin")
    });
    if headers.contains_key(ORIGIN) || !site_ok {
        return Err(Failure::new(
            StatusCode::FORBIDDEN,
            "requests from web pages are refused",
        ));
    }
    Ok(())
}

/// A path of printable ASCII with no `\`, no `//`, no dot segment (`.`,
/// `..`, or either with `%2e` in any case) and no encoded `/` or `\`.
fn check_path(path: &str) -> Result<(), Failure> {
    let bad = |why: &str| Err(Failure::new(StatusCode::BAD_REQUEST, why));
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("the path must start with / and be printable ASCII");
    }
    if path.contains('\\') || path.contains("//") {
        return bad("the path holds a backslash or an empty segment");
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return bad("the path holds an encoded / or \\");
    }
    let dot_segment = lower
        .split('/')
        .map(|segment| segment.replace("%2e", "."))
        .any(|segment| segment == "." || segment == "..");
    if dot_segment {
        return bad("the path holds a dot segment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = hyper::Request::builder().method(method).uri(target);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    fn status(method: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
        match vet(&parts(method, target, headers), Served::Tcp { port: 8787 }) {
            Ok(()) => 200,
            Err(failure) => failure.status.as_u16(),
        }
    }

    const HOST_OK: (&str, &str) = ("host", "127.0.0.1:8787");

    #[test]
    fn only_the_gateways_own_host_is_served() {
        let tcp = Served::Tcp { port: 8787 };
        for good in [
            "127.0.0.1:8787",
            "localhost:8787",
            "LOCALHOST:8787",
            "[::1]:8787",
        ] {
            assert!(tcp.admits_host(good), "{good}");
        }
        for bad in [
            "rebind.evil.example:8787",
            "127.0.0.1:8788",
            "127.0.0.1",
            "localhost",
            "127.0.0.2:8787",
            "[::1]",
            "localhost.:8787",
            "localhost:+8787",
            ":8787",
            "",
        ] {
            assert!(!tcp.admits_host(bad), "{bad}");
        }
        let port_80 = Served::Tcp { port: 80 };
        assert!(port_80.admits_host("localhost") && port_80.admits_host("[::1]"));
        assert!(Served::Unix.admits_host("localhost"));
        assert!(!Served::Unix.admits_host("localhost:80"));
        assert_eq!(status("GET", "/v1/models", &[]), 421);
        assert_eq!(
            status("GET", "/v1/models", &[HOST_OK, ("host", "127.0.0.1:8787")]),
            421
        );
        assert_eq!(status("GET", "/v1/models", &[HOST_OK]), 200);
    }

    #[test]
    fn methods_other_than_get_post_delete_are_refused() {
        for method in ["OPTIONS", "PUT", "PATCH", "HEAD", "TRACE"] {
            assert_eq!(status(method, "/v1/models", &[HOST_OK]), 405, "{method}");
        }
        assert_eq!(status("CONNECT", "api.anthropic.com:443", &[HOST_OK]), 405);
        for method in ["GET", "POST", "DELETE"] {
            assert_eq!(status(method, "/v1/models", &[HOST_OK]), 200, "{method}");
        }
    }

    #[test]
    fn requests_from_web_pages_are_refused() {
        assert_eq!(
            status("POST", "/v1/messages", &[HOST_OK, ("origin", "null")]),
            403
        );
        assert_eq!(
            status(
                "POST",
                "/v1/messages",
                &[HOST_OK, ("sec-fetch-site", "cross-site")]
            ),
            403
        );
        assert_eq!(
            status(
                "POST",
                "/v1/messages",
                &[HOST_OK, ("sec-fetch-site", "same-site")]
            ),
            403
        );
        for fine in ["none", "same-origin"] {
            assert_eq!(
                status("POST", "/v1/messages", &[HOST_OK, ("sec-fetch-site", fine)]),
                200
            );
        }
    }

    #[test]
    fn unclean_targets_are_bad_requests() {
        for bad in [
            "/v1/../admin",
            "/v1/./messages",
            "/v1/%2e%2e/admin",
            "/v1/%2E./admin",
            "/v1/.%2E",
            "/v1/files%2fsecret",
            "/v1/files%2Fsecret",
            "/v1/files%5csecret",
            "/v1//messages",
            "//v1/messages",
            "http://127.0.0.1:8787/v1/messages",
        ] {
            assert_eq!(status("GET", bad, &[HOST_OK]), 400, "{bad}");
        }
        assert_eq!(status("GET", "/admin", &[HOST_OK]), 404);
        assert_eq!(status("GET", "/v1", &[HOST_OK]), 404);
        assert_eq!(
            status("GET", "/v1/models?limit=2&before_id=a.b", &[HOST_OK]),
            200
        );
        assert_eq!(status("GET", "/v1/files/file_..x", &[HOST_OK]), 200);
        assert!(check_path("/v1/a\\b").is_err());
    }
}
