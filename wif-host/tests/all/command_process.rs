//! The command source against hostile process setups, end to end: the real
//! `wif-host` started with `SIGCHLD` ignored, and a command whose
//! grandchild escapes its process group and holds the output pipes.
//!
//! The only timing asserted is a generous bound that tells a call that
//! returned at its timeout from one that waited for a 30 s grandchild.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::wif_host;
use anthropic_wif_host::{Error, SourceKind};
use anthropic_wif_test_support::*;
use serde_json::{Value, json};

#[test]
fn wif_host_started_with_sigchld_ignored_runs_a_command_source() {
    let tokens = token_server();
    let files = Files::new();
    let config = files.write(
        "config.json",
        auth(&tokens.url(), json!({ "command": ["echo", JWT] })).to_string(),
    );
    let policy = files.write(
        "policy.toml",
        format!(
            "[commands]\nallow = [[\"echo\"]]\n[http]\nallow_origins = [{}]\n",
            q(tokens.url())
        ),
    );
    let mut command = Command::new(wif_host());
    command
        .arg("token")
        .arg("--config")
        .arg(&config)
        .arg("--policy")
        .arg(&policy)
        .args(["--format", "json", "--no-cache"])
        .env("XDG_CACHE_HOME", files.dir())
        .stdin(Stdio::null());
    // SAFETY: signal(2) is async-signal-safe, and this runs in the forked
    // child only, before it executes wif-host (which inherits "ignored").
    // (rustix has no safe `signal`.)
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }

    let output = command.output().expect("wif-host runs");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{:?} (139 was the crash)\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_str(stdout.trim()).expect("JSON on stdout");
    assert_eq!(printed["access_token"], "sk-ant-oat01-demo-1");
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);
}

#[test]
fn a_grandchild_that_escapes_the_group_cannot_hold_the_source_past_the_timeout() {
    let tokens = token_server();
    let files = Files::new();
    let pid_file = files.dir().join("escaped.pid");
    let provider = provider(policy(&format!(
        "[commands]\nallow = [[\"sh\", \"-c\"]]\ntimeout_secs = 2\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));
    let script = format!(
        "setsid sh -c 'echo $$ > {}; exec sleep 30' & sleep 0.3; echo {JWT}",
        pid_file.display()
    );

    let start = Instant::now();
    let error = provider
        .get_token(&config(
            &tokens.url(),
            json!({ "command": ["sh", "-c", script] }),
        ))
        .unwrap_err();
    let took = start.elapsed();
    let escaped: i32 = std::fs::read_to_string(&pid_file)
        .expect("the grandchild wrote its pid")
        .trim()
        .parse()
        .unwrap();
    let escaped = rustix::process::Pid::from_raw(escaped).expect("a positive pid");
    let _ = rustix::process::kill_process(escaped, rustix::process::Signal::KILL);

    let Error::SourceFailed { kind, message, .. } = &error else {
        panic!("expected a source failure, got {error:?}");
    };
    assert_eq!(*kind, SourceKind::Command);
    assert!(message.contains("did not finish in time"), "{message}");
    assert!(message.contains("did not finish within 2s"), "{message}");
    assert!(took < Duration::from_secs(8), "the call took {took:?}");
    assert!(exchanges(&tokens).is_empty());
}
