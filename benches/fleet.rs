//! `cargo bench --bench fleet`: a fleet of processes on one token endpoint,
//! simulated on a clock that only moves when told to.
//!
//! Each simulated process runs the real cache logic: the component's
//! [`anthropic_wif::Provider`] (refresh windows, backoff, single-use
//! assertions), built natively, and the host's [`RefreshSpread`] deciding
//! when the process asks it again. Each process has an identity token of its
//! own that its issuer rotates on every read, and makes one API call a
//! second. The token endpoint counts exchanges per second.
//!
//! Arguments (all optional): `--processes N` (10000), `--start-within S`
//! (10), `--hours H` (3), `--expires-in S` (3600), `--seed N` (1). The
//! results are in `docs/FLEET.md`.

#![deny(unsafe_code)]

use std::cell::Cell;
use std::collections::BTreeMap;

use anthropic_wif::{CapError, Capabilities, CommandOutput, HttpRequest, HttpResponse, Provider};
use anthropic_wif_host::spread::RefreshSpread;

/// The simulation's parameters.
struct Fleet {
    processes: u64,
    start_within_secs: u64,
    hours: u64,
    expires_in: u64,
    seed: u64,
}

/// One process's view of the world: its clock, its identity token and the
/// token endpoint, whose exchanges are counted per second.
struct SimCaps {
    now_ms: Cell<u64>,
    rotations: Cell<u64>,
    process: u64,
    expires_in: u64,
    exchanged_at: Cell<Option<u64>>,
}

impl Capabilities for SimCaps {
    fn read_file(&self, _: &str) -> Result<Vec<u8>, CapError> {
        self.rotations.set(self.rotations.get() + 1);
        Ok(format!("eyJ.process-{}.{}", self.process, self.rotations.get()).into_bytes())
    }

    fn get_env(&self, _: &str) -> Result<Option<String>, CapError> {
        Ok(None)
    }

    fn http_fetch(&self, _: &HttpRequest) -> Result<HttpResponse, CapError> {
        self.exchanged_at.set(Some(self.now_ms.get() / 1000));
        Ok(HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: format!(
                r#"{{"access_token":"sk-ant-oat01-sim","expires_in":{}}}"#,
                self.expires_in
            )
            .into_bytes(),
        })
    }

    fn run_command(&self, argv: &[String], _: u32) -> Result<CommandOutput, CapError> {
        Err(CapError::Denied(argv.join(" ")))
    }

    fn now_millis(&self) -> u64 {
        self.now_ms.get()
    }
}

/// A simulated process.
struct Process {
    caps: SimCaps,
    provider: Provider,
    spread: RefreshSpread,
    /// Until when (simulated Unix seconds) the host serves its token.
    serve_until: u64,
    started_ms: u64,
}

/// A small deterministic generator (SplitMix64), so that runs repeat.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const CONFIG: &str = r#"{"type":"workload_identity_federation","workload_identity_federation":{
    "federation_rule_id":"fdrl_fleet","organization_id":"00000000-0000-4000-8000-000000000000",
    "identity_token":{"file":"/var/run/secrets/anthropic.com/token"}}}"#;

/// Exchanges per simulated second, with or without the spread.
fn simulate(fleet: &Fleet, spread: bool) -> BTreeMap<u64, u64> {
    let mut random = Random(fleet.seed);
    let mut processes: Vec<Process> = (0..fleet.processes)
        .map(|process| {
            let started_ms = (random.fraction() * fleet.start_within_secs as f64 * 1000.0) as u64;
            let share = random.fraction();
            Process {
                caps: SimCaps {
                    now_ms: Cell::new(started_ms),
                    rotations: Cell::new(0),
                    process,
                    expires_in: fleet.expires_in,
                    exchanged_at: Cell::new(None),
                },
                provider: Provider::new(),
                spread: if spread {
                    RefreshSpread::of(share)
                } else {
                    RefreshSpread::none()
                },
                serve_until: 0,
                started_ms,
            }
        })
        .collect();
    let mut per_second = BTreeMap::new();
    for second in 0..fleet.hours * 3600 {
        for p in &mut processes {
            let now_ms = p.started_ms + second * 1000;
            if now_ms / 1000 < p.serve_until {
                continue;
            }
            p.caps.now_ms.set(now_ms);
            let token = p
                .provider
                .get_token(&p.caps, CONFIG)
                .expect("the simulated endpoint never fails");
            p.serve_until = p.spread.between(token.refresh_after, token.refresh_by);
            if let Some(at) = p.caps.exchanged_at.take() {
                *per_second.entry(at).or_insert(0) += 1;
            }
        }
    }
    per_second
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a whole number"))
        })
        .unwrap_or(default)
}

fn report(label: &str, fleet: &Fleet, per_second: &BTreeMap<u64, u64>) {
    let total: u64 = per_second.values().sum();
    let startup = fleet.start_within_secs + 1;
    let peak = |from: u64| {
        per_second
            .range(from..)
            .max_by_key(|(_, n)| **n)
            .map_or((0, 0), |(s, n)| (*s, *n))
    };
    let (at, overall) = peak(0);
    let (refresh_at, refresh_peak) = peak(startup);
    let busy = per_second.range(startup..).filter(|(_, n)| **n > 0).count();
    let hourly: Vec<String> = (0..fleet.hours)
        .map(|h| {
            let peak = per_second
                .range(h * 3600..(h + 1) * 3600)
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0);
            format!("{peak}/s")
        })
        .collect();
    println!(
        "{label:<16} exchanges {total:>7}  peak {overall:>5}/s (at {at} s)  \
         peak after start-up {refresh_peak:>5}/s (at {refresh_at} s)  \
         seconds with refreshes {busy:>5}  peak per hour [{}]",
        hourly.join(", ")
    );
}

fn main() {
    let fleet = Fleet {
        processes: arg("--processes", 10_000),
        start_within_secs: arg("--start-within", 10),
        hours: arg("--hours", 3),
        expires_in: arg("--expires-in", 3600),
        seed: arg("--seed", 1),
    };
    println!(
        "{} processes started within {} s, tokens of {} s, {} h simulated, seed {}",
        fleet.processes, fleet.start_within_secs, fleet.expires_in, fleet.hours, fleet.seed
    );
    report("without spread", &fleet, &simulate(&fleet, false));
    report("with spread", &fleet, &simulate(&fleet, true));
}
