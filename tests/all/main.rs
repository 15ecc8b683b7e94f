//! End-to-end tests of the component: the real `.wasm` (the one the host
//! library embeds) in the real host library, against loopback servers.
//!
//! One test binary, as wasmtime lays out its `tests/all`: wasmtime is linked
//! once, and each module is one concern. The `wif-host` binary has its own
//! end-to-end tests in `wif-host/tests/all`; `tests/scenarios.rs` is a
//! binary of its own because it sets process environment variables.

#![deny(unsafe_code)]

mod cache;
mod component;
mod exchange;
mod faulty_component;
mod hostile_endpoints;
mod policy_denials;
mod refresh_faults;
mod schema;
mod sources;
mod token_cache_library;
mod wire_security;
