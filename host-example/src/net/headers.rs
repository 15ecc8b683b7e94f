//! The host's one list of the headers that belong to a connection or to
//! the message framing rather than to a request: the gateway never forwards
//! them, and the `http-fetch` capability never takes them from a component.
//! (The component, a crate of its own, refuses the same names in a config
//! with its own copy of the list.)

/// The hop-by-hop headers (RFC 9110 §7.6.1, and the `Keep-Alive` and
/// `Proxy-Connection` of older clients): they concern one connection and
/// are never forwarded. Lower case.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` (lower case) is a hop-by-hop header.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// Whether `name` (lower case) is a header the HTTP client sets itself from
/// the URL, the body and the route: a hop-by-hop header, `Host` (one given
/// would send the request to another virtual host), `Content-Length` and
/// `Expect` (which could smuggle or stall the request), or any `Proxy-*`
/// header (which speaks to a proxy).
pub fn is_set_by_client(name: &str) -> bool {
    is_hop_by_hop(name)
        || matches!(name, "host" | "content-length" | "expect")
        || name.starts_with("proxy-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_set_by_the_client() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
            assert!(is_set_by_client(name), "{name}");
        }
    }

    #[test]
    fn framing_host_and_proxy_headers_are_set_by_the_client_only() {
        for name in ["host", "content-length", "expect", "proxy-anything"] {
            assert!(is_set_by_client(name), "{name}");
            assert!(!is_hop_by_hop(name), "{name}");
        }
        for name in ["authorization", "x-api-key", "content-type", "accept"] {
            assert!(!is_set_by_client(name), "{name}");
        }
    }
}
