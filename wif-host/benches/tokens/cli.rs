//! Cold `wif-host` processes: wall time and peak memory, with warm caches
//! and with `--no-cache`.

use super::*;

impl Bench {
    /// Cold `wif-host token` processes.
    pub(crate) fn cli(&self, table: &mut Table, binary: &Path) -> anyhow::Result<()> {
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
        // The folder holds the compiled artifact and the key that
        // authenticates it (`artifact-key`).
        let compiled = std::fs::read_dir(home.join("cache/anthropic-wif/compiled"))
            .map(|d| {
                d.flatten()
                    .filter(|entry| entry.file_name() != "artifact-key")
                    .count()
            })
            .unwrap_or(0);
        ensure!(
            compiled == 1,
            "the first run left {compiled} compiled components, not one"
        );

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
    pub(crate) fn peak_rss(
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
}

/// The `wif-host` binary cargo built for this bench (same profile, same
/// feature set), so a stale binary is never measured.
pub(crate) fn wif_host_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wif-host"))
}

/// One finished `wif-host` process.
pub(crate) struct CliRun {
    pub(crate) wall: Duration,
    pub(crate) stdout: String,
}

/// Runs `program` (`wif-host`, or GNU time running it) with `home` as its
/// HOME and cache folder, and a bare environment.
pub(crate) fn run_cli(program: &Path, home: &Path, args: &[&OsStr]) -> anyhow::Result<CliRun> {
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
