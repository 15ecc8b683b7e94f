//! `cargo bench --bench gateway`: what `wif-host proxy` adds to a request,
//! and how it carries many streams at once.
//!
//! A real `wif-host proxy` child (the release binary cargo builds for this
//! bench) forwards to a loopback stand-in that is both the token endpoint
//! and the Messages API (`upstream`). The bench measures:
//!
//! - the latency of a non-streaming request directly to the stand-in and
//!   through the gateway, interleaved (`latency`); the added latency is the
//!   difference of the medians and of the 99th percentiles;
//! - [`STREAMS`] concurrent server-sent-event streams through the gateway,
//!   each [`DELTAS`] events [`INTERVAL`] apart, every event checked
//!   (`streams`), with the proxy's peak memory (`VmHWM`) and threads.
//!
//! Networking is loopback only (127.0.0.1). The method and the last
//! recorded results are in `docs/BENCHMARKS.md` ("Gateway").

#![deny(unsafe_code)]

use std::time::{Duration, Instant};

use anyhow::ensure;

mod latency;
mod proxy;
mod streams;
mod upstream;

use anthropic_wif_test_support::machine::{load_average, machine};
use proxy::ProxyProcess;
use upstream::{Streaming, Upstream};

/// Untimed rounds before the latency rounds.
const WARM_UP: usize = 300;
/// Timed latency rounds (one request of each series per round).
const ROUNDS: usize = 3000;
/// Concurrent streams.
const STREAMS: usize = 100;
/// Text deltas per stream.
const DELTAS: usize = 20;
/// The stand-in's pause before each delta.
const INTERVAL: Duration = Duration::from_millis(50);

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let dir = tempfile::tempdir()?;
    let upstream = Upstream::start(Streaming {
        deltas: DELTAS,
        interval: INTERVAL,
    })?;
    let proxy = ProxyProcess::start(dir.path(), upstream.url())?;
    let at_start = proxy.memory()?;

    let series = latency::measure(upstream.url(), proxy.url(), WARM_UP, ROUNDS)?;
    let after_latency = proxy.memory()?;
    let round = streams::run(&proxy, STREAMS, DELTAS)?;
    let after_streams = proxy.memory()?;
    let (exit, exit_time) = proxy.terminate()?;

    println!();
    println!("{}", machine());
    println!();
    println!(
        "— latency of one non-streaming request ({ROUNDS} of each, interleaved, after {WARM_UP} untimed)"
    );
    let direct = Percentiles::of(&series.direct_kept_alive);
    let fresh = Percentiles::of(&series.direct_new_connection);
    let gateway = Percentiles::of(&series.through_gateway);
    println!(
        "{:<58} {:>10} {:>10} {:>10} {:>10}",
        "", "min", "median", "p99", "max"
    );
    for (label, p) in [
        ("direct, connection kept alive", &direct),
        ("direct, new connection per request", &fresh),
        (
            "through wif-host proxy (new connection per request)",
            &gateway,
        ),
    ] {
        println!(
            "{label:<58} {:>10} {:>10} {:>10} {:>10}",
            micros(p.min),
            micros(p.median),
            micros(p.p99),
            micros(p.max)
        );
    }
    println!(
        "added by the gateway over direct, kept alive:    median {}, p99 {}",
        micros(gateway.median - direct.median),
        micros(gateway.p99 - direct.p99)
    );
    println!(
        "added by the gateway over direct, new connection: median {}, p99 {}",
        micros(gateway.median - fresh.median),
        micros(gateway.p99 - fresh.p99)
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
    for failure in &round.failed {
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
        "proxy threads, most seen (sampled every 10 ms): {}",
        round.peak_threads
    );

    println!();
    println!("— proxy process memory (/proc/PID/status)");
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
    ensure!(exit.success(), "the proxy did not exit cleanly on SIGTERM");
    Ok(())
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
