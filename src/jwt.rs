//! Signed JWTs for OAuth client assertions (`private_key_jwt`): ES256 with a
//! P-256 key in a PKCS#8 PEM file.
//!
//! RS256 is not offered: the RustCrypto `rsa` crate would take the component
//! over its 400 KiB limit (see the README), and the authorization servers that
//! take `private_key_jwt` (Okta, Entra ID, Keycloak) all accept ES256. An RSA
//! key is refused with an error that says so.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};

/// `rsaEncryption`, the algorithm of a PKCS#8 RSA key.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey`, the algorithm of a PKCS#8 elliptic-curve key.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The JWS algorithm of every assertion.
pub(crate) const ALGORITHM: &str = "ES256";

/// A P-256 private key that signs JWTs. `Debug` shows the algorithm only.
pub(crate) struct SigningKey(p256::ecdsa::SigningKey);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({ALGORITHM})")
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
            "RSA PRIVATE KEY" => return Err(KeyError(RSA_REFUSED)),
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
            RSA_ENCRYPTION => return Err(KeyError(RSA_REFUSED)),
            EC_PUBLIC_KEY => {}
            _ => {
                return Err(KeyError(
                    "is not an elliptic-curve key; only ES256 (P-256, prime256v1) keys are supported",
                ));
            }
        }
        p256::ecdsa::SigningKey::from_pkcs8_der(&der)
            .map(SigningKey)
            .map_err(|_| {
                KeyError(
                    "is not a P-256 key; only ES256 (P-256, prime256v1) keys are supported \
                     (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)",
                )
            })
    }

    /// A compact JWS of `claims` (a JSON object), with `kid` in the header
    /// when given.
    pub(crate) fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = serde_json::json!({"alg": ALGORITHM, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = serde_json::Value::String(kid.to_string());
        }
        let signing_input = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes())
        );
        let signature: p256::ecdsa::Signature = self.0.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            Base64UrlUnpadded::encode_string(&signature.to_bytes())
        )
    }
}

/// Why an RSA key is refused, and what to give instead.
const RSA_REFUSED: &str = "is an RSA key; RS256 is not supported: give an ES256 (P-256, prime256v1) \
     key in PKCS#8 PEM (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256) and \
     register its public key with the client";

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
