//! RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 8017 §8.2) for client
//! assertions, on crypto-bigint's constant-time Montgomery arithmetic.
//!
//! Why not the RustCrypto `rsa` crate: it adds 70 KB (0.9) to 170 KB (0.10)
//! to a component that must stay under 400 KiB. Signing needs far less: the
//! key's numbers (read with the `pkcs1` crate), the EMSA-PKCS1-v1_5 encoding
//! (a fixed prefix and the digest) and one modular exponentiation, which
//! crypto-bigint (already in the component for P-256) does in constant time
//! for a bounded exponent. Each signature is checked with the public
//! exponent before it leaves, so a fault never hands out a wrong one. The
//! tests verify signatures with the `rsa` crate itself.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, Integer, U4096, Zero};
use sha2::{Digest, Sha256};

use super::KeyError;

/// The largest modulus handled, in bytes (4096 bits).
const MAX_BYTES: usize = 512;
/// The smallest modulus accepted, in bits (NIST SP 800-131A).
const MIN_BITS: u32 = 2048;
/// The DER `DigestInfo` prefix of a SHA-256 digest (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// An RSA private key of 2048 to 4096 bits.
pub(crate) struct RsaKey {
    params: DynResidueParams<{ U4096::LIMBS }>,
    private_exponent: U4096,
    public_exponent: U4096,
    /// The modulus's length in bytes: the signature's length.
    len: usize,
    /// The modulus's length in bits: the bound of the exponentiation.
    bits: usize,
}

impl RsaKey {
    /// Reads the `RSAPrivateKey` (PKCS#1) inside a PKCS#8 key.
    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<RsaKey, KeyError> {
        let key = pkcs1::RsaPrivateKey::try_from(der)
            .map_err(|_| KeyError("is not a valid PKCS#8 RSA private key"))?;
        let modulus = key.modulus.as_bytes();
        let private_exponent = key.private_exponent.as_bytes();
        let public_exponent = key.public_exponent.as_bytes();
        let bits = bit_length(modulus);
        if bits < MIN_BITS
            || modulus.len() > MAX_BYTES
            || private_exponent.len() > MAX_BYTES
            || public_exponent.len() > MAX_BYTES
        {
            return Err(KeyError(
                "is an RSA key outside 2048 to 4096 bits; give a 2048-, 3072- or 4096-bit key \
                 (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)",
            ));
        }
        let n = uint(modulus);
        if !bool::from(n.is_odd()) {
            return Err(KeyError("is not a valid RSA key (its modulus is even)"));
        }
        let private_exponent = uint(private_exponent);
        let public_exponent = uint(public_exponent);
        if bool::from(private_exponent.is_zero()) || bool::from(public_exponent.is_zero()) {
            return Err(KeyError("is not a valid RSA key (a zero exponent)"));
        }
        Ok(RsaKey {
            params: DynResidueParams::new(&n),
            private_exponent,
            public_exponent,
            len: modulus.len(),
            bits: bits as usize,
        })
    }

    /// The RS256 signature of `message`; `None` when the signature does
    /// not check out against the public exponent (a key whose numbers do
    /// not belong together).
    pub(crate) fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let encoded = uint(&self.encode(&Sha256::digest(message)));
        let signature = DynResidue::new(&encoded, self.params)
            .pow_bounded_exp(&self.private_exponent, self.bits)
            .retrieve();
        let check = DynResidue::new(&signature, self.params)
            .pow_bounded_exp(&self.public_exponent, self.bits)
            .retrieve();
        if check != encoded {
            return None;
        }
        Some(signature.to_be_bytes()[MAX_BYTES - self.len..].to_vec())
    }

    /// EMSA-PKCS1-v1_5: `00 01 FF…FF 00 DigestInfo digest`, the modulus's
    /// length.
    fn encode(&self, digest: &[u8]) -> Vec<u8> {
        let tail = SHA256_DIGEST_INFO.len() + digest.len();
        let mut encoded = vec![0xff; self.len];
        encoded[0] = 0x00;
        encoded[1] = 0x01;
        encoded[self.len - tail - 1] = 0x00;
        encoded[self.len - tail..self.len - digest.len()].copy_from_slice(&SHA256_DIGEST_INFO);
        encoded[self.len - digest.len()..].copy_from_slice(digest);
        encoded
    }
}

/// A big-endian number of at most [`MAX_BYTES`] bytes as a `U4096`.
fn uint(be: &[u8]) -> U4096 {
    let mut padded = [0u8; MAX_BYTES];
    padded[MAX_BYTES - be.len()..].copy_from_slice(be);
    U4096::from_be_slice(&padded)
}

/// The bit length of a big-endian number without leading zero bytes.
fn bit_length(be: &[u8]) -> u32 {
    match be.iter().position(|&b| b != 0) {
        Some(first) => (be.len() - first) as u32 * 8 - be[first].leading_zeros(),
        None => 0,
    }
}

#[cfg(test)]
mod tests;
