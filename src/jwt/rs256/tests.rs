use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::Verifier;

use super::*;

const KEY_2048: &str = include_str!("../testdata/rsa-2048.pem");
const KEY_4096: &str = include_str!("../testdata/rsa-4096.pem");

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 PEM file.
fn pkcs1_der(pem: &str) -> Vec<u8> {
    let (_, der) = pem_rfc7468::decode_vec(pem.trim().as_bytes()).unwrap();
    let info = p256::pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    info.private_key.to_vec()
}

/// Checks `signature` over `message` with the `rsa` crate and the public
/// half of `pem`.
fn verifies(pem: &str, message: &[u8], signature: &[u8]) -> bool {
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
    let verifying = VerifyingKey::<rsa::sha2::Sha256>::new(private.to_public_key());
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    verifying.verify(message, &signature).is_ok()
}

#[test]
fn signatures_verify_with_the_rsa_crate_for_2048_and_4096_bit_keys() {
    for (pem, len) in [(KEY_2048, 256), (KEY_4096, 512)] {
        let key = RsaKey::from_pkcs1_der(&pkcs1_der(pem)).unwrap();
        let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
        let signature = key.sign(message).unwrap();
        assert_eq!(signature.len(), len);
        assert!(verifies(pem, message, &signature));
        assert!(!verifies(pem, b"another message", &signature));
    }
}

#[test]
fn signing_is_deterministic() {
    let key = RsaKey::from_pkcs1_der(&pkcs1_der(KEY_2048)).unwrap();
    assert_eq!(key.sign(b"m"), key.sign(b"m"));
}

#[test]
fn a_key_whose_numbers_do_not_belong_together_signs_nothing() {
    let mut key = RsaKey::from_pkcs1_der(&pkcs1_der(KEY_2048)).unwrap();
    key.public_exponent = U4096::from_u32(3);
    assert_eq!(key.sign(b"m"), None);
}

#[test]
fn small_and_malformed_keys_are_refused_with_the_reason() {
    let small = rsa::RsaPrivateKey::from_components(
        rsa::BigUint::from(3233u32),
        rsa::BigUint::from(17u32),
        rsa::BigUint::from(413u32),
        vec![rsa::BigUint::from(61u32), rsa::BigUint::from(53u32)],
    )
    .unwrap();
    let der = rsa::pkcs1::EncodeRsaPrivateKey::to_pkcs1_der(&small).unwrap();
    let error = RsaKey::from_pkcs1_der(der.as_bytes()).err().unwrap();
    assert!(error.0.contains("2048 to 4096 bits"), "{}", error.0);
    let error = RsaKey::from_pkcs1_der(b"\x30\x03\x02\x01\x00")
        .err()
        .unwrap();
    assert!(error.0.contains("not a valid"), "{}", error.0);
}

#[test]
fn bit_lengths() {
    assert_eq!(bit_length(&[]), 0);
    assert_eq!(bit_length(&[0, 0x01]), 1);
    assert_eq!(bit_length(&[0x80, 0]), 16);
}
