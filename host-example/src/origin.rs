//! An HTTP origin: scheme, host and port.

/// An HTTP origin, as the policy grants it and requests are checked
/// against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, as the URL parser serializes it (lower case, IPv6 in
    /// brackets).
    pub host: String,
    /// The port, default ports included.
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = if self.scheme == "https" { 443 } else { 80 };
        if self.port == default {
            write!(f, "{}://{}", self.scheme, self.host)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

impl Origin {
    /// The origin of a parsed URL; `None` for schemes other than http(s) or
    /// URLs without a host.
    pub fn of(url: &url::Url) -> Option<Origin> {
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin {
            scheme: scheme.to_string(),
            host: url.host_str()?.to_string(),
            port: url.port_or_known_default()?,
        })
    }

    /// Whether plain http is acceptable for this host: local hosts
    /// (loopback and link-local, where cloud metadata endpoints live) only,
    /// as [`crate::local_host`] says.
    pub fn allows_plain_http(&self) -> bool {
        crate::local_host::is_local(&self.host)
    }
}
