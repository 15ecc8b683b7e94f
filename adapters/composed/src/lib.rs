//! `anthropic-wif` for plain WASI runtimes.
//!
//! The build composes three components into one, `anthropic-wif-wasi.wasm`:
//!
//! - `adapters/wasi-capabilities` implements the `capabilities` interface
//!   with standard WASI (files and environment through Rust std, HTTP through
//!   `wasi:http`; `run-command` is denied);
//! - the federation component of this repository (the token logic);
//! - `adapters/wasi-runner`, a `wasi:cli` command that reads the `auth`
//!   block and prints a token.
//!
//! The composition imports only standard WASI 0.2 (`wasi:cli`, `wasi:clocks`,
//! `wasi:filesystem`, `wasi:io`, `wasi:random`, `wasi:http`) and exports
//! `wasi:cli/run`, so a WASI runtime that provides `wasi:http` runs it (it
//! must be enabled even for the file and env sources: wasmtime's `-S http`),
//! and the runtime's own grants are the policy: `--dir` for files, `--env`
//! for variables, wasi-http for URLs. `run-command` is always denied.
//!
//! ```text
//! wasmtime run -S http --env ANTHROPIC_WIF_CONFIG="$(cat auth.json)" \
//!     --dir /var/run/secrets/anthropic.com target/wasi/anthropic-wif-wasi.wasm
//! ```
//!
//! The build also copies the component to `target/wasi/anthropic-wif-wasi.wasm`.

/// The composed component, built by this crate's build script.
pub const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/anthropic-wif-wasi.wasm"));

/// The file name of the composed component.
pub const FILE_NAME: &str = "anthropic-wif-wasi.wasm";
