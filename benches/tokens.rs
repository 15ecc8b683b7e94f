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

use std::collections::HashSet;
use std::ffi::OsStr;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anthropic_wif_host::loopback::{LoopbackServer, token_endpoint};
use anthropic_wif_host::{EMBEDDED_COMPONENT, Policy, Provider};
use anyhow::{Context, bail, ensure};
use serde_json::json;

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
    // Built first, so that the build disturbs no measurement.
    let build = Instant::now();
    let wif_host = wif_host_binary()?;
    table.note(format!(
        "`cargo build --release -p anthropic-wif-host --bin wif-host` (a no-op when up to date) took {:.1} s before the measurements",
        build.elapsed().as_secs_f64()
    ));
    let bench = Bench::new()?;
    bench.warm_up()?;

    bench.cached(&mut table)?;
    bench.exchange(&mut table)?;
    bench.loading(&mut table)?;
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

    /// Cached tokens: host API (1 and 8 threads), through the component,
    /// natively.
    fn cached(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("cached token");
        let config = self.config(&self.server, "fdrl_bench");
        let configs = std::slice::from_ref(&config);
        let provider = self.provider(&config)?;
        provider.get_token(&config)?;
        let exchanges = self.server.requests().len();

        let one = runs(REPS, || {
            Ok(threaded(&provider, configs, 1, CACHED_BATCH).wall)
        })?;
        table.row(
            "host API get_token, 1 thread",
            Kind::Time,
            one,
            Target::at_most(100.0, "≤ 100 ns (Python SDK 0.5–1 µs)"),
        );
        let mut cpu = Vec::new();
        let wall = runs(REPS, || {
            let figures = threaded(&provider, configs, 8, CACHED_BATCH);
            cpu.push(figures.cpu);
            Ok(figures.wall)
        })?;
        table.row(
            "host API get_token, 8 threads: wall time ÷ (8·N calls)",
            Kind::Time,
            wall,
            Target::at_most(200.0, "≤ 200 ns"),
        );
        table.row(
            "host API get_token, 8 threads: thread CPU time ÷ calls",
            Kind::Time,
            Stats::of(cpu),
            Target::at_most(200.0, "≤ 200 ns"),
        );
        ensure!(
            self.server.requests().len() == exchanges,
            "the cached rows made exchanges"
        );

        let component = runs(REPS, || {
            let batch = 2_000;
            let start = Instant::now();
            for _ in 0..batch {
                let _ = black_box(provider.get_token_uncached(black_box(&config)));
            }
            Ok(per_call(start.elapsed(), batch))
        })?;
        table.row(
            "through the component (get_token_uncached, component cache hit)",
            Kind::Time,
            component,
            Target::at_most(5_000.0, "≤ 5 µs"),
        );
        ensure!(
            self.server.requests().len() == exchanges,
            "the component-boundary row made exchanges"
        );

        let caps = NativeCaps::new();
        let mut native_provider = anthropic_wif::Provider::new();
        native_provider.get_token(&caps, &config)?;
        let exchanges = self.server.requests().len();
        let native = runs(REPS, || {
            let start = Instant::now();
            for _ in 0..CACHED_BATCH {
                let _ = black_box(native_provider.get_token(&caps, black_box(&config)));
            }
            Ok(per_call(start.elapsed(), CACHED_BATCH))
        })?;
        ensure!(
            self.server.requests().len() == exchanges,
            "the native row made exchanges"
        );
        table.row(
            "same logic natively (anthropic_wif::Provider, cache hit)",
            Kind::Time,
            native,
            Target::none("reference"),
        );
        table.row(
            "through the component ÷ natively (medians)",
            Kind::Ratio,
            Stats::single(component.median / native.median),
            Target::none(""),
        );
        Ok(())
    }

    /// Full exchanges against the loopback token endpoint, and the bare
    /// HTTP round trip, on a reused and on a fresh connection. Exchanges and
    /// bare POSTs alternate call by call, so that both see the same
    /// conditions; the overhead is taken run by run.
    fn exchange(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("exchange against the loopback token endpoint (file source)");

        // Reused connection: one provider, whose agent keeps the connection
        // open; one ureq agent for the bare POSTs.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let provider = self.provider(&config)?;
        provider.get_token(&config)?;
        let agent = bare_agent();
        bare_post(&agent, &server)?;
        let batch = 20;
        let (mut exchanges, mut bare) = (Vec::new(), Vec::new());
        let overhead = runs(REPS, || {
            let (mut exchange, mut round_trip) = (Duration::ZERO, Duration::ZERO);
            for _ in 0..batch {
                provider.invalidate(&config)?;
                let start = Instant::now();
                black_box(provider.get_token(&config)?);
                exchange += start.elapsed();
                let start = Instant::now();
                bare_post(&agent, &server)?;
                round_trip += start.elapsed();
            }
            let (exchange, round_trip) = (per_call(exchange, batch), per_call(round_trip, batch));
            exchanges.push(exchange);
            bare.push(round_trip);
            Ok(exchange - round_trip)
        })?;
        table.note(format!(
            "reused connection: {} requests (exchanges and bare POSTs) over {} TCP connection(s)",
            server.requests().len(),
            connections_to(server.port())
        ));
        table.row(
            "exchange, reused connection (get_token after invalidate)",
            Kind::Time,
            Stats::of(exchanges),
            Target::none(""),
        );
        table.row(
            "bare HTTP POST, same body, reused connection (ureq)",
            Kind::Time,
            Stats::of(bare),
            Target::none(""),
        );
        table.row(
            "exchange overhead over bare round trip, reused",
            Kind::Time,
            overhead,
            Target::at_most(200_000.0, "≤ 200 µs"),
        );

        // Fresh connection: the server cannot be told to close connections,
        // so each exchange gets a new provider (new agent, empty connection
        // pool) warmed by an exchange with a second server, outside the
        // timing; the timed exchange then opens a new TCP connection from a
        // warm instance. The bare POSTs do the same with a new agent.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let warmer = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let warm_config = self.config(&warmer, "fdrl_bench");
        let mut policy = self.policy(&config)?;
        policy.origins.extend(self.policy(&warm_config)?.origins);
        let batch = 10;
        let (mut exchanges, mut bare, mut first) = (Vec::new(), Vec::new(), Vec::new());
        let overhead = runs(SLOW_REPS, || {
            let (mut exchange, mut round_trip, mut cold) =
                (Duration::ZERO, Duration::ZERO, Duration::ZERO);
            for _ in 0..batch {
                let fresh = self.inspector.with_policy(policy.clone());
                fresh.get_token(&warm_config)?;
                let start = Instant::now();
                black_box(fresh.get_token(&config)?);
                exchange += start.elapsed();
                let agent = bare_agent();
                bare_post(&agent, &warmer)?;
                let start = Instant::now();
                bare_post(&agent, &server)?;
                round_trip += start.elapsed();
                // For reference: the first exchange of a provider whose
                // instance exists (made by `requirements`) but has never
                // exchanged.
                let fresh = self.inspector.with_policy(policy.clone());
                fresh.requirements(&config)?;
                let start = Instant::now();
                black_box(fresh.get_token(&config)?);
                cold += start.elapsed();
            }
            let (exchange, round_trip) = (per_call(exchange, batch), per_call(round_trip, batch));
            exchanges.push(exchange);
            bare.push(round_trip);
            first.push(per_call(cold, batch));
            Ok(exchange - round_trip)
        })?;
        table.note(format!(
            "fresh connection: {} requests (exchanges and bare POSTs) over {} TCP connection(s)",
            server.requests().len(),
            connections_to(server.port())
        ));
        table.row(
            "exchange, fresh connection (warm instance, new agent)",
            Kind::Time,
            Stats::of(exchanges),
            Target::none("Python SDK 2.6–3.2 ms"),
        );
        table.row(
            "bare HTTP POST, same body, fresh connection (new agent)",
            Kind::Time,
            Stats::of(bare),
            Target::none(""),
        );
        table.row(
            "exchange overhead over bare round trip, fresh",
            Kind::Time,
            overhead,
            Target::at_most(200_000.0, "≤ 200 µs"),
        );
        table.row(
            "first exchange of a new provider (instance made, never exchanged)",
            Kind::Time,
            Stats::of(first),
            Target::none("reference"),
        );

        // The same exchange natively, for reference.
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let config = self.config(&server, "fdrl_bench");
        let caps = NativeCaps::new();
        let mut native = anthropic_wif::Provider::new();
        native.get_token(&caps, &config)?;
        let batch = 20;
        let exchanged = runs(REPS, || {
            let mut total = Duration::ZERO;
            for _ in 0..batch {
                native.invalidate(&config);
                let start = Instant::now();
                black_box(native.get_token(&caps, &config)?);
                total += start.elapsed();
            }
            Ok(per_call(total, batch))
        })?;
        table.row(
            "exchange natively (anthropic_wif + ureq), reused connection",
            Kind::Time,
            exchanged,
            Target::none("reference"),
        );
        Ok(())
    }

    /// Loading the component: compile, deserialize, instantiate.
    fn loading(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("component load");
        let compile = runs(SLOW_REPS, || {
            let start = Instant::now();
            let provider = Provider::builder().build()?;
            let elapsed = start.elapsed();
            drop(provider);
            Ok(elapsed.as_nanos() as f64)
        })?;
        table.row(
            "compile from bytes: Provider::builder().build(), per build",
            Kind::Time,
            compile,
            Target::none(""),
        );

        let cache = self.dir.path().join("compiled");
        Provider::builder().compile_cache(cache.clone()).build()?;
        let batch = 5;
        let deserialize = runs(REPS, || {
            let mut total = Duration::ZERO;
            for _ in 0..batch {
                let start = Instant::now();
                let provider = Provider::builder().compile_cache(cache.clone()).build()?;
                total += start.elapsed();
                drop(provider);
            }
            Ok(per_call(total, batch))
        })?;
        table.row(
            "load precompiled: builder().compile_cache(dir).build(), warm, per build",
            Kind::Time,
            deserialize,
            Target::none(""),
        );

        // A fresh provider instantiates from the shared InstancePre on its
        // first call. Both batches call `requirements` with configs never
        // seen before, so both parse; the difference is the instantiation.
        let warm = Provider::builder().build()?;
        warm.requirements(&self.config(&self.server, "fdrl_warmup"))?;
        let mut serial = 0u64;
        let mut fresh_configs = |n: usize| -> Vec<String> {
            (0..n)
                .map(|_| {
                    serial += 1;
                    self.config(&self.server, &format!("fdrl_req_{serial}"))
                })
                .collect()
        };
        let batch = 20;
        let mut first_calls = Vec::new();
        let mut warm_calls = Vec::new();
        let instantiate = runs(REPS, || {
            let providers: Vec<Provider> = (0..batch)
                .map(|_| warm.with_policy(Policy::default()))
                .collect();
            let configs = fresh_configs(batch);
            let start = Instant::now();
            for (provider, config) in providers.iter().zip(&configs) {
                black_box(provider.requirements(config)?);
            }
            let first = per_call(start.elapsed(), batch);
            let configs = fresh_configs(batch);
            let start = Instant::now();
            for config in &configs {
                black_box(warm.requirements(config)?);
            }
            let again = per_call(start.elapsed(), batch);
            drop(providers);
            first_calls.push(first);
            warm_calls.push(again);
            Ok(first - again)
        })?;
        table.row(
            "first call of a fresh instance (instantiate + requirements)",
            Kind::Time,
            Stats::of(first_calls),
            Target::none(""),
        );
        table.row(
            "requirements on a warm instance (config not seen before)",
            Kind::Time,
            Stats::of(warm_calls),
            Target::none(""),
        );
        table.row(
            "instantiate from InstancePre (difference of the two)",
            Kind::Time,
            instantiate,
            Target::at_most(100_000.0, "≤ 100 µs"),
        );
        Ok(())
    }

    /// Cold `wif-host token` processes.
    fn cli(&self, table: &mut Table, binary: &Path) -> anyhow::Result<()> {
        table.section("cold CLI process (release wif-host)");
        let server = LoopbackServer::start(token_endpoint(EXPIRES_IN))?;
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home)?;
        let config_file = self.dir.path().join("auth.json");
        std::fs::write(&config_file, self.config(&server, "fdrl_cli"))?;
        let token_args: [&OsStr; 3] = ["token".as_ref(), "--config".as_ref(), config_file.as_ref()];

        // The first run compiles the component, exchanges, and fills both
        // caches.
        let first = run_cli(binary, &home, &token_args)?;
        ensure!(
            first.stdout.starts_with("sk-ant-oat01-"),
            "the first run printed no token"
        );
        ensure!(
            server.requests().len() == 1,
            "the first run made no exchange"
        );
        let compiled = std::fs::read_dir(home.join("cache/anthropic-wif/compiled"))
            .map(|d| d.count())
            .unwrap_or(0);
        ensure!(compiled == 1, "the first run left no compiled component");

        let before = server.requests().len();
        let wall = runs(SLOW_REPS + 5, || {
            let run = run_cli(binary, &home, &token_args)?;
            ensure!(
                run.stdout == first.stdout,
                "a warm run printed another token"
            );
            Ok(run.wall.as_nanos() as f64)
        })?;
        table.row(
            "`wif-host token`, warm compile + token cache: wall per process",
            Kind::Time,
            wall,
            Target::at_most(30_000_000.0, "≤ 30 ms"),
        );
        self.peak_rss(
            table,
            binary,
            &home,
            &token_args,
            Target::at_most_max(40.0 * 1024.0 * 1024.0, "≤ 40 MiB (judged on max)"),
        )?;
        let exchanges = server.requests().len() - before;
        table.row(
            "  token-endpoint requests made by all those runs",
            Kind::Count,
            Stats::single(exchanges as f64),
            Target::at_most(0.0, "0"),
        );

        let no_cache: [&OsStr; 4] = [
            "token".as_ref(),
            "--config".as_ref(),
            config_file.as_ref(),
            "--no-cache".as_ref(),
        ];
        let before = server.requests().len();
        let wall = runs(SLOW_REPS, || {
            let run = run_cli(binary, &home, &no_cache)?;
            ensure!(
                run.stdout.starts_with("sk-ant-oat01-"),
                "a --no-cache run printed no token"
            );
            Ok(run.wall.as_nanos() as f64)
        })?;
        ensure!(
            server.requests().len() - before == SLOW_REPS,
            "not one exchange per --no-cache run"
        );
        table.row(
            "`wif-host token --no-cache`, warm compile cache (1 exchange each)",
            Kind::Time,
            wall,
            Target::none("reference"),
        );
        self.peak_rss(table, binary, &home, &no_cache, Target::none(""))?;
        Ok(())
    }

    /// The peak memory of `wif-host` processes, from GNU time's `%M`. Not
    /// from this process's wait4 or getrusage(RUSAGE_CHILDREN): a child
    /// spawned from here starts as a copy (or, with vfork, a borrower) of
    /// this process's memory, and Linux counts that in the child's
    /// `ru_maxrss`, so every child would report at least this bench's own
    /// resident set. GNU time is a small process; what it reports is the
    /// larger of its own size (about 1 MiB) and the program's peak.
    fn peak_rss(
        &self,
        table: &mut Table,
        binary: &Path,
        home: &Path,
        args: &[&OsStr],
        target: Target,
    ) -> anyhow::Result<()> {
        let time = Path::new("/usr/bin/time");
        if !time.exists() {
            table.note("peak memory not measured: /usr/bin/time is missing".into());
            return Ok(());
        }
        let report = self.dir.path().join("time-report");
        let peak = runs(SLOW_REPS, || {
            let mut time_args: Vec<&OsStr> = vec![
                "-f".as_ref(),
                "%M".as_ref(),
                "-o".as_ref(),
                report.as_os_str(),
                binary.as_os_str(),
            ];
            time_args.extend_from_slice(args);
            run_cli(time, home, &time_args)?;
            let kib: f64 = std::fs::read_to_string(&report)?
                .trim()
                .parse()
                .context("GNU time's %M")?;
            Ok(kib * 1024.0)
        })?;
        table.row(
            "  peak RSS per process (GNU time %M, separate runs)",
            Kind::MiB,
            peak,
            target,
        );
        Ok(())
    }

    /// Cached host API calls on 1, 2, 4 and 8 threads.
    fn thread_scaling(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("cached host API by number of threads (1 config)");
        let config = self.config(&self.server, "fdrl_bench");
        let configs = std::slice::from_ref(&config);
        let provider = self.provider(&config)?;
        provider.get_token(&config)?;
        for threads in [1, 2, 4, 8] {
            let mut cpu = Vec::new();
            let wall = runs(REPS, || {
                let figures = threaded(&provider, configs, threads, CACHED_BATCH);
                cpu.push(figures.cpu);
                Ok(figures.wall)
            })?;
            table.row(
                &format!("{threads} thread(s): wall time ÷ calls"),
                Kind::Time,
                wall,
                Target::none(""),
            );
            table.row(
                &format!("{threads} thread(s): thread CPU time ÷ calls"),
                Kind::Time,
                Stats::of(cpu),
                Target::none(""),
            );
        }
        Ok(())
    }

    /// Cached host API calls with 1, 10 and 1000 configs held by one
    /// provider, each call for the next config in turn.
    fn config_scaling(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("cached host API by number of configs held (distinct federation_rule_id)");
        for held in [1, 10, 1000] {
            let provider = self.provider(&self.config(&self.server, "fdrl_held_0000"))?;
            let configs: Vec<String> = (0..held)
                .map(|n| self.config(&self.server, &format!("fdrl_held_{n:04}")))
                .collect();
            for config in &configs {
                provider.get_token(config)?;
            }
            let one = runs(REPS, || {
                Ok(threaded(&provider, &configs, 1, CACHED_BATCH).wall)
            })?;
            table.row(
                &format!("{held} config(s), 1 thread: wall time ÷ calls"),
                Kind::Time,
                one,
                Target::none(""),
            );
            let mut cpu = Vec::new();
            let wall = runs(REPS, || {
                let figures = threaded(&provider, &configs, 8, CACHED_BATCH);
                cpu.push(figures.cpu);
                Ok(figures.wall)
            })?;
            table.row(
                &format!("{held} config(s), 8 threads: wall time ÷ (8·N calls)"),
                Kind::Time,
                wall,
                Target::none(""),
            );
            table.row(
                &format!("{held} config(s), 8 threads: thread CPU time ÷ calls"),
                Kind::Time,
                Stats::of(cpu),
                Target::none(""),
            );
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

/// Repeats `run` (which returns one figure) `reps` times.
fn runs(reps: usize, mut run: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<Stats> {
    let figures = (0..reps)
        .map(|_| run())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Stats::of(figures))
}

fn per_call(elapsed: Duration, calls: usize) -> f64 {
    elapsed.as_nanos() as f64 / calls as f64
}

/// The per-call figures of one multi-threaded batch, in nanoseconds.
struct Threaded {
    /// Wall time from the first thread's start to the last one's end,
    /// divided by all calls.
    wall: f64,
    /// The threads' CPU time, summed, divided by all calls.
    cpu: f64,
}

/// `threads` threads, started together by a barrier, each making `calls`
/// cached `get_token` calls over `configs` in turn.
fn threaded(provider: &Provider, configs: &[String], threads: usize, calls: usize) -> Threaded {
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut next = t % configs.len();
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    let start = Instant::now();
                    for _ in 0..calls {
                        let _ = black_box(provider.get_token(black_box(&configs[next])));
                        next += 1;
                        if next == configs.len() {
                            next = 0;
                        }
                    }
                    let end = Instant::now();
                    (start, end, thread_cpu_time() - cpu)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .collect()
    });
    let start = results.iter().map(|r| r.0).min().expect("one thread");
    let end = results.iter().map(|r| r.1).max().expect("one thread");
    let cpu: Duration = results.iter().map(|r| r.2).sum();
    let total = threads * calls;
    Threaded {
        wall: per_call(end - start, total),
        cpu: per_call(cpu, total),
    }
}

