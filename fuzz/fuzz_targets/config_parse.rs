//! `Config::parse` on arbitrary text: no panic, and an accepted config
//! re-parses to itself (`anthropic_wif::fuzzing::parse_config`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = std::str::from_utf8(data) {
        anthropic_wif::fuzzing::parse_config(json);
    }
});
