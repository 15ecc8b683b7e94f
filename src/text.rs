//! Bounded, printable snippets of untrusted text for error messages.

/// The longest snippet of a body or of stderr put into an error, in bytes.
pub(crate) const SNIPPET_BYTES: usize = 300;

/// Up to `max` bytes of `bytes` as text: invalid UTF-8 replaced, cut on a
/// character boundary, control characters shown as spaces, and every
/// occurrence of each `secrets` entry replaced by `[redacted]`. An ellipsis
/// marks a cut.
pub(crate) fn snippet(bytes: &[u8], max: usize, secrets: &[&str]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let text = text.trim();
    let mut out = String::with_capacity(text.len().min(max) + 3);
    for c in text.chars() {
        if out.len() + c.len_utf8() > max {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary() {
        let s = snippet("ééééé".as_bytes(), 5, &[]);
        assert_eq!(s, "éé…");
    }

    #[test]
    fn replaces_invalid_utf8_and_controls() {
        assert_eq!(snippet(b"a\xffb\nc", 100, &[]), "a\u{fffd}b c");
    }

    #[test]
    fn redacts_secrets() {
        assert_eq!(
            snippet(b"got eyJabc back", 100, &["eyJabc"]),
            "got [redacted] back"
        );
    }
}