/// The calling thread's CPU time.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// An agent configured as the host's (no redirects, statuses as
/// responses, no proxy, a global timeout).
fn bare_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// The exchange's request, sent bare: same headers and body, whole answer
/// read.
fn bare_post(agent: &ureq::Agent, server: &LoopbackServer) -> anyhow::Result<()> {
    let body = json!({
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": JWT,
        "federation_rule_id": "fdrl_bench",
        "organization_id": ORG,
    })
    .to_string();
    let mut response = agent
        .post(format!("{}/v1/oauth/token", server.url()))
        .header("content-type", "application/json")
        .header(
            "anthropic-beta",
            "oauth-2025-04-20,oidc-federation-2026-04-01",
        )
        .header("user-agent", "anthropic-wif/0.1.0")
        .send(body.as_bytes())?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec()?;
    ensure!(status == 200, "bare POST answered {status}");
    black_box(body);
    Ok(())
}

/// TCP connections (open or in TIME_WAIT) between 127.0.0.1 and `port`:
/// the distinct client-side ports seen from either end.
fn connections_to(port: u16) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let port_of = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|p| u16::from_str_radix(p, 16).ok())
    };
    let mut clients = HashSet::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(state)) =
            (fields.get(1), fields.get(2), fields.get(3))
        else {
            continue;
        };
        if *state == "0A" {
            continue; // LISTEN
        }
        match (port_of(local), port_of(remote)) {
            (Some(l), Some(r)) if l == port => {
                clients.insert(r);
            }
            (Some(l), Some(r)) if r == port => {
                clients.insert(l);
            }
            _ => {}
        }
    }
    clients.len()
}

