//! The fingerprint of an identity assertion: its SHA-256, which tells two
//! assertions apart without revealing either.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The SHA-256 of a whole assertion, kept as its 64 lowercase hex digits:
/// the component returns them with every token, so they are written once,
/// when the assertion is read, not on every call.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 64]);

impl Fingerprint {
    /// The fingerprint of `assertion`.
    pub fn of(assertion: &Secret) -> Fingerprint {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let digest: [u8; 32] = Sha256::digest(assertion.expose().as_bytes()).into();
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        Fingerprint(hex)
    }

    /// The 64 lowercase hex digits (what `Display` prints).
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored: the conversion cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The hex digits as an owned string.
    pub fn to_hex(&self) -> String {
        self.as_str().to_owned()
    }

    /// Reads 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Fingerprint> {
        let digits: [u8; 64] = hex.as_bytes().try_into().ok()?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        Some(Fingerprint(digits.map(|digit| digit.to_ascii_lowercase())))
    }
}

/// 64 lowercase hex digits.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_sha256_of_the_whole_assertion_in_hex() {
        let fingerprint = Fingerprint::of(&Secret::new("abc"));
        assert_eq!(
            fingerprint.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            Fingerprint::from_hex(&fingerprint.to_string()),
            Some(fingerprint)
        );
        assert_eq!(
            Fingerprint::from_hex(&fingerprint.to_string().to_uppercase()),
            Some(fingerprint)
        );
        assert_ne!(Fingerprint::of(&Secret::new("abd")), fingerprint);
    }

    #[test]
    fn anything_but_64_hex_digits_is_refused() {
        for bad in [
            "",
            "ab",
            &"g".repeat(64),
            &"a".repeat(63),
            &"+a".repeat(32),
            &"é".repeat(32),
        ] {
            assert_eq!(Fingerprint::from_hex(bad), None, "{bad}");
        }
    }
}
