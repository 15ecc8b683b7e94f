//! At every log level, `wif-host` never writes a token, an identity token or
//! an expanded `${VAR}` secret to stderr.

#![deny(unsafe_code)]

use std::process::Command;

use anthropic_wif_host::loopback::{LoopbackServer, Reply, identity_endpoint, token_endpoint};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJsb2cifQ.c2lnbmF0dXJl";
const REQUEST_TOKEN: &str = "request-token-secret-4242";
const QUERY_SECRET: &str = "query-secret-1717";

fn run(config: &serde_json::Value, envs: &[(&str, String)], level: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wif-host"))
        .args(["token", "--no-cache", "--format", "json", "--config"])
        .arg(&path)
        .env("WIF_LOG", level)
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn url_config(base_url: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_logs",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": base_url,
            "identity_token": {
                "url": "${LOG_TEST_REQUEST_URL}&audience=https://api.anthropic.com",
                "headers": {"Authorization": "bearer ${LOG_TEST_REQUEST_TOKEN}"},
                "response_field": "value"
            }
        }
    })
}

fn assert_clean(stderr: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!stderr.contains(secret), "`{secret}` in stderr:\n{stderr}");
    }
}

#[test]
fn a_successful_url_flow_logs_no_secret_at_trace_level() {
    let tokens = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let identity = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let envs = [
        (
            "LOG_TEST_REQUEST_URL",
            format!("{}/token?secret={QUERY_SECRET}", identity.url()),
        ),
        ("LOG_TEST_REQUEST_TOKEN", REQUEST_TOKEN.to_string()),
    ];
    for level in ["trace", "debug", "info", "warn"] {
        let (ok, stdout, stderr) = run(&url_config(&tokens.url()), &envs, level);
        assert!(ok, "{stderr}");
        assert!(stdout.contains("sk-ant-oat01-demo-"), "{stdout}");
        assert_clean(
            &stderr,
            &["sk-ant-oat01-demo-", JWT, REQUEST_TOKEN, QUERY_SECRET],
        );
        if level == "trace" {
            assert!(stderr.contains("DEBUG"), "trace logging is on: {stderr}");
        }
    }
    assert_eq!(tokens.requests().len(), 4);
}

#[test]
fn a_failing_identity_endpoint_that_echoes_the_request_logs_no_secret() {
    let tokens = LoopbackServer::start(token_endpoint(3600)).unwrap();
    let identity = LoopbackServer::start(|request| {
        Reply::text(
            500,
            &format!("failed {} {:?}", request.path, request.headers),
        )
    })
    .unwrap();
    let envs = [
        (
            "LOG_TEST_REQUEST_URL",
            format!("{}/token?secret={QUERY_SECRET}", identity.url()),
        ),
        ("LOG_TEST_REQUEST_TOKEN", REQUEST_TOKEN.to_string()),
    ];
    let (ok, _, stderr) = run(&url_config(&tokens.url()), &envs, "trace");
    assert!(!ok);
    assert!(stderr.contains("returned status 500"), "{stderr}");
    assert!(
        stderr.contains("${LOG_TEST_REQUEST_URL}"),
        "the URL as written: {stderr}"
    );
    assert_clean(&stderr, &[REQUEST_TOKEN, QUERY_SECRET]);
    assert!(tokens.requests().is_empty());
}
