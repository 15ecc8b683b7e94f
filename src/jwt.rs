//! Signed JWTs for OAuth client assertions (`private_key_jwt`): ES256 with a
//! P-256 key or RS256 with an RSA key (2048 to 4096 bits), either in a PKCS#8
//! PEM file; the key's type decides the algorithm.

mod rs256;

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};

/// `rsaEncryption`, the algorithm of a PKCS#8 RSA key.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey`, the algorithm of a PKCS#8 elliptic-curve key.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A private key that signs JWTs. `Debug` shows the algorithm only.
pub(crate) enum SigningKey {
    /// ES256: ECDSA on P-256 with SHA-256.
    Es256(p256::ecdsa::SigningKey),
    /// RS256: RSASSA-PKCS1-v1_5 with SHA-256 (boxed: its numbers take about
    /// 3 KB).
    Rs256(Box<rs256::RsaKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({})", self.algorithm())
    }
}

/// Why a key file is not usable, as the end of a sentence that begins with
/// the file's name; the text never quotes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyError(pub(crate) &'static str);

impl SigningKey {
    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub(crate) fn from_pkcs8_pem(pem: &[u8]) -> Result<SigningKey, KeyError> {
        let (label, der) = pem_rfc7468::decode_vec(trim(pem))
            .map_err(|_| KeyError("is not a PEM file (-----BEGIN PRIVATE KEY-----)"))?;
        match label {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => {
                return Err(KeyError(
                    "is an encrypted key; give an unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)",
                ));
            }
            "RSA PRIVATE KEY" => {
                return Err(KeyError(
                    "is a PKCS#1 RSA key; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
                ));
            }
            "EC PRIVATE KEY" => {
                return Err(KeyError(
                    "is a SEC1 key; convert it to PKCS#8 (openssl pkcs8 -topk8 -nocrypt)",
                ));
            }
            _ => {
                return Err(KeyError(
                    "is not a private key (-----BEGIN PRIVATE KEY-----)",
                ));
            }
        }
        let info = PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|_| KeyError("is not a valid PKCS#8 private key"))?;
        match info.algorithm.oid {
            RSA_ENCRYPTION => {
                return rs256::RsaKey::from_pkcs1_der(info.private_key)
                    .map(|key| SigningKey::Rs256(Box::new(key)));
            }
            EC_PUBLIC_KEY => {}
            _ => {
                return Err(KeyError(
                    "is neither an RSA nor an elliptic-curve key; give an RS256 (RSA) or ES256 \
                     (P-256, prime256v1) key",
                ));
            }
        }
        p256::ecdsa::SigningKey::from_pkcs8_der(&der)
            .map(SigningKey::Es256)
            .map_err(|_| {
                KeyError(
                    "is not a P-256 key; only ES256 (P-256, prime256v1) keys are supported \
                     (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)",
                )
            })
    }

    /// The JWS algorithm: `ES256` or `RS256`.
    pub(crate) fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Es256(_) => "ES256",
            SigningKey::Rs256(_) => "RS256",
        }
    }

    /// A compact JWS of `claims` (a JSON object), with `kid` in the header
    /// when given; `None` when an RSA signature does not check out against
    /// the key's public exponent.
    pub(crate) fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> Option<String> {
        let mut header = serde_json::json!({"alg": self.algorithm(), "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = serde_json::Value::String(kid.to_string());
        }
        let signing_input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let signature = match self {
            SigningKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(signing_input.as_bytes());
                signature.to_bytes().to_vec()
            }
            SigningKey::Rs256(key) => key.sign(signing_input.as_bytes())?,
        };
        Some(format!(
            "{signing_input}.{}",
            Base64UrlUnpadded::encode_string(&signature)
        ))
    }
}

/// The PEM text without surrounding white space (editors add a final
/// newline or two; the PEM decoder wants the boundaries exactly).
fn trim(pem: &[u8]) -> &[u8] {
    let start = pem
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(pem.len());
    let end = pem
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &pem[start..end]
}
