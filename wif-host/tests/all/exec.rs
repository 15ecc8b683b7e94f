//! `wif-host exec`: a program run with a private gateway reaches the API
//! with the key it was given, never sees a token, gets the signals sent to
//! `wif-host`, and its status is `wif-host`'s. The official Python SDK as
//! the program is an `#[ignore]`d test (it installs the SDK from PyPI).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::gateway_cli::{Api, StandIn};

/// `wif-host exec --config ROOT/auth.json -- ARGV` with a clean
/// environment (HOME in `root`) plus `envs`.
fn exec(root: &Path, upstream: &str, argv: &[&str], envs: &[(&str, &str)]) -> Command {
    let config = crate::support::write_auth_config(root, upstream, "fdrl_exec", Value::Null);
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command
        .arg("exec")
        .arg("--config")
        .arg(&config)
        .arg("--")
        .args(argv)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", root)
        .envs(envs.iter().copied());
    command
}

/// A program that reports what it was given and calls the API through it.
const REPORTER: &str = r#"
import json, os, sys, urllib.request
env = dict(os.environ)
request = urllib.request.Request(
    env["ANTHROPIC_BASE_URL"] + "/v1/messages", data=b"{}", method="POST",
    headers={"x-api-key": env["ANTHROPIC_API_KEY"], "content-type": "application/json"})
status = urllib.request.urlopen(request).status
print(json.dumps({
    "status": status,
    "names": sorted(k for k in env if k.startswith("ANTHROPIC_")),
    "token_shaped": [k for k, v in env.items() if "sk-ant-" in v or v.startswith("eyJ")],
    "base_url": env["ANTHROPIC_BASE_URL"],
}))
sys.exit(7)
"#;

#[test]
fn the_program_reaches_the_api_with_its_key_and_never_sees_a_token() {
    let api = StandIn::start(Api::Echo);
    let root = tempfile::tempdir().unwrap();
    let output = exec(
        root.path(),
        &api.url,
        &["python3", "-c", REPORTER],
        &[
            ("ANTHROPIC_AUTH_TOKEN", "sk-ant-oat01-inherited"),
            ("ANTHROPIC_IDENTITY_TOKEN", "eyJpbmhlcml0ZWQ.e30.c2ln"),
            ("ANTHROPIC_PROFILE", "work"),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    let report: Value = serde_json::from_slice(&output.stdout).expect("the program's report");
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(
        report["names"],
        serde_json::json!(["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"]),
        "{report}"
    );
    assert_eq!(report["token_shaped"], serde_json::json!([]), "{report}");
    assert!(
        report["base_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http://127.0.0.1:")),
        "{report}"
    );

    let seen = api.seen();
    assert_eq!(seen.len(), 1, "one API call reached the upstream");
    let bearer = seen[0].header("authorization").unwrap_or_default();
    assert!(bearer.starts_with("Bearer sk-ant-oat01-"), "{bearer}");
    assert!(
        seen[0].header("x-api-key").is_none(),
        "the key went upstream"
    );
}

#[test]
fn signals_reach_the_program_and_its_status_is_wif_host_s() {
    let api = StandIn::start(Api::Echo);
    let root = tempfile::tempdir().unwrap();
    let program = "import signal, sys, time\n\
                   signal.signal(signal.SIGTERM, lambda *_: sys.exit(42))\n\
                   print('ready', flush=True)\n\
                   time.sleep(60)\n";
    let mut child = exec(root.path(), &api.url, &["python3", "-c", program], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    crate::support::signal(&child, rustix::process::Signal::TERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));

    // A program ended by a signal: 128 + its number, as a shell says.
    let mut child = exec(
        root.path(),
        &api.url,
        &[
            "python3",
            "-c",
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        ],
        &[],
    )
    .spawn()
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn a_program_that_cannot_start_is_127_and_named() {
    let api = StandIn::start(Api::Echo);
    let root = tempfile::tempdir().unwrap();
    let output = exec(root.path(), &api.url, &["/nonexistent/program"], &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(127), "{stderr}");
    assert!(
        stderr.contains("cannot run /nonexistent/program"),
        "{stderr}"
    );
}

#[test]
#[ignore = "installs the official anthropic SDK from PyPI; .ci/run runs it (cargo test -- --ignored)"]
fn the_official_sdk_runs_under_exec_with_no_credentials_of_its_own() {
    let python = crate::support::sdk_python();
    let api = StandIn::start(Api::Echo);
    let root = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk_python/client.py");
    let python = python.to_string_lossy().into_owned();
    let script = script.to_string_lossy().into_owned();
    let mut child = exec(root.path(), &api.url, &[&python, &script], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "create").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    drop(stdin);
    let answer: Value = serde_json::from_str(&line).expect("the SDK's answer");
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let seen = api.seen();
    let bearer = seen[0].header("authorization").unwrap_or_default();
    assert!(bearer.starts_with("Bearer sk-ant-oat01-"), "{bearer}");
    assert!(seen[0].header("x-api-key").is_none());
}
