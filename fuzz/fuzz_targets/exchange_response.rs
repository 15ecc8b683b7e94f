//! The token endpoint's answer (`anthropic_wif::fuzzing::parse_exchange_response`).
//!
//! Input: three status digits, then the body, e.g. `200{"access_token":…}`.
//! Each of the first three bytes counts as the digit `(byte - '0') % 10`, so
//! every input has a status from 0 to 999.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = split_status(data);
    anthropic_wif::fuzzing::parse_exchange_response(status, body);
});

fn split_status(data: &[u8]) -> (u16, &[u8]) {
    let (digits, body) = data.split_at(data.len().min(3));
    let status = digits
        .iter()
        .fold(0u16, |n, b| n * 10 + u16::from(b.wrapping_sub(b'0') % 10));
    (status, body)
}
