//! Builds the component from this repository's root package and embeds it.
//!
//! Runs a nested `cargo build` of the root package for
//! `wasm32-unknown-unknown` (the target `rust-toolchain.toml` installs),
//! encodes the core module as a component with `wit-component`, and writes
//! it to `OUT_DIR/anthropic_wif.wasm` for `include_bytes!`, with its SHA-256
//! in the compile-time variable `ANTHROPIC_WIF_COMPONENT_SHA256` (the
//! library's `EMBEDDED_COMPONENT_SHA256`, printed by `wif-host --version`).
//! It reruns only when the guest's own source files change (its dep-info).

use std::env;
use std::path::PathBuf;

use anthropic_wif_nested_build::{self as nested_build, BuildResult};
use sha2::{Digest, Sha256};

fn main() -> BuildResult<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("host-example has no parent folder")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let target_dir = nested_build::guest_target_dir(&out_dir, &root);
    let component = nested_build::federation_component(&root, &target_dir)?;
    let digest: String = Sha256::digest(&component)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    println!("cargo:rustc-env=ANTHROPIC_WIF_COMPONENT_SHA256={digest}");
    std::fs::write(out_dir.join("anthropic_wif.wasm"), component)?;
    Ok(())
}
