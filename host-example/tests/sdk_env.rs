//! `wif-host token` configured by the official SDKs' environment variables,
//! and a config file's precedence over them.

#![deny(unsafe_code)]

use std::process::{Command, Output};

use anthropic_wif_host::loopback::{LoopbackServer, token_endpoint};

const ENV_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJlbnYifQ.ZW52";
const FILE_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJmaWxlIn0.ZmlsZQ";

fn wif_host(args: &[&str], envs: &[(&str, String)], cache: &std::path::Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wif-host"));
    command
        .args(["token", "--no-cache"])
        .args(args)
        .env("XDG_CACHE_HOME", cache);
    for name in anthropic_wif_host::config_file::SDK_VARIABLES {
        command.env_remove(name);
    }
    command
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap()
}

fn exchanged(server: &LoopbackServer) -> serde_json::Value {
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    serde_json::from_slice(&requests[0].body).unwrap()
}

fn sdk_vars(server: &LoopbackServer) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_fromenv".into()),
        (
            "ANTHROPIC_ORGANIZATION_ID",
            "00000000-0000-4000-8000-000000000000".into(),
        ),
        ("ANTHROPIC_SERVICE_ACCOUNT_ID", "svac_fromenv".into()),
        ("ANTHROPIC_WORKSPACE_ID", String::new()),
        ("ANTHROPIC_IDENTITY_TOKEN", ENV_JWT.into()),
        ("ANTHROPIC_BASE_URL", server.url()),
    ]
}

#[test]
fn the_sdk_variables_alone_mint_a_token() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = wif_host(&[], &sdk_vars(&server), dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sk-ant-oat01-demo-1"
    );
    let body = exchanged(&server);
    assert_eq!(body["assertion"], ENV_JWT);
    assert_eq!(body["federation_rule_id"], "fdrl_fromenv");
    assert_eq!(body["service_account_id"], "svac_fromenv");
    assert!(
        body.get("workspace_id").is_none(),
        "an empty variable is unset"
    );
}

#[test]
fn the_token_file_variable_wins_over_the_token_variable() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, FILE_JWT).unwrap();
    let mut vars = sdk_vars(&server);
    vars.push((
        "ANTHROPIC_IDENTITY_TOKEN_FILE",
        file.to_string_lossy().into_owned(),
    ));
    let out = wif_host(&[], &vars, dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(exchanged(&server)["assertion"], FILE_JWT);
}

#[test]
fn a_config_file_wins_over_the_sdk_variables() {
    let server = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, FILE_JWT).unwrap();
    let config = dir.path().join("auth.json");
    let auth = serde_json::json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_fromfile",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": server.url(),
            "identity_token": {"file": file},
        }
    });
    std::fs::write(&config, auth.to_string()).unwrap();
    let out = wif_host(
        &["--config", config.to_str().unwrap()],
        &sdk_vars(&server),
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = exchanged(&server);
    assert_eq!(body["federation_rule_id"], "fdrl_fromfile");
    assert_eq!(body["assertion"], FILE_JWT);
    assert!(body.get("service_account_id").is_none());
}

#[test]
fn neither_a_file_nor_the_variables_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = wif_host(&[], &[], dir.path());
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ANTHROPIC_FEDERATION_RULE_ID is not set"),
        "{stderr}"
    );
}