/// The release `wif-host` next to this bench's executable, built (or
/// brought up to date) with cargo so that a stale binary is never measured.
fn wif_host_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .context("the bench executable has no target folder")?;
    let binary = release.join("wif-host");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // Without the variables cargo set for this bench: build scripts that
    // watch them (ring watches CARGO_PKG_NAME) would otherwise rebuild
    // their crates on every alternation with a plain `cargo build`.
    for (name, _) in std::env::vars_os() {
        if set_for_this_bench(&name.to_string_lossy()) {
            command.env_remove(&name);
        }
    }
    let status = command
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "anthropic-wif-host",
            "--bin",
            "wif-host",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => {}
        _ if binary.exists() => {
            eprintln!("warning: `cargo build --release` failed; using the existing wif-host");
        }
        _ => bail!("cannot build target/release/wif-host"),
    }
    ensure!(binary.exists(), "{} is missing", binary.display());
    Ok(binary)
}

/// Whether cargo sets the variable `name` for the benches it runs.
fn set_for_this_bench(name: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
    ];
    const NAMES: [&str; 3] = ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix)) || NAMES.contains(&name)
}

/// One finished `wif-host` process.
struct CliRun {
    wall: Duration,
    stdout: String,
}

/// Runs `program` (`wif-host`, or GNU time running it) with `home` as its
/// HOME and cache folder, and a bare environment.
fn run_cli(program: &Path, home: &Path, args: &[&OsStr]) -> anyhow::Result<CliRun> {
    let start = Instant::now();
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .output()?;
    let wall = start.elapsed();
    ensure!(
        output.status.success(),
        "wif-host failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(CliRun {
        wall,
        stdout: String::from_utf8_lossy(&output.stdout).trim().to_string(),
    })
}

