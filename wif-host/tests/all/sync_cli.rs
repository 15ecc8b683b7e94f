//! `wif-host sync` and `--profile` end to end: the real binary, real files,
//! a loopback token endpoint, real signals.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anthropic_wif_loopback::{LoopbackServer, Recorded, Reply, token_endpoint};
use serde_json::{Value, json};

/// Generous: only a broken sidecar waits this long.
const PATIENCE: Duration = Duration::from_secs(120);

struct Setup {
    root: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    fn new(server: &LoopbackServer) -> Setup {
        let root = tempfile::tempdir().unwrap();
        let config = crate::support::write_auth_config(
            root.path(),
            &server.url(),
            "fdrl_sync",
            json!({"workspace_id": "wrkspc_sync"}),
        );
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        Setup { root, config }
    }

    fn dir(&self) -> PathBuf {
        self.root.path().join("sdk")
    }

    fn credentials(&self) -> PathBuf {
        self.dir().join("credentials/wif.json")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
        command
            .args(args)
            .env_clear()
            .env("HOME", self.root.path().join("home"));
        command
    }

    fn sync(&self, extra: &[&str]) -> Command {
        let mut command = self.command(&["sync", "--profile", "wif"]);
        command
            .arg("--config")
            .arg(&self.config)
            .arg("--config-dir")
            .arg(self.dir())
            .args(extra);
        command
    }

    fn token_in_file(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.credentials()).ok()?;
        let document: Value = serde_json::from_str(&text).unwrap();
        Some(document["access_token"].as_str().unwrap().to_string())
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn once_writes_the_profile_and_a_private_credentials_file() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let setup = Setup::new(&server);
    let out = setup.sync(&["--once"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(!stderr(&out).contains("sk-ant-oat01"), "{}", stderr(&out));
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(setup.credentials()).unwrap()).unwrap();
    assert_eq!(credentials["version"], "1.0");
    assert_eq!(credentials["type"], "oauth_token");
    assert_eq!(credentials["access_token"], "sk-ant-oat01-demo-1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = credentials["expires_at"].as_u64().unwrap();
    assert!(
        expires_at > now + 3000 && expires_at <= now + 3600,
        "{expires_at}"
    );
    assert_eq!(mode(&setup.credentials()), 0o600);
    assert_eq!(mode(&setup.dir().join("credentials")), 0o700);
    let profile = setup.dir().join("configs/wif.json");
    assert_eq!(mode(&profile), 0o644);
    let profile: Value = serde_json::from_str(&std::fs::read_to_string(profile).unwrap()).unwrap();
    assert_eq!(profile["authentication"], json!({"type": "user_oauth"}));
    assert_eq!(profile["base_url"], server.url());
    assert_eq!(profile["workspace_id"], "wrkspc_sync");
}

#[test]
fn once_without_a_token_fails_with_the_usual_code_and_writes_no_credentials() {
    let server = LoopbackServer::start(|_: &Recorded| Reply::text(503, "down")).unwrap();
    let setup = Setup::new(&server);
    let out = setup.sync(&["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(!setup.credentials().exists());
}

#[test]
fn a_contradicting_profile_is_refused_before_any_exchange() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let setup = Setup::new(&server);
    std::fs::create_dir_all(setup.dir().join("configs")).unwrap();
    std::fs::write(
        setup.dir().join("configs/wif.json"),
        json!({"authentication": {"type": "user_oauth", "client_id": "cli_1"}}).to_string(),
    )
    .unwrap();
    let out = setup.sync(&["--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("client_id"), "{}", stderr(&out));
    assert!(server.requests().is_empty());
}

/// Reads the child's stderr in a thread, line by line.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_sidecar_rotates_short_tokens_and_stops_cleanly_on_sigterm() {
    // 4 s tokens are replaced at half their life.
    let server = LoopbackServer::start(token_endpoint(4)).unwrap();
    let setup = Setup::new(&server);
    let mut child = setup.sync(&[]).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    wait_for(
        || setup.token_in_file().as_deref() == Some("sk-ant-oat01-demo-2"),
        "the second token",
    );
    let status = crate::support::terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let token = setup.token_in_file().unwrap();
    assert!(token.starts_with("sk-ant-oat01-demo-"), "{token}");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(said.iter().all(|l| !l.contains("sk-ant-oat01")), "{said:?}");
}

#[test]
fn a_failed_refresh_keeps_the_last_good_file_and_says_so() {
    let issued = AtomicU64::new(0);
    let tokens = token_endpoint(4);
    let server = LoopbackServer::start(move |request: &Recorded| {
        if issued.fetch_add(1, Ordering::SeqCst) == 0 {
            tokens(request)
        } else {
            Reply::text(503, "down")
        }
    })
    .unwrap();
    let setup = Setup::new(&server);
    let mut child = setup.sync(&[]).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    let start = Instant::now();
    let complaint = loop {
        let line = lines
            .recv_timeout(PATIENCE)
            .expect("a refresh failure on stderr");
        if line.contains("failed") {
            break line;
        }
        assert!(start.elapsed() < PATIENCE);
    };
    assert!(
        complaint.contains("keeping the last good file"),
        "{complaint}"
    );
    assert!(complaint.contains("retrying in"), "{complaint}");
    assert!(complaint.contains("credentials/wif.json"), "{complaint}");
    assert_eq!(
        setup.token_in_file().as_deref(),
        Some("sk-ant-oat01-demo-1")
    );
    let status = crate::support::terminate(&mut child);
    assert!(status.success(), "{status:?}");
    assert_eq!(
        setup.token_in_file().as_deref(),
        Some("sk-ant-oat01-demo-1")
    );
}

#[test]
fn token_reads_an_sdk_profile_and_refuses_a_synced_one() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let setup = Setup::new(&server);
    let configs = setup.dir().join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    std::fs::write(
        configs.join("fed.json"),
        json!({"organization_id": crate::support::ORG, "base_url": server.url(),
            "authentication": {"type": "oidc_federation", "federation_rule_id": "fdrl_profile",
            "identity_token": {"source": "file", "path": setup.root.path().join("jwt")}}})
        .to_string(),
    )
    .unwrap();
    let run = |args: &[&str]| {
        setup
            .command(args)
            .env("ANTHROPIC_CONFIG_DIR", setup.dir())
            .output()
            .unwrap()
    };
    let out = run(&["token", "--no-cache", "--profile", "fed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sk-ant-oat01-demo-1"
    );
    let body: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(body["federation_rule_id"], "fdrl_profile");

    let out = setup
        .sync(&["--once"])
        .env("ANTHROPIC_CONFIG_DIR", setup.dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["token", "--no-cache", "--profile", "wif"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("output of a sidecar"),
        "{}",
        stderr(&out)
    );
    let out = run(&["check", "--profile", "../etc"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("not a valid profile name"),
        "{}",
        stderr(&out)
    );
}
