//! Origins (`scheme://host[:port]`) of the URLs the component fetches.

/// The origin of an absolute `http` or `https` URL, scheme and host in lower
/// case and the default port removed; an error says what is wrong.
pub(crate) fn origin(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "is not an absolute URL; write `https://host/path`".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        other => return Err(format!("has scheme `{other}`; use `https`")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if authority.contains('@') {
        return Err("contains user information (`user@`); remove it".into());
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("has white space or a control character in its host".into());
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_port(&authority)?;
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn split_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    let (host, port) = if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[..end + 2];
        match &authority[end + 2..] {
            "" => (host, None),
            rest => (
                host,
                Some(rest.strip_prefix(':').ok_or("has a malformed IPv6 host")?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    match port {
        Some(p) if p.parse::<u16>().is_err() => Err(format!("has an invalid port `{p}`")),
        _ => Ok((host, port)),
    }
}

/// Whether the origin's host is a loopback name or address.
pub(crate) fn is_loopback(origin: &str) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let host = split_port(authority).map_or("", |(h, _)| h);
    host == "localhost" || host == "[::1]" || host == "127.0.0.1"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_default_ports() {
        assert_eq!(
            origin("HTTPS://API.Anthropic.com:443/v1?x").unwrap(),
            "https://api.anthropic.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/t").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("http://[::1]:80").unwrap(), "http://[::1]");
        assert_eq!(origin("http://[::1]:9/x").unwrap(), "http://[::1]:9");
    }

    #[test]
    fn rejects_what_is_not_a_plain_http_origin() {
        assert!(
            origin("api.anthropic.com")
                .unwrap_err()
                .contains("absolute")
        );
        assert!(origin("ftp://x").unwrap_err().contains("scheme"));
        assert!(origin("https://a@b").unwrap_err().contains("user"));
        assert!(origin("https:///x").unwrap_err().contains("no host"));
        assert!(origin("https://h:99999").unwrap_err().contains("port"));
        assert!(origin("https://[::1]x").unwrap_err().contains("IPv6"));
        for spaced in [
            "https://h /",
            "https://h\t:1",
            "https://h\u{a0}",
            "https:// /x",
        ] {
            assert!(
                origin(spaced).unwrap_err().contains("white space"),
                "{spaced:?}"
            );
        }
    }

    #[test]
    fn knows_loopback_hosts() {
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://127.0.0.1"));
        assert!(is_loopback("http://[::1]:5"));
        assert!(!is_loopback("http://127.0.0.1.evil.test"));
        assert!(!is_loopback("http://localhost.evil.test"));
    }
}
