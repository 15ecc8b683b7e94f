//! The host's policy (`anthropic_wif_host::Policy::from_toml`) on arbitrary text:
//! no panic, and every accepted origin parses back to itself from its
//! `Display`.
#![no_main]

use anthropic_wif_host::policy::parse_origin;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match anthropic_wif_host::Policy::from_toml(text) {
        Ok(policy) => {
            for origin in &policy.origins {
                let shown = origin.to_string();
                let again = parse_origin(&shown, "origin")
                    .unwrap_or_else(|e| panic!("origin {shown} does not parse back: {e}"));
                assert_eq!(&again, origin);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
