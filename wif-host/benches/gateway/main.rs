//! `cargo bench --bench gateway`: what `wif-host gateway` adds to a
//! request, how it carries many streams at once, and what a forwarded
//! request costs it in CPU.
//!
//! A real `wif-host gateway` child (the release binary cargo builds for
//! this bench) forwards to a loopback stand-in that is both the token
//! endpoint and the Messages API (`upstream`). The bench measures, in one
//! run:
//!
//! - the latency of a non-streaming request directly to the stand-in and
//!   through the gateway, interleaved, both on connections kept alive
//!   (`latency`); the added latency is the difference of the medians and
//!   of the 99th percentiles;
//! - the gateway's CPU time per forwarded request over those rounds;
//! - [`STREAMS`] concurrent server-sent-event streams through the gateway,
//!   each [`DELTAS`] events [`INTERVAL`] apart, every event checked
//!   (`streams`), with the gateway's peak memory (`VmHWM`), threads and
//!   CPU time.
//!
//! Networking is loopback only (127.0.0.1). The method and the last
//! recorded results are in `docs/BENCHMARKS.md` ("Gateway").

#![deny(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::ensure;

mod latency;
mod process;
mod streams;
mod upstream;

use anthropic_wif_test_support::machine::{load_average, machine};
use process::GatewayProcess;
use upstream::{Streaming, Upstream};

