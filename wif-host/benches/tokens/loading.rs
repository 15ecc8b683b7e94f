//! Loading the component: compiling, loading a precompiled artifact,
//! instantiating.

use super::*;

impl Bench {
    /// Loading the component: compile, deserialize, instantiate.
    pub(crate) fn loading(&self, table: &mut Table) -> anyhow::Result<()> {
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
        self.instantiation(table, &warm, "", Target::at_most(5_000.0, "≤ 5 µs"))
    }

    /// The wasmtime settings side by side: for wasmtime's default
    /// allocation (on demand) and the one chosen (a pool with copy-on-write
    /// memory images), the through-component call and instantiation. The
    /// component model's async support is not compiled into this build of
    /// wasmtime, so its cost cannot be shown here (a note says so).
    pub(crate) fn engine_settings(&self, table: &mut Table) -> anyhow::Result<()> {
        table.section("wasmtime settings (each row: the settings of its label)");
        table.note(
            "component-model async support is not compiled into this build of wasmtime \
             (no component-model-async feature): it is off in every row, and \
             Config::concurrency_support(true) fails here"
                .into(),
        );
        let cache = self.dir.path().join("compiled");
        let settings = [
            ("on-demand allocation (wasmtime's default)", None),
            (
                "pooling + copy-on-write (chosen)",
                Some(anthropic_wif_host::provider::DEFAULT_POOLED_INSTANCES),
            ),
        ];
        let config = self.config(&self.server, "fdrl_settings");
        let policy = self.policy(&config)?;
        for (label, pooling) in settings {
            let provider = Provider::builder()
                .compile_cache(cache.clone())
                .pooling(pooling)
                .policy(policy.clone())
                .build()?;
            let client = provider.client(&config)?;
            client.token()?;
            let exchanges = self.server.requests().len();
            let call = through_component(&client)?;
            ensure!(
                self.server.requests().len() == exchanges,
                "the settings rows made exchanges"
            );
            table.row(
                &format!("{label}: through the component, cache hit"),
                Kind::Time,
                call,
                Target::none(""),
            );
            self.instantiation(table, &provider, &format!("{label}: "), Target::none(""))?;
        }
        Ok(())
    }

    /// Instantiation from `warm`'s `InstancePre`: the first call of fresh
    /// providers minus the same call on a warm one.
    fn instantiation(
        &self,
        table: &mut Table,
        warm: &Provider,
        label: &str,
        target: Target,
    ) -> anyhow::Result<()> {
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
        let instantiate = runs(REPS, || {
            let providers: Vec<Provider> = (0..batch)
                .map(|_| warm.with_policy(Policy::default()))
                .collect();
            let start = Instant::now();
            for provider in &providers {
                provider.warm_up()?;
            }
            let elapsed = start.elapsed();
            drop(providers);
            Ok(per_call(elapsed, batch))
        })?;
        table.row(
            &format!("{label}instantiate from InstancePre (Provider::warm_up)"),
            Kind::Time,
            instantiate,
            target,
        );
        if !label.is_empty() {
            return Ok(());
        }
        let mut first_calls = Vec::new();
        let mut warm_calls = Vec::new();
        let difference = runs(REPS, || {
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
            "a fresh instance's first call over a warm one's (difference of the two)",
            Kind::Time,
            difference,
            Target::none("instantiation + the guest's first-call set-up"),
        );
        Ok(())
    }
}