/// The root crate's logic natively: std for files, variables, commands and
/// the clock, ureq for HTTP.
struct NativeCaps {
    agent: ureq::Agent,
}

impl NativeCaps {
    fn new() -> NativeCaps {
        NativeCaps {
            agent: bare_agent(),
        }
    }
}

impl anthropic_wif::Capabilities for NativeCaps {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, anthropic_wif::CapError> {
        use anthropic_wif::CapError;
        std::fs::read(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CapError::NotFound(path.into()),
            std::io::ErrorKind::IsADirectory => CapError::IsDirectory(path.into()),
            kind => CapError::Failed(format!("{path}: {kind}")),
        })
    }

    fn get_env(&self, name: &str) -> Result<Option<String>, anthropic_wif::CapError> {
        Ok(std::env::var(name).ok())
    }

    fn http_fetch(
        &self,
        request: &anthropic_wif::HttpRequest,
    ) -> Result<anthropic_wif::HttpResponse, anthropic_wif::CapError> {
        use anthropic_wif::{CapError, Header, HttpResponse};
        let failed = |e: ureq::Error| CapError::Failed(e.to_string());
        let mut response = match request.method.as_str() {
            "GET" => {
                let mut builder = self.agent.get(&request.url);
                for h in &request.headers {
                    builder = builder.header(&h.name, &h.value);
                }
                builder.call().map_err(failed)?
            }
            "POST" => {
                let mut builder = self.agent.post(&request.url);
                for h in &request.headers {
                    builder = builder.header(&h.name, &h.value);
                }
                builder.send(&request.body[..]).map_err(failed)?
            }
            other => return Err(CapError::Failed(format!("method {other}"))),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| {
                Some(Header {
                    name: name.as_str().to_string(),
                    value: value.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = response.body_mut().read_to_vec().map_err(failed)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn run_command(
        &self,
        argv: &[String],
        _timeout_ms: u32,
    ) -> Result<anthropic_wif::CommandOutput, anthropic_wif::CapError> {
        use anthropic_wif::CapError;
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| CapError::Failed("empty command".into()))?;
        let output = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| CapError::Failed(format!("{program}: {}", e.kind())))?;
        Ok(anthropic_wif::CommandOutput {
            exit_code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
        })
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default()
    }
}

/// Minimum, median and maximum of a figure over its runs.
#[derive(Debug, Clone, Copy)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

impl Stats {
    fn of(mut figures: Vec<f64>) -> Stats {
        assert!(!figures.is_empty(), "no figures");
        figures.sort_by(f64::total_cmp);
        let n = figures.len();
        let median = if n % 2 == 1 {
            figures[n / 2]
        } else {
            (figures[n / 2 - 1] + figures[n / 2]) / 2.0
        };
        Stats {
            min: figures[0],
            median,
            max: figures[n - 1],
        }
    }

    fn single(figure: f64) -> Stats {
        Stats {
            min: figure,
            median: figure,
            max: figure,
        }
    }
}

/// What a row's figures are.
#[derive(Clone, Copy)]
enum Kind {
    /// Nanoseconds.
    Time,
    /// Bytes, shown in MiB.
    MiB,
    /// Bytes, shown in KiB.
    KiB,
    /// A count.
    Count,
    /// A ratio.
    Ratio,
}

impl Kind {
    fn show(self, value: f64) -> String {
        match self {
            Kind::Time => {
                let (value, unit) = if value.abs() < 1e3 {
                    (value, "ns")
                } else if value.abs() < 1e6 {
                    (value / 1e3, "µs")
                } else if value.abs() < 1e9 {
                    (value / 1e6, "ms")
                } else {
                    (value / 1e9, "s")
                };
                format!("{} {unit}", three_digits(value))
            }
            Kind::MiB => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
            Kind::KiB => format!("{:.1} KiB", value / 1024.0),
            Kind::Count => format!("{value:.0}"),
            Kind::Ratio => format!("{value:.1}×"),
        }
    }
}

/// Three significant digits (at least the units).
fn three_digits(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A target for a row, judged on the median or on the maximum.
struct Target {
    limit: Option<(f64, bool)>,
    text: String,
}

impl Target {
    fn at_most(limit: f64, text: &str) -> Target {
        Target {
            limit: Some((limit, false)),
            text: text.into(),
        }
    }

    fn at_most_max(limit: f64, text: &str) -> Target {
        Target {
            limit: Some((limit, true)),
            text: text.into(),
        }
    }

    fn none(text: &str) -> Target {
        Target {
            limit: None,
            text: text.into(),
        }
    }
}

/// The table: sections of rows, and notes printed under it.
#[derive(Default)]
struct Table {
    lines: Vec<[String; 6]>,
    notes: Vec<String>,
}

impl Table {
    fn section(&mut self, title: &str) {
        self.lines.push([
            format!("— {title}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    fn row(&mut self, label: &str, kind: Kind, stats: Stats, target: Target) {
        let verdict = match target.limit {
            Some((limit, on_max)) => {
                let judged = if on_max { stats.max } else { stats.median };
                if judged <= limit { "met" } else { "MISSED" }
            }
            None => "",
        };
        self.lines.push([
            label.into(),
            kind.show(stats.min),
            kind.show(stats.median),
            kind.show(stats.max),
            target.text,
            verdict.into(),
        ]);
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn print(&self) {
        let header = ["figure", "min", "median", "max", "target", ""].map(String::from);
        let width = |column: usize| {
            std::iter::once(&header)
                .chain(&self.lines)
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..6).map(width).collect();
        let render = |line: &[String; 6]| {
            let mut out = pad(&line[0], widths[0], false);
            for column in 1..4 {
                out.push_str("  ");
                out.push_str(&pad(&line[column], widths[column], true));
            }
            out.push_str("  ");
            out.push_str(&pad(&line[4], widths[4], false));
            out.push_str("  ");
            out.push_str(&line[5]);
            out.trim_end().to_string()
        };
        println!("{}", render(&header));
        let rule: usize = widths.iter().sum::<usize>() + 2 * 5;
        println!("{}", "-".repeat(rule));
        for line in &self.lines {
            println!("{}", render(line));
        }
    }
}

fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(text.chars().count()));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

/// The 1-minute load average, from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "unknown".into())
}

/// The machine, in one line.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("machine: {cores} logical CPUs, {cpu}")
}
