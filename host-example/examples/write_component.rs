//! Writes the embedded component to a file, for hosts in other languages
//! (`hosts/python`, `hosts/js`) that ship it in their packages.
//!
//! ```sh
//! cargo run -p anthropic-wif-host --example write_component -- hosts/python/src/anthropic_wif/anthropic_wif.wasm
//! ```

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: write_component PATH");
        return ExitCode::from(2);
    };
    let partial = path.with_extension("wasm.partial");
    let written = std::fs::write(&partial, anthropic_wif_host::EMBEDDED_COMPONENT)
        .and_then(|()| std::fs::rename(&partial, &path));
    match written {
        Ok(()) => {
            println!(
                "{} ({} bytes, sha256 {})",
                path.display(),
                anthropic_wif_host::EMBEDDED_COMPONENT.len(),
                anthropic_wif_host::EMBEDDED_COMPONENT_SHA256
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            eprintln!("cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
