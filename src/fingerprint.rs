//! The fingerprint of an identity assertion: its SHA-256, which tells two
//! assertions apart without revealing either.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The SHA-256 of a whole assertion.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `assertion`.
    pub fn of(assertion: &Secret) -> Fingerprint {
        Fingerprint(Sha256::digest(assertion.expose().as_bytes()).into())
    }

    /// The 64 lowercase hex digits (what `Display` prints), without the
    /// formatting machinery: the component returns it with every token.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 64];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        // Hex digits are ASCII: the conversion cannot fail.
        String::from_utf8(hex.to_vec()).unwrap_or_default()
    }

    /// Reads 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Fingerprint> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Fingerprint(bytes))
    }
}

/// 64 lowercase hex digits.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
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
