//! The access token, with a redacted `Debug` output.

use crate::fingerprint::Fingerprint;
use crate::secret::Secret;

/// A short-lived Anthropic access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// The token type, always `Bearer`.
    pub token_type: String,
    /// Expiry, in Unix seconds.
    pub expires_at: u64,
    /// Until when (Unix seconds) the caller may serve this token without
    /// asking again.
    pub refresh_after: u64,
    /// By when (Unix seconds) the caller must ask again: the start of the
    /// mandatory window.
    pub refresh_by: u64,
    /// When the token was issued, in Unix seconds.
    pub issued_at: u64,
    /// The fingerprint of the assertion the token was exchanged for.
    pub assertion: Fingerprint,
}

/// Whether `token` is an RFC 6750 `b64token`:
/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Only such tokens are handed out, so that no character of a token can
/// mean something to a shell, a header or a terminal (quotes, `;`, `$`,
/// white space, line breaks, control characters).
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64token_alphabet() {
        for good in ["sk-ant-oat01-Ab_9~+/.x", "a", "abc==", "A-b.c_d~e+f/g="] {
            assert!(is_b64token(good), "{good:?}");
        }
        for bad in [
            "",
            "==",
            "a=b",
            "sk-ant-x'; touch INJECTED; echo '",
            "sk-ant-x\nexport A=1",
            "a b",
            "a\tb",
            "a\u{7f}",
            "a$b",
            "a\"b",
            "sk-ant-é",
            "a\0",
        ] {
            assert!(!is_b64token(bad), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_prints_the_token() {
        let token = AccessToken {
            token: Secret::new("sk-ant-oat01-very-secret"),
            token_type: "Bearer".into(),
            expires_at: 10,
            refresh_after: 5,
            refresh_by: 8,
            issued_at: 0,
            assertion: Fingerprint::of(&Secret::new("eyJ.assertion")),
        };
        let printed = format!("{token:?} {token:#?}");
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
        assert_eq!(token.token.expose(), "sk-ant-oat01-very-secret");
    }
}
