//! The identity URL's answer, read by the `url` source
//! (`anthropic_wif::fuzzing::read_identity_response`).
//!
//! Input: three status digits, the `response_field` up to the first newline
//! (an empty line means no field), then the body, e.g.
//! `200id_token\n{"id_token":"eyJ…"}`. Each of the first three bytes counts
//! as the digit `(byte - '0') % 10`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (digits, rest) = data.split_at(data.len().min(3));
    let status = digits
        .iter()
        .fold(0u16, |n, b| n * 10 + u16::from(b.wrapping_sub(b'0') % 10));
    let (field, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let field = String::from_utf8_lossy(field);
    let field = (!field.is_empty()).then_some(field.as_ref());
    anthropic_wif::fuzzing::read_identity_response(status, body, field);
});
