//! The official Python SDK (`anthropic` 2.10.0 from PyPI, installed into a
//! virtual environment in `target/sdk-venv`) reading the profile that
//! `wif-host sync` keeps, against loopback stand-ins for the token endpoint
//! and the Messages API.
//!
//! Needs `python3` with `venv`, and PyPI the first time (the environment is
//! reused afterwards). Where `python3` is absent the test says so on stdout
//! and passes; any other problem fails it.

#![deny(unsafe_code)]

use std::path::Path;
use std::process::Command;

use anthropic_wif_host::loopback::{LoopbackServer, Recorded, Reply, token_endpoint};
use serde_json::{Value, json};

mod support;

use support::{Client, sdk_python, write_auth_config};

/// The stand-in API: the token endpoint, and a Messages API answering with
/// the bearer token it received (so the test sees what the SDK sent).
fn stand_in(expires_in: u64) -> LoopbackServer {
    let tokens = token_endpoint(expires_in);
    LoopbackServer::start(move |request: &Recorded| {
        if request.path.starts_with("/v1/oauth/token") {
            return tokens(request);
        }
        if request.method != "POST" || request.path.split('?').next() != Some("/v1/messages") {
            return Reply::text(404, "not found");
        }
        let beta = request.header("anthropic-beta").unwrap_or_default();
        if !beta.split(',').any(|b| b.trim() == "oauth-2025-04-20") {
            return Reply::json(400, &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "no oauth beta"}}));
        }
        let Some(token) = request.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) else {
            return Reply::json(401, &json!({"type": "error", "error": {"type": "authentication_error", "message": "no bearer"}}));
        };
        Reply::json(
            200,
            &json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
                "content": [{"type": "text", "text": token}], "stop_reason": "end_turn",
                "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 1}}),
        )
    })
    .unwrap()
}

fn sync_once(config: &Path, dir: &Path, home: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_wif-host"))
        .args(["sync", "--once", "--profile", "wif", "--config"])
        .arg(config)
        .arg("--config-dir")
        .arg(dir)
        .env_clear()
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_official_sdk_sends_the_synced_token_and_picks_up_the_rotated_one() {
    let Some(python) = sdk_python() else {
        return;
    };
    // 100 s tokens sit inside the SDK's 120 s advisory window, so it
    // re-reads the credentials file on every call.
    let server = stand_in(100);
    let root = tempfile::tempdir().unwrap();
    let (dir, home) = (root.path().join("sdk"), root.path().join("home"));
    std::fs::create_dir_all(&home).unwrap();
    let config = write_auth_config(root.path(), &server.url(), "fdrl_sdk", Value::Null);

    sync_once(&config, &dir, &home);
    let mut client = Client::start_with_profile(&python, &dir, "wif", &home);
    assert_eq!(
        client.ask("create"),
        json!({"ok": true, "text": "sk-ant-oat01-demo-1"})
    );

    sync_once(&config, &dir, &home);
    assert_eq!(
        client.ask("create"),
        json!({"ok": true, "text": "sk-ant-oat01-demo-2"})
    );

    let requests = server.requests();
    let exchanges = requests
        .iter()
        .filter(|r| r.path == "/v1/oauth/token")
        .count();
    assert_eq!(exchanges, 2);
    let sent: Vec<&str> = requests
        .iter()
        .filter(|r| r.path.starts_with("/v1/messages"))
        .map(|r| r.header("authorization").unwrap_or_default())
        .collect();
    assert_eq!(
        sent,
        ["Bearer sk-ant-oat01-demo-1", "Bearer sk-ant-oat01-demo-2"]
    );
}
