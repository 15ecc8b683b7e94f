//! The measured `wif-host gateway`: the release binary cargo built for
//! this bench, as a child process with a bare environment, its memory as
//! Linux reports it in `/proc/PID/status` and its CPU time from
//! `/proc/PID/stat`.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::json;

/// A stand-in identity token (a JWT in shape only).
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZW5jaCJ9.YmVuY2g";

/// A running `wif-host gateway`.
pub struct GatewayProcess {
    child: Child,
    url: String,
    key: String,
}

impl GatewayProcess {
    /// Writes a config forwarding to `upstream` into `dir`, fills the
    /// compile cache with one `wif-host token` run (so that the gateway
    /// loads the compiled component instead of compiling it, as every
    /// start after the first does), then starts the gateway on a free
    /// loopback port with a new client key file and waits until it accepts
    /// connections.
    pub fn start(dir: &Path, upstream: &str) -> anyhow::Result<GatewayProcess> {
        let jwt = dir.join("jwt");
        std::fs::write(&jwt, JWT)?;
        let config = dir.join("auth.json");
        std::fs::write(
            &config,
            json!({"type": "workload_identity_federation", "workload_identity_federation": {
                "federation_rule_id": "fdrl_bench", "organization_id": "3f2b8c1e-5d4a-4e6b-9c7d-0a1b2c3d4e5f",
                "base_url": upstream, "identity_token": {"file": jwt}}})
            .to_string(),
        )?;
        let home = dir.join("home");
        std::fs::create_dir_all(&home)?;
        let warm = command(&home)
            .args(["token", "--no-cache", "--config"])
            .arg(&config)
            .output()?;
        ensure!(
            warm.status.success(),
            "wif-host token failed: {}",
            String::from_utf8_lossy(&warm.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let key_file = dir.join("client.key");
        let child = command(&home)
            .args(["gateway", "--listen", &address, "--config"])
            .arg(&config)
            .arg("--client-key-file")
            .arg(&key_file)
            .stderr(Stdio::null())
            .spawn()?;
        let mut gateway = GatewayProcess {
            child,
            url: format!("http://{address}"),
            key: String::new(),
        };
        let start = Instant::now();
        while TcpStream::connect(&address).is_err() {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the gateway did not listen on {address} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        gateway.key = std::fs::read_to_string(&key_file)?.trim().to_string();
        Ok(gateway)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The gateway's CPU time so far (user and system).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .context("/proc/PID/stat of the gateway")?;
        let after_name = stat
            .rfind(')')
            .map(|end| &stat[end + 2..])
            .context("/proc/PID/stat")?;
        let fields: Vec<&str> = after_name.split(' ').collect();
        // utime and stime, fields 14 and 15 of the line, in clock ticks.
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        let per_second = rustix::param::clock_ticks_per_second();
        Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
    }

    /// The gateway's memory now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .context("/proc/PID/status of the gateway")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{name} in /proc/PID/status"))?;
            let number = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{name} in /proc/PID/status"))?;
            Ok(number)
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
            threads: field("Threads:")?,
        })
    }

    /// Sends SIGTERM and waits for the exit; the exit status and how long
    /// the exit took.
    pub fn terminate(mut self) -> anyhow::Result<(ExitStatus, Duration)> {
        let start = Instant::now();
        // The pid is our child's, not yet waited for.
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("kill failed")?;
        let status = self.child.wait()?;
        Ok((status, start.elapsed()))
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The memory of a process, from `/proc/PID/status`.
#[derive(Clone, Copy)]
pub struct Memory {
    /// Resident set now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident set so far (`VmHWM`), KiB.
    pub peak_kib: u64,
    /// Threads now.
    pub threads: u64,
}

/// `wif-host` (cargo's release build for this bench) with `home` as HOME
/// and a bare environment.
fn command(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command
        .env_clear()
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdin(Stdio::null());
    command
}
