//! Cached tokens: the prepared handle and the host API with 1 to 8 threads,
//! through the component, natively, and how the cached path grows with
//! threads and configs.

use super::*;

impl Bench {
    /// Cached tokens: the prepared handle and the host API (1 to 8
    /// threads), through the component, natively. Returns the medians of
    /// `Client::token` on one thread and of the through-component call.
    pub(crate) fn cached(&self, table: &mut Table) -> anyhow::Result<(f64, f64)> {
        table.section("cached token");
        let config = self.config(&self.server, "fdrl_bench");
        let configs = std::slice::from_ref(&config);
        let provider = self.provider(&config)?;
        let client = provider.client(&config)?;
        client.token()?;
        let exchanges = self.server.requests().len();

        let handle = runs(REPS, || Ok(threaded_client(&client, 1, CACHED_BATCH).wall))?;
        table.row(
            "prepared handle Client::token, 1 thread",
            Kind::Time,
            handle,
            Target::at_most(25.0, "≤ 25 ns"),
        );
        for threads in [2, 8] {
            let mut cpu = Vec::new();
            runs(REPS, || {
                let figures = threaded_client(&client, threads, CACHED_BATCH);
                cpu.push(figures.cpu);
                Ok(figures.wall)
            })?;
            table.row(
                &format!("Client::token, {threads} threads: thread CPU time ÷ calls"),
                Kind::Time,
                Stats::of(cpu),
                Target::at_most(25.0, "≤ 25 ns (flat)"),
            );
        }

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

        let component = through_component(&client)?;
        table.row(
            "through the component (Client::token_uncached, component cache hit)",
            Kind::Time,
            component,
            Target::at_most(500.0, "≤ 500 ns"),
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
        Ok((handle.median, component.median))
    }

    /// Cached host API calls on 1, 2, 4 and 8 threads.
    pub(crate) fn thread_scaling(&self, table: &mut Table) -> anyhow::Result<()> {
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
    pub(crate) fn config_scaling(&self, table: &mut Table) -> anyhow::Result<()> {
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

/// `Client::token_uncached` on a component cache hit, per call: one trip
/// through the component.
pub(crate) fn through_component(client: &Client) -> anyhow::Result<Stats> {
    runs(REPS, || {
        let batch = 2_000;
        let start = Instant::now();
        for _ in 0..batch {
            let _ = black_box(black_box(client).token_uncached());
        }
        Ok(per_call(start.elapsed(), batch))
    })
}

/// The per-call figures of one multi-threaded batch, in nanoseconds.
pub(crate) struct Threaded {
    /// Wall time from the first thread's start to the last one's end,
    /// divided by all calls.
    pub(crate) wall: f64,
    /// The threads' CPU time, summed, divided by all calls.
    pub(crate) cpu: f64,
}

/// `threads` threads, started together by a barrier, each making `calls`
/// cached `get_token` calls over `configs` in turn.
pub(crate) fn threaded(
    provider: &Provider,
    configs: &[String],
    threads: usize,
    calls: usize,
) -> Threaded {
    threaded_calls(threads, calls, configs.len(), |next| {
        let _ = black_box(provider.get_token(black_box(&configs[next])));
    })
}

/// `threads` threads, started together by a barrier, each making `calls`
/// cached `Client::token` calls.
pub(crate) fn threaded_client(client: &Client, threads: usize, calls: usize) -> Threaded {
    threaded_calls(threads, calls, 1, |_| {
        let _ = black_box(black_box(client).token());
    })
}

/// `threads` threads, started together by a barrier, each making `calls`
/// calls of `call` with an index cycling through `0..cycle`.
fn threaded_calls(
    threads: usize,
    calls: usize,
    cycle: usize,
    call: impl Fn(usize) + Sync,
) -> Threaded {
    let barrier = Barrier::new(threads);
    let results: Vec<(Instant, Instant, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let call = &call;
                scope.spawn(move || {
                    let mut next = t % cycle;
                    barrier.wait();
                    let cpu = thread_cpu_time();
                    let start = Instant::now();
                    for _ in 0..calls {
                        call(next);
                        next += 1;
                        if next == cycle {
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
pub(crate) fn thread_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
