//! The access token as the host hands it out, with redacted `Debug`.

use std::fmt;
use std::sync::Arc;

/// A secret string. `Debug` prints `[redacted]`; there is no `Display`.
/// Cloning it is cheap (shared, immutable).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: &str) -> Secret {
        Secret(Arc::from(value))
    }

    /// The secret itself, for the one place it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A short-lived Anthropic access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token: send it as `Authorization: Bearer <token>`.
    pub token: Secret,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Expiry, in Unix seconds.
    pub expires_at: u64,
    /// Until when (Unix seconds) the token is served without asking the
    /// component again.
    pub refresh_after: u64,
    /// By when (Unix seconds) the component must be asked again: the start
    /// of the mandatory window. The host spreads its calls between
    /// `refresh_after` and this (see [`crate::spread`]).
    pub refresh_by: u64,
    /// When the token was issued, in Unix seconds.
    pub issued_at: u64,
    /// The fingerprint of the identity assertion the token was exchanged
    /// for.
    pub assertion: AssertionFingerprint,
}

/// The SHA-256 of an identity assertion, as the component reports it: it
/// tells assertions apart and cannot be turned back into one. Kept as its 64
/// lowercase hex digits, the form the component and the token cache use, so
/// that comparing it with the component's answer needs no decoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AssertionFingerprint([u8; 64]);

impl AssertionFingerprint {
    /// Reads 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<AssertionFingerprint> {
        let digits: [u8; 64] = hex.as_bytes().try_into().ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        Some(AssertionFingerprint(
            digits.map(|digit| digit.to_ascii_lowercase()),
        ))
    }

    /// The 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored: the conversion cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// 64 lowercase hex digits.
impl fmt::Display for AssertionFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AssertionFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssertionFingerprint({self})")
    }
}

/// Whether `s` is an RFC 6750 `b64token`, the only shape a bearer token may
/// have: `[A-Za-z0-9-._~+/]+=*`. Anything else (a quote, a space, a newline)
/// could break out of the header or shell line the token is put in.
pub fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The `anthropic-beta` value that API calls made with the token must
/// include.
pub const OAUTH_BETA: &str = "oauth-2025-04-20";

impl AccessToken {
    /// Whether the token is an RFC 6750 `b64token`
    /// (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`), the
    /// only form the component hands out. A token read from elsewhere (a
    /// cache file, another component) is checked again before it is printed,
    /// so that no quote, white space, line break or control character of it
    /// can reach a shell or a terminal.
    pub fn is_b64token(&self) -> bool {
        is_b64token(self.token.expose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_b64tokens_pass() {
        for good in ["sk-ant-oat01-abc_DEF.~+/", "a", "abc==", "x/y+z="] {
            assert!(is_b64token(good), "{good}");
        }
        for bad in [
            "",
            "==",
            "a=b",
            "sk-ant-x'; touch /tmp/INJECTED; echo '",
            "tok\nen",
            "tok en",
            "tök",
            "a\"b",
        ] {
            assert!(!is_b64token(bad), "{bad}");
        }
        let token = |value: &str| AccessToken {
            token: Secret::new(value),
            token_type: "Bearer",
            expires_at: 2,
            refresh_after: 1,
            refresh_by: 1,
            issued_at: 0,
            assertion: AssertionFingerprint::from_hex(&"ab".repeat(32)).unwrap(),
        };
        for good in ["sk-ant-oat01-Ab_9~+/.x", "abc==", "a"] {
            assert!(token(good).is_b64token(), "{good:?}");
        }
        for bad in [
            "",
            "=",
            "a=b",
            "x'; touch INJECTED; echo '",
            "a\nb",
            "a b",
            "a\u{1b}",
        ] {
            assert!(!token(bad).is_b64token(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_prints_the_token() {
        let token = AccessToken {
            token: Secret::new("sk-ant-oat01-top-secret"),
            token_type: "Bearer",
            expires_at: 2,
            refresh_after: 1,
            refresh_by: 1,
            issued_at: 0,
            assertion: AssertionFingerprint::from_hex(&"ab".repeat(32)).unwrap(),
        };
        let shown = format!("{token:?} {token:#?}");
        assert!(!shown.contains("top-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn a_fingerprint_round_trips_through_hex_and_nothing_else_parses() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let fingerprint = AssertionFingerprint::from_hex(hex).unwrap();
        assert_eq!(fingerprint.to_string(), hex);
        let upper = AssertionFingerprint::from_hex(&hex.to_uppercase()).unwrap();
        assert_eq!(upper, fingerprint);
        assert_eq!(upper.as_str(), hex);
        for bad in ["", "ab", &"+a".repeat(32), &"g".repeat(64), &"é".repeat(32)] {
            assert_eq!(AssertionFingerprint::from_hex(bad), None, "{bad}");
        }
    }
}