/// Untimed rounds before the latency rounds.
const WARM_UP: usize = 500;
/// Timed latency rounds (one request of each series per round).
const ROUNDS: usize = 5000;
/// Concurrent streams.
const STREAMS: usize = 1000;
/// Text deltas per stream.
const DELTAS: usize = 20;
/// The stand-in's pause before each delta.
const INTERVAL: Duration = Duration::from_millis(50);
/// The targets of docs/BENCHMARKS.md.
const TARGET_MEDIAN_US: f64 = 150.0;
const TARGET_P99_US: f64 = 1000.0;
const TARGET_PEAK_MIB: f64 = 64.0;

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    raise_open_file_limit();
    let load_before = load_average();
    let dir = tempfile::tempdir()?;
    let upstream = Upstream::start(Streaming {
        deltas: DELTAS,
        interval: INTERVAL,
    })?;
    let gateway = GatewayProcess::start(dir.path(), upstream.url())?;
    let at_start = gateway.memory()?;

    let cpu_before = gateway.cpu_time()?;
    let series = latency::measure(
        upstream.url(),
        gateway.url(),
        gateway.key(),
        WARM_UP,
        ROUNDS,
    )?;
    let cpu_latency = gateway.cpu_time()? - cpu_before;
    let after_latency = gateway.memory()?;
    let cpu_before = gateway.cpu_time()?;
    let round = streams::run(&gateway, STREAMS, DELTAS)?;
    let cpu_streams = gateway.cpu_time()? - cpu_before;
    let after_streams = gateway.memory()?;
    let (exit, exit_time) = gateway.terminate()?;

    println!();
    println!("{}", machine());
    println!();
    println!(
        "— latency of one non-streaming request ({ROUNDS} of each, interleaved, after {WARM_UP} untimed; connections kept alive)"
    );
    let direct = Percentiles::of(&series.direct);
    let through = Percentiles::of(&series.through_gateway);
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>10}",
        "", "min", "median", "p99", "max"
    );
    for (label, p) in [
        ("direct, connection kept alive", &direct),
        ("through wif-host gateway, connection kept alive", &through),
    ] {
        println!(
            "{label:<58} {:>10} {:>10} {:>10} {:>10}",
            micros(p.min),
            micros(p.median),
            micros(p.p99),
            micros(p.max)
        );
    }
    let added_median = through.median - direct.median;
    let added_p99 = through.p99 - direct.p99;
    println!(
        "added by the gateway: median {} (target ≤ {TARGET_MEDIAN_US:.0} µs: {}), p99 {} (target ≤ {TARGET_P99_US:.0} µs: {})",
        micros(added_median),
        verdict(added_median <= TARGET_MEDIAN_US),
        micros(added_p99),
        verdict(added_p99 <= TARGET_P99_US)
    );
    let forwarded = (WARM_UP + ROUNDS) as f64;
    println!(
        "gateway CPU time per forwarded request (user + system, {} requests): {}",
        WARM_UP + ROUNDS,
        micros(cpu_latency.as_secs_f64() * 1e6 / forwarded)
    );

    println!();
    println!(
        "— {STREAMS} concurrent streams through the gateway ({DELTAS} deltas each, {} ms apart)",
        INTERVAL.as_millis()
    );
    println!(
        "completed with every event in order: {} of {STREAMS}",
        round.completed.len()
    );
    for failure in round.failed.iter().take(10) {
        println!("  failed: {failure}");
    }
    let ideal = INTERVAL * DELTAS as u32;
    if !round.completed.is_empty() {
        let first: Vec<Duration> = round.completed.iter().map(|s| s.first_event).collect();
        let total: Vec<Duration> = round.completed.iter().map(|s| s.total).collect();
        let (first, total) = (Percentiles::of(&first), Percentiles::of(&total));
        println!(
            "{:<58} {:>10} {:>10} {:>10} {:>10}",
            "", "min", "median", "p99", "max"
        );
        println!(
            "{:<58} {:>10} {:>10} {:>10} {:>10}",
            "time to the first event",
            micros(first.min),
            micros(first.median),
            micros(first.p99),
            micros(first.max)
        );
        println!(
            "{:<58} {:>10} {:>10} {:>10} {:>10}",
            format!(
                "time to the end (the stand-in takes {} ms)",
                ideal.as_millis()
            ),
            micros(total.min),
            micros(total.median),
            micros(total.p99),
            micros(total.max)
        );
    }
    println!(
        "wall time for all {STREAMS}: {:.0} ms",
        round.wall.as_secs_f64() * 1e3
    );
    println!(
        "gateway threads, most seen (sampled every 10 ms): {}",
        round.peak_threads
    );
    println!(
        "gateway CPU time for the {STREAMS} streams: {:.0} ms ({} per stream of {} events)",
        cpu_streams.as_secs_f64() * 1e3,
        micros(cpu_streams.as_secs_f64() * 1e6 / STREAMS as f64),
        DELTAS + 2
    );

    println!();
    println!("— gateway process memory (/proc/PID/status)");
    for (label, memory) in [
        (
            "after start (compiled component loaded from the cache)",
            at_start,
        ),
        ("after the latency rounds", after_latency),
        ("after the concurrent streams", after_streams),
    ] {
        println!(
            "{label:<58} VmRSS {:>6.1} MiB   VmHWM (peak so far) {:>6.1} MiB",
            memory.rss_kib as f64 / 1024.0,
            memory.peak_kib as f64 / 1024.0
        );
    }
    let peak_mib = after_streams.peak_kib as f64 / 1024.0;
    println!(
        "peak with {STREAMS} streams: {peak_mib:.1} MiB (target ≤ {TARGET_PEAK_MIB:.0} MiB: {})",
        verdict(peak_mib <= TARGET_PEAK_MIB)
    );
    println!();
    println!(
        "SIGTERM: exited with {exit} after {:.0} ms",
        exit_time.as_secs_f64() * 1e3
    );
    println!(
        "load average (1 min) before: {load_before}, after: {}",
        load_average()
    );
    println!("total bench time: {:.1} s", started.elapsed().as_secs_f64());
    ensure!(
        round.failed.is_empty() && round.completed.len() == STREAMS,
        "not every stream completed"
    );
    ensure!(
        exit.success(),
        "the gateway did not exit cleanly on SIGTERM"
    );
    Ok(())
}

/// `met` or `missed`.
fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

/// Raises the bench's open-file limit to its hard limit: each stream
/// takes a client and a stand-in descriptor here.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// Order statistics of a series, in microseconds.
struct Percentiles {
    min: f64,
    median: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(values: &[Duration]) -> Percentiles {
        let mut sorted: Vec<f64> = values.iter().map(|d| d.as_secs_f64() * 1e6).collect();
        sorted.sort_by(f64::total_cmp);
        // Nearest rank.
        let rank = |q: f64| {
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        Percentiles {
            min: sorted[0],
            median: rank(0.5),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Microseconds, shown in µs or ms.
fn micros(value: f64) -> String {
    if value.abs() >= 10_000.0 {
        format!("{:.1} ms", value / 1e3)
    } else {
        format!("{value:.0} µs")
    }
}
