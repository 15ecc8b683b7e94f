//! Shared by the end-to-end tests of `wif-host`: the config files they
//! start it with, and the official Python SDK some of them drive.
// Each test crate that includes this module uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use serde_json::{Value, json};

const SDK_VERSION: &str = "2.10.0";

/// A stand-in identity token (a JWT in shape only).
pub const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.dGVzdA";
/// The organization of the test configs.
pub const ORG: &str = "00000000-0000-4000-8000-000000000000";

/// Writes the identity-token file `DIR/jwt` and, for it, the `auth` block
/// `DIR/auth.json` with federation rule `rule` against `base_url` (the
/// token endpoint and the API), plus the fields of `extra` (an object, or
/// null for none) in `workload_identity_federation`. Returns the config's
/// path.
pub fn write_auth_config(dir: &Path, base_url: &str, rule: &str, extra: Value) -> PathBuf {
    let jwt = dir.join("jwt");
    std::fs::write(&jwt, JWT).unwrap();
    let mut federation = json!({"federation_rule_id": rule, "organization_id": ORG,
        "base_url": base_url, "identity_token": {"file": jwt}});
    if let Value::Object(extra) = extra {
        federation.as_object_mut().unwrap().extend(extra);
    }
    let config = dir.join("auth.json");
    std::fs::write(
        &config,
        json!({"type": "workload_identity_federation", "workload_identity_federation": federation})
            .to_string(),
    )
    .unwrap();
    config
}

/// Sends `signal` to `child`.
pub fn signal(child: &Child, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, signal).unwrap();
}

/// Sends SIGTERM to `child` and waits for it to end.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    signal(child, rustix::process::Signal::TERM);
    child.wait().unwrap()
}

/// The venv's python with the official SDK, created on first use. These
/// tests are `#[ignore]`d (they install from PyPI), so whoever runs them
/// asked for them: a missing `python3` fails them.
pub fn sdk_python() -> PathBuf {
    static SETUP: Mutex<()> = Mutex::new(());
    let _guard = SETUP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    assert!(
        Command::new("python3").arg("--version").output().is_ok(),
        "python3 is not installed: the official Python SDK cannot be tested"
    );
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .join("sdk-venv");
    let python = venv.join("bin").join("python");
    let installed = Command::new(&python)
        .args([
            "-c",
            &format!("import anthropic, sys; sys.exit(anthropic.__version__ != {SDK_VERSION:?})"),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "python3 -m venv {} failed",
            venv.display()
        );
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("anthropic=={SDK_VERSION}"))
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pip install anthropic=={SDK_VERSION} failed"
        );
    }
    python
}

/// The SDK client script, driven line by line.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Client {
    /// `Anthropic()` resolving its credentials from the profile `profile`
    /// of the config folder `dir`.
    pub fn start_with_profile(python: &Path, dir: &Path, profile: &str, home: &Path) -> Client {
        let mut command = Client::command(python, home);
        command
            .env("ANTHROPIC_CONFIG_DIR", dir)
            .env("ANTHROPIC_PROFILE", profile);
        Client::spawn(command)
    }

    /// `Anthropic(base_url=…, api_key=…)` (`how` is `api_key`) or
    /// `Anthropic(base_url=…, auth_token=…)` (`how` is `auth_token`).
    pub fn start_with_key(python: &Path, base_url: &str, how: &str, key: &str) -> Client {
        let home = std::env::temp_dir();
        let mut command = Client::command(python, &home);
        command.args([base_url, how, key]);
        Client::spawn(command)
    }

    fn command(python: &Path, home: &Path) -> Command {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_python/client.py");
        let mut command = Command::new(python);
        command
            .arg(script)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home);
        command
    }

    fn spawn(mut command: Command) -> Client {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends `command` and returns its one-line answer.
    pub fn ask(&mut self, command: &str) -> Value {
        self.send(command);
        self.answer()
    }

    /// Sends `command`.
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
    }

    /// The next line the client printed.
    pub fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("the SDK client answered {line:?}"))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
