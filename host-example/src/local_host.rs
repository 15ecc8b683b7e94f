//! The one rule for "this host is on this machine (or on its link)": plain
//! `http` may be granted to such a host ([`crate::origin::Origin::allows_plain_http`])
//! and requests to it never take a proxy ([`crate::net::proxy::select`]).
//!
//! A host is local when it is
//! - a loopback name: `localhost` or a name under it (`app.localhost`),
//!   which RFC 6761 §6.3 reserves for loopback, in any case, with or
//!   without a final dot;
//! - a loopback address: `127.0.0.0/8` or `::1`;
//! - a link-local address, where cloud metadata endpoints live:
//!   `169.254.0.0/16` or `fe80::/10`;
//! - an IPv4-mapped IPv6 address of either IPv4 kind (`::ffff:127.0.0.1`,
//!   `::ffff:169.254.169.254`), which reaches the same IPv4 host.
//!
//! Names are never resolved: any other name is not local, whatever it
//! resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `host` is local as the module says. `host` is as a URL
/// serializes it (an IPv6 address in brackets) or bare.
pub fn is_local(host: &str) -> bool {
    match ip_of(host) {
        Some(IpAddr::V4(ip)) => is_local_v4(ip),
        Some(IpAddr::V6(ip)) => is_local_v6(ip),
        None => is_loopback_name(host),
    }
}

/// Whether `name` is `localhost` or a name under it (RFC 6761 §6.3), in
/// any case, with or without a final dot.
pub fn is_loopback_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The IP address `host` writes, brackets or not.
fn ip_of(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_link_local()
}

fn is_local_v6(ip: Ipv6Addr) -> bool {
    ip.is_loopback()
        || (ip.segments()[0] & 0xffc0) == 0xfe80
        || ip.to_ipv4_mapped().is_some_and(is_local_v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_and_localhost_names_are_local() {
        for host in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "app.localhost",
            "a.b.Localhost.",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "[::1]",
            "::1",
            "[fe80::1]",
            "[febf::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:7f00:1]",
            "[::ffff:169.254.169.254]",
        ] {
            assert!(is_local(host), "{host}");
        }
    }

    #[test]
    fn everything_else_is_not_local() {
        for host in [
            "",
            "api.anthropic.com",
            "localhost.example.com",
            "notlocalhost",
            "localhost.evil",
            "xlocalhost",
            "10.0.0.1",
            "192.168.1.1",
            "128.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::2]",
            "[fec0::1]",
            "[::ffff:10.0.0.1]",
            "[::127.0.0.1]",
            "[2001:db8::1]",
            "[::1",
            "::1]",
        ] {
            assert!(!is_local(host), "{host}");
        }
    }

    #[test]
    fn loopback_names_are_localhost_and_below_it() {
        assert!(is_loopback_name("localhost"));
        assert!(is_loopback_name("x.LocalHost."));
        assert!(!is_loopback_name("localhost.."));
        assert!(!is_loopback_name("127.0.0.1"));
        assert!(!is_loopback_name("localhost.com"));
    }
}
