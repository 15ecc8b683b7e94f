//! `cargo bench --bench tokens`: the project's performance figures, measured
//! side by side in one run and printed as one table.
//!
//! Every row is a figure with its min / median / max over repeated runs. A
//! run times a batch of calls and divides by the batch size, so a figure is a
//! per-call time; a few rows (process runs, peak memory, sizes) are
//! per-process or single values, as their label says. Differences ("overhead
//! over the bare round trip", "instantiate") are taken run by run, between
//! batches measured back to back, and then summarized.
//!
//! Networking is loopback only (127.0.0.1). The method and the last recorded
//! results are in `docs/BENCHMARKS.md`.
//!
//! One module per family of figures: `cached` (cached tokens, growth with
//! threads and configs), `exchange` (a full exchange and its overhead),
//! `loading` (compile, load, instantiate, the wasmtime settings side by
//! side), `cli` (cold processes), `python_sdk` (the official Python SDK's
//! cached call, same run); `native`
//! is the component's logic compiled natively (the baseline), `table` the
//! statistics and the printed table.

#![deny(unsafe_code)]

use std::collections::HashSet;
use std::ffi::OsStr;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anthropic_wif_host::{Client, EMBEDDED_COMPONENT, Policy, Provider};
use anthropic_wif_loopback::{LoopbackServer, token_endpoint};
use anyhow::{Context, ensure};
use serde_json::json;

mod cached;
mod cli;
mod exchange;
mod loading;
mod native;
mod python_sdk;
mod table;

use anthropic_wif_test_support::machine::{load_average, machine};
use cached::{threaded, through_component};
use cli::wif_host_binary;
use exchange::bare_agent;
use native::NativeCaps;
use table::{Kind, Stats, Table, Target, per_call, runs};

/// A stand-in identity token (a JWT in shape only).
const JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.\
eyJpc3MiOiJodHRwczovL3Rva2VuLmFjdGlvbnMuZ2l0aHVidXNlcmNvbnRlbnQuY29tIiwic3ViIjoicmVwbzpleGFtcGxlL3JlcG86cmVmOnJlZnMvaGVhZHMvbWFpbiIsImF1ZCI6Imh0dHBzOi8vYXBpLmFudGhyb3BpYy5jb20ifQ.\
c2lnbmF0dXJlLW5vdC1jaGVja2Vk";
const ORG: &str = "3f2b8c1e-5d4a-4e6b-9c7d-0a1b2c3d4e5f";
/// The `expires_in` of the loopback token endpoint.
const EXPIRES_IN: u64 = 3600;
/// Repetitions of each timed batch.
const REPS: usize = 25;
/// Repetitions for the slow rows (compilation, processes).
const SLOW_REPS: usize = 15;
/// Calls per batch (per thread) on the cached paths.
const CACHED_BATCH: usize = 100_000;

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let mut table = Table::default();
    let wif_host = wif_host_binary();
    let bench = Bench::new()?;
    bench.warm_up()?;

    let (handle, component) = bench.cached(&mut table)?;
    bench.exchange(&mut table)?;
    bench.loading(&mut table)?;
    bench.engine_settings(&mut table)?;
    bench.cli(&mut table, &wif_host)?;
    table.section("size");
    table.row(
        "component (EMBEDDED_COMPONENT.len())",
        Kind::KiB,
        Stats::single(EMBEDDED_COMPONENT.len() as f64),
        Target::at_most(400.0 * 1024.0, "≤ 400 KiB"),
    );
    bench.thread_scaling(&mut table)?;
    bench.config_scaling(&mut table)?;
    bench.python_sdk(&mut table, handle, component)?;

    println!();
    println!("{}", machine());
    println!(
        "each row: min / median / max over repeated runs; time rows are per call (batch time ÷ batch size) unless the label says otherwise"
    );
    println!();
    table.print();
    println!();
    for note in &table.notes {
        println!("note: {note}");
    }
    println!(
        "load average (1 min) before: {load_before}, after: {}",
        load_average()
    );
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What every section shares: a token file, a loopback token endpoint and
/// the compiled component (a provider that grants nothing, from which each
/// section derives providers under the minimal policy of its configs).
struct Bench {
    dir: tempfile::TempDir,
    token_file: PathBuf,
    server: LoopbackServer,
    inspector: Provider,
}

impl Bench {
    fn new() -> anyhow::Result<Bench> {
        let dir = tempfile::tempdir()?;
        let token_file = dir.path().join("identity-token");
        std::fs::write(&token_file, format!("{JWT}\n"))?;
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let inspector = Provider::builder().build()?;
        Ok(Bench {
            dir,
            token_file,
            server,
            inspector,
        })
    }

    /// The config with federation rule `rule` against `server`.
    fn config(&self, server: &LoopbackServer, rule: &str) -> String {
        auth(&server.url(), &self.token_file, rule)
    }

    /// The minimal policy for `config` (its token file and its server's
    /// origin).
    fn policy(&self, config: &str) -> anyhow::Result<Policy> {
        let needs = self.inspector.requirements(config)?;
        Ok(Policy::minimal(&needs, |_| None).policy)
    }

    /// A provider of the compiled component under the minimal policy for
    /// `config`.
    fn provider(&self, config: &str) -> anyhow::Result<Provider> {
        Ok(self.inspector.with_policy(self.policy(config)?))
    }

    /// Keeps both cores busy for a few seconds, untimed, so that the first
    /// rows do not run on cores that were idle (on the reference machine
    /// they were measurably slower for the first seconds of a run).
    fn warm_up(&self) -> anyhow::Result<()> {
        let config = self.config(&self.server, "fdrl_warm_up");
        let provider = self.provider(&config)?;
        provider.get_token(&config)?;
        let until = Instant::now() + Duration::from_secs(3);
        let configs = std::slice::from_ref(&config);
        while Instant::now() < until {
            threaded(&provider, configs, 2, CACHED_BATCH);
        }
        Ok(())
    }
}

/// The `auth` block for a file source.
fn auth(base_url: &str, token_file: &Path, rule: &str) -> String {
    json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": rule,
            "organization_id": ORG,
            "base_url": base_url,
            "identity_token": {"file": token_file.to_string_lossy()},
        }
    })
    .to_string()
}
