//! Proxy selection as curl does it, per request.
//!
//! For `https` URLs `https_proxy` then `HTTPS_PROXY`; for `http` URLs
//! `http_proxy` only (never `HTTP_PROXY`, which a CGI server sets from a
//! request header); then `all_proxy`, `ALL_PROXY`. `no_proxy` (or
//! `NO_PROXY`) lists destinations reached directly. Local destinations
//! (loopback and link-local, as [`crate::local_host`] says) are never
//! proxied. The policy decides whether the environment is read at all
//! (`[http] proxy`).

use std::fmt;
use std::net::IpAddr;

use crate::local_host;
use crate::origin::Origin;

/// A proxy URL. Its credentials are never displayed: [`fmt::Display`] and
/// [`fmt::Debug`] show `scheme://host:port` only.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    url: url::Url,
}

/// Schemes a proxy URL may have.
pub const PROXY_SCHEMES: [&str; 4] = ["http", "https", "socks5", "socks5h"];

impl ProxyUrl {
    /// Parses a proxy URL. A URL without a scheme is `http://`, as curl
    /// reads it. The error never quotes the URL (it can hold a password).
    pub fn parse(text: &str) -> Result<ProxyUrl, ProxyUrlError> {
        let text = text.trim();
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("http://{text}")
        };
        let url = url::Url::parse(&with_scheme).map_err(ProxyUrlError::Invalid)?;
        if !PROXY_SCHEMES.contains(&url.scheme()) {
            return Err(ProxyUrlError::Scheme {
                scheme: url.scheme().to_string(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ProxyUrlError::NoHost);
        }
        if (url.path() != "/" && !url.path().is_empty()) || url.query().is_some() {
            return Err(ProxyUrlError::PathOrQuery);
        }
        Ok(ProxyUrl { url })
    }

    /// The scheme: `http`, `https`, `socks5` or `socks5h`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port, defaulting as curl does (1080 for SOCKS, 80/443 for HTTP).
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(match self.scheme() {
            "https" => 443,
            "http" => 80,
            _ => 1080,
        })
    }

    /// Whether the URL carries a user name or password.
    pub fn has_credentials(&self) -> bool {
        !self.url.username().is_empty() || self.url.password().is_some()
    }

    /// The percent-decoded user name and password (a missing password is
    /// empty), for a SOCKS5 proxy's authentication; `None` without
    /// credentials. Never log them.
    pub fn credentials(&self) -> Option<(String, String)> {
        if !self.has_credentials() {
            return None;
        }
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8_lossy()
                .into_owned()
        };
        Some((
            decode(self.url.username()),
            decode(self.url.password().unwrap_or_default()),
        ))
    }

    /// The value of `Proxy-Authorization: Basic`: the percent-decoded
    /// `user:password`, base64; `None` without credentials. Never log it.
    pub fn basic_credentials(&self) -> Option<String> {
        use base64::Engine;
        let (user, password) = self.credentials()?;
        Some(base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    }

    /// The whole URL, credentials included (percent-encoded), for the HTTP
    /// client only. Never log or display it.
    pub(crate) fn expose(&self) -> String {
        let mut url = self.url.clone();
        if url.port().is_none() {
            let _ = url.set_port(Some(self.port()));
        }
        url.as_str().trim_end_matches('/').to_string()
    }
}

/// Why a text is not a proxy URL. The message is the predicate of a
/// sentence whose subject (the variable or the policy key) the caller
/// names; it never quotes the URL, which can hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// The URL parser refuses it.
    #[error("is not a valid proxy URL ({0})")]
    Invalid(#[source] url::ParseError),
    /// A scheme other than [`PROXY_SCHEMES`].
    #[error("has scheme `{scheme}`; a proxy is `http://`, `https://`, `socks5://` or `socks5h://`")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// No host.
    #[error("has no host; write e.g. `http://proxy.example.com:3128`")]
    NoHost,
    /// A path or a query after the host.
    #[error("has a path or query; a proxy is `scheme://[user:password@]host:port`")]
    PathOrQuery,
}

impl ProxyUrlError {
    /// Whether a retry may help: never, a proxy URL is configuration.
    pub fn is_transient(&self) -> bool {
        false
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme(), self.host(), self.port())
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self}")?;
        if self.has_credentials() {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

/// What the policy says about proxies (`[http] proxy`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProxySetting {
    /// `"env"`: the host process's proxy variables decide (the default).
    #[default]
    Env,
    /// `"none"`: always connect directly.
    None,
    /// A URL: every destination but loopback and link-local goes through
    /// this proxy; the environment is not read.
    Pinned(ProxyUrl),
}

