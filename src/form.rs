//! Percent-encoding for request bodies and signatures.
//!
//! One encoder serves SigV4 (`UriEncode`: every byte but the RFC 3986
//! unreserved characters as `%XX`, upper-case hex) and
//! `application/x-www-form-urlencoded` bodies and credentials (RFC 6749
//! 2.3.1), where encoding a space as `%20` instead of `+` decodes the same.

/// `text` with every byte outside `A-Z a-z 0-9 - . _ ~` written `%XX`.
pub(crate) fn encode(text: &str) -> String {
    encode_except(text, b"")
}

/// As [`encode`], also keeping the bytes of `keep` as they are (`/` for a
/// SigV4 canonical path).
pub(crate) fn encode_except(text: &str, keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// A form body: `name=value` pairs, encoded, joined with `&`.
pub(crate) fn body(pairs: &[(&str, &str)]) -> String {
    crate::text::join(
        pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value))),
        "&",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(encode("a b+c/d=é"), "a%20b%2Bc%2Fd%3D%C3%A9");
        assert_eq!(encode_except("/a b/", b"/"), "/a%20b/");
        assert_eq!(
            body(&[("Audience.member.1", "https://x"), ("k", "")]),
            "Audience.member.1=https%3A%2F%2Fx&k="
        );
    }
}
