//! End-to-end tests of the `wif-host` binary (`CARGO_BIN_EXE_wif-host`,
//! built once by cargo for this test binary) against loopback servers: its
//! subcommands, exit codes and output, the sidecar, the gateway, networks
//! (proxies, private CAs), SDK profiles and the official Python SDK.
//!
//! One test binary, as wasmtime lays out its `tests/all`: wasmtime is linked
//! once, and each module is one concern.

#![deny(unsafe_code)]

mod cli;
mod command_process;
mod docker_agent;
mod doctor;
mod examples;
mod exec;
mod gateway_attacks;
mod gateway_cli;
mod identity_providers;
mod log_hygiene;
mod networks;
mod oauth;
mod policy_bypass;
mod policy_denials;
mod profile_trust;
mod sdk_env;
mod sdk_python;
mod sources;
mod support;
mod sync_cli;
mod token_cache_cli;
mod wire_security;

use std::ffi::OsStr;
use std::path::Path;

use anthropic_wif_test_support::{CliRun, Files, run_binary, token_through};
use serde_json::Value;

/// The `wif-host` binary cargo built for these tests.
pub fn wif_host() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_wif-host"))
}

/// Runs `wif-host` with `args` and extra environment variables `env` (see
/// [`run_binary`]).
pub fn run_wif_host<A: AsRef<OsStr>>(args: &[A], env: &[(&str, &str)]) -> CliRun {
    run_binary(wif_host(), args, env)
}

/// Runs `wif-host token` on `auth` and `policy` written in `files` (see
/// [`token_through`]).
pub fn cli_token(
    files: &Files,
    auth: &Value,
    policy: &str,
    format: &str,
    env: &[(&str, &str)],
) -> CliRun {
    token_through(wif_host(), files, auth, policy, format, env)
}
