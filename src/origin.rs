//! Origins (`scheme://host[:port]`) of the URLs the component fetches.

/// The origin of an absolute `http` or `https` URL, scheme and host in lower
/// case and the default port removed; an error says what is wrong.
///
/// The grammar is a strict subset of what the host's WHATWG URL parser
/// accepts, so that both always agree on the origin: whatever that parser
/// would read differently (`\` as `/`, white space and control characters
/// it strips, percent-encoded or non-ASCII host names it decodes, IPv4
/// addresses in other spellings, non-canonical IPv6 or port spellings) is
/// refused rather than guessed at.
pub(crate) fn origin(url: &str) -> Result<String, String> {
    check_characters(url)?;
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "is not an absolute URL; write `https://host/path`".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        other => return Err(format!("has scheme `{other}`; use `https`")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if authority.contains('@') {
        return Err("contains user information (`user@`); remove it".into());
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_port(&authority)?;
    check_host(host)?;
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Checks a `url` source as written: its whole [`origin`] when no `${VAR}`
/// reference stands in its scheme, host or port, otherwise only its
/// characters (the URL it expands to is checked in full before any fetch).
pub(crate) fn check_template(url: &str) -> Result<(), String> {
    let head_len = match url.split_once("://") {
        Some((scheme, rest)) => scheme.len() + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len()),
        None => url.len(),
    };
    if crate::expand::has_reference(&url[..head_len]) {
        check_characters(url)
    } else {
        origin(url).map(drop)
    }
}

/// Refuses the characters a WHATWG parser strips or reads as something
/// else anywhere in a URL.
fn check_characters(url: &str) -> Result<(), String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("has white space or a control character".into());
    }
    if url.contains('\\') {
        return Err("has a backslash (`\\`), which URL parsers read as `/`; use `/`".into());
    }
    if url.to_ascii_lowercase().contains("%00") {
        return Err("has an encoded NUL (`%00`)".into());
    }
    Ok(())
}

/// Accepts a host spelled the one way a WHATWG parser leaves it unchanged:
/// an IPv6 address in its canonical form, four decimal IPv4 numbers, or an
/// ASCII name of letters, digits, `-`, `_` and `.` that does not end in a
/// number and has no `xn--` (punycode) label.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<std::net::Ipv6Addr>() {
            Ok(address) if !inner.contains('.') && address.to_string() == inner => Ok(()),
            Ok(address) if !inner.contains('.') => Err(format!(
                "has the IPv6 address `{inner}` in a non-canonical form; write `[{address}]`"
            )),
            _ => Err("has a malformed IPv6 host; write it in hexadecimal, like `[::1]`".into()),
        };
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(
            "has a host with characters other than letters, digits, `-`, `_` and `.` \
             (nothing percent-encoded or non-ASCII)"
                .into(),
        );
    }
    if host.split('.').any(|label| label.starts_with("xn--")) {
        return Err(
            "has an internationalized (`xn--`) host name, which URL parsers decode and check; \
             such hosts are not supported"
                .into(),
        );
    }
    if ends_in_a_number(host) && !is_dotted_decimal_ipv4(host) {
        return Err("has a host that URL parsers read as an IPv4 address; \
             write it as four decimal numbers, like `127.0.0.1`"
            .into());
    }
    Ok(())
}

/// The WHATWG "ends in a number" check: a host whose last label (a single
/// trailing dot ignored) is decimal digits or `0x` and hex digits is parsed
/// as an IPv4 address.
fn ends_in_a_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let last = host.rsplit('.').next().unwrap_or_default();
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    last.strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Four decimal numbers from 0 to 255 without leading zeros, as a WHATWG
/// parser writes an IPv4 address.
fn is_dotted_decimal_ipv4(host: &str) -> bool {
    let parts: Vec<&str> = host.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 3
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'))
                && part.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
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
        None => Ok((host, None)),
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => match p.parse() {
            Ok(number) => Ok((host, Some(number))),
            Err(_) => Err(format!("has an invalid port `{p}`")),
        },
        Some(p) => Err(format!("has an invalid port `{p}`")),
    }
}

/// Whether the origin's host is a loopback name or address.
pub(crate) fn is_loopback(origin: &str) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let host = split_port(authority).map_or("", |(h, _)| h);
    host == "localhost" || host == "[::1]" || host == "127.0.0.1"
}

#[cfg(test)]
mod tests;
