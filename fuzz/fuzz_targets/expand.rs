//! `${VAR}` listing and expansion on arbitrary templates
//! (`anthropic_wif::fuzzing::expand`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(template) = std::str::from_utf8(data) {
        anthropic_wif::fuzzing::expand(template);
    }
});