/// The proxy variables of the host process, read once.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    /// `(name, value)` of each proxy variable that is set, in the order
    /// they are consulted.
    vars: Vec<(&'static str, String)>,
}

/// The variables read, in the order curl consults them.
pub const PROXY_VARIABLES: [&str; 7] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.vars.iter().map(|(name, _)| *name).collect();
        f.debug_struct("ProxyEnv").field("set", &names).finish()
    }
}

impl ProxyEnv {
    /// The proxy variables of this process.
    pub fn from_process() -> ProxyEnv {
        ProxyEnv::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxy variables as `lookup` gives them.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        ProxyEnv {
            vars: PROXY_VARIABLES
                .iter()
                .filter_map(|name| Some((*name, lookup(name)?)))
                .filter(|(_, value)| !value.trim().is_empty())
                .collect(),
        }
    }

    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|wanted| {
            self.vars
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(name, value)| (*name, value.as_str()))
        })
    }
}

/// How one request is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Straight to the destination, and why.
    Direct(String),
    /// Through a proxy; `source` says where it was configured.
    Proxy {
        /// The proxy.
        proxy: ProxyUrl,
        /// The variable or policy key that named it.
        source: &'static str,
    },
}

/// Why a route could not be chosen: a proxy variable is not a valid proxy
/// URL. Names the variable, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("proxy variable {variable} {problem}")]
pub struct RouteError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong.
    #[source]
    pub problem: ProxyUrlError,
}

impl RouteError {
    /// Whether a retry may help: never, the variable must be fixed.
    pub fn is_transient(&self) -> bool {
        self.problem.is_transient()
    }
}

/// Chooses the route to `destination` under `setting`, with the
/// environment `env`.
pub fn select(
    setting: &ProxySetting,
    env: &ProxyEnv,
    destination: &Origin,
) -> Result<Route, RouteError> {
    if local_host::is_local(&destination.host) {
        return Ok(Route::Direct(
            "loopback and link-local destinations are never proxied".into(),
        ));
    }
    match setting {
        ProxySetting::None => Ok(Route::Direct(
            "the policy sets http.proxy = \"none\"".into(),
        )),
        ProxySetting::Pinned(proxy) => Ok(Route::Proxy {
            proxy: proxy.clone(),
            source: "http.proxy (policy)",
        }),
        ProxySetting::Env => from_env(env, destination),
    }
}

fn from_env(env: &ProxyEnv, destination: &Origin) -> Result<Route, RouteError> {
    let names: &[&'static str] = if destination.scheme == "https" {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    };
    let Some((variable, value)) = env.first(names) else {
        return Ok(Route::Direct(format!(
            "none of {} is set",
            names.join(", ")
        )));
    };
    if let Some((list_name, list)) = env.first(&["no_proxy", "NO_PROXY"])
        && let Some(entry) = no_proxy_match(list, destination)
    {
        return Ok(Route::Direct(format!(
            "{list_name} entry `{entry}` matches"
        )));
    }
    let proxy = ProxyUrl::parse(value).map_err(|problem| RouteError { variable, problem })?;
    Ok(Route::Proxy {
        proxy,
        source: variable,
    })
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The first entry of a `no_proxy` list that matches `destination`, as
/// written (trimmed).
pub fn no_proxy_match<'a>(list: &'a str, destination: &Origin) -> Option<&'a str> {
    let host = destination.host.to_ascii_lowercase();
    let host_ip = parse_ip(&host);
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .find(|entry| entry_matches(entry, &host, host_ip, destination.port))
}

fn entry_matches(entry: &str, host: &str, host_ip: Option<IpAddr>, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let entry = entry.to_ascii_lowercase();
    let (pattern, wanted_port) = split_port(&entry);
    if wanted_port.is_some_and(|wanted| wanted != port) {
        return false;
    }
    if let Some((network, bits)) = pattern.split_once('/') {
        return match (host_ip, parse_ip(network), bits.parse::<u8>()) {
            (Some(ip), Some(network), Ok(bits)) => in_cidr(ip, network, bits),
            _ => false,
        };
    }
    if let Some(pattern_ip) = parse_ip(pattern) {
        return host_ip == Some(pattern_ip);
    }
    let domain = pattern.trim_start_matches('.');
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// Splits an optional `:port` off a `no_proxy` entry (`[v6]:port` too; a
/// bare IPv6 address has no port).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[')
        && let Some((address, after)) = rest.split_once(']')
    {
        return (
            address,
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match entry.rsplit_once(':') {
        Some((pattern, port)) if !pattern.contains(':') => match port.parse() {
            Ok(port) => (pattern, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, network: IpAddr, bits: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
