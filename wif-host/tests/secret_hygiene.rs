//! Secret hygiene across the suite: every error message (`Display` and
//! `Debug`), every log line at every level (the host's `tracing` events and
//! the HTTP client's `log` records, captured in-process at TRACE; the CLI's
//! stderr at `WIF_LOG=trace`) and every `Debug` print of tokens and
//! providers produced by a matrix of successes and failures is collected and
//! searched for the known secret values. Zero hits is the test.

#![deny(unsafe_code)]

use std::io::Write;
use std::sync::{Mutex, OnceLock, PoisonError};

use anthropic_wif_loopback::{LoopbackServer, Reply, identity_endpoint, token_endpoint};
use anthropic_wif_test_support::{
    CliRun, Files, JWT, REQUEST_TOKEN, config, file_policy, provider, q, token_through,
};
use serde_json::json;

/// Everything the in-process subscriber wrote.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a TRACE subscriber for `tracing` and, through it, for the `log`
/// crate (the HTTP client logs through `log`).
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init()
            .expect("the only subscriber of this test binary");
    });
}

const QUERY_SECRET: &str = "qs-9f8e7d6c5b4a";
const HEADER_SECRET: &str = "hdr-1a2b3c4d5e6f";
const ENV_TOKEN_SECRET: &str = "eyJhbGciOiJub25lIn0.env-token-secret.";

#[test]
fn no_secret_reaches_an_error_a_log_line_or_a_debug_print() {
    capture_logs();
    let mut shown: Vec<String> = Vec::new();
    let mut secrets: Vec<String> = vec![
        JWT.into(),
        REQUEST_TOKEN.into(),
        QUERY_SECRET.into(),
        HEADER_SECRET.into(),
        ENV_TOKEN_SECRET.into(),
    ];
    let files = Files::new();
    let token_file = files.write("token", JWT);
    let tokens = LoopbackServer::start(token_endpoint(3600)).unwrap();

    // A success: the token itself, its Debug, the provider's Debug.
    let ok = provider(file_policy(&[&token_file], &[&tokens.url()]));
    let cfg = config(&tokens.url(), json!({"file": token_file}));
    let token = ok.get_token(&cfg).unwrap();
    secrets.push(token.token.expose().to_string());
    shown.push(format!("{token:?} {token:#?} {ok:?}"));
    ok.invalidate(&cfg).unwrap();
    let again = ok.get_token(&cfg).unwrap();
    secrets.push(again.token.expose().to_string());
    shown.push(format!("{again:?}"));

    // A token endpoint that echoes everything it got, with a token in the
    // body, under every failing status class.
    for status in [200, 302, 400, 401, 500] {
        let echo = LoopbackServer::start(move |request| {
            let echoed = String::from_utf8_lossy(&request.body).into_owned();
            let body = if status == 200 {
                json!({"access_token": "sk-ant-oat01-echoed-secret", "token_type": "mac", "expires_in": 60, "echo": echoed})
            } else {
                json!({"error": echoed, "error_description": echoed, "access_token": "sk-ant-oat01-echoed-secret"})
            };
            Reply::json(status, &body).header("request-id", &echoed)
        })
        .unwrap();
        let failing = provider(file_policy(&[&token_file], &[&echo.url()]));
        let error = failing
            .get_token(&config(&echo.url(), json!({"file": token_file})))
            .unwrap_err();
        shown.push(format!("{error} {error:?}"));
    }
    secrets.push("sk-ant-oat01-echoed-secret".into());

    // An identity URL with a secret header, echoed back in a failure; and
    // denied. (The URL as written in a config is shown in errors by design;
    // secrets belong in `${VAR}` references, exercised through the CLI
    // below.)
    let identity = LoopbackServer::start(|request| {
        Reply::text(500, &format!("{} {:?}", request.path, request.headers))
    })
    .unwrap();
    let url = format!("{}/token?key=public", identity.url());
    let source =
        json!({"url": url, "headers": {"Authorization": format!("bearer {HEADER_SECRET}")}});
    let with_identity = provider(file_policy(&[], &[&tokens.url(), &identity.url()]));
    let error = with_identity
        .get_token(&config(&tokens.url(), source.clone()))
        .unwrap_err();
    shown.push(format!("{error} {error:?}"));
    let denied = provider(file_policy(&[], &[&tokens.url()]));
    let error = denied
        .get_token(&config(&tokens.url(), source))
        .unwrap_err();
    shown.push(format!("{error} {error:?}"));

    // The CLI at trace level: env-expanded secrets in the identity URL and
    // header, an env source, a success and a failure.
    let github = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let request_url = format!("{}/token?secret={QUERY_SECRET}", github.url());
    let url_auth = anthropic_wif_test_support::auth(
        &tokens.url(),
        json!({
            "url": "${HYGIENE_URL}&audience=x",
            "headers": {"Authorization": "bearer ${HYGIENE_TOKEN}"},
            "response_field": "value"
        }),
    );
    let url_policy = format!(
        "[env]\nallow = [\"HYGIENE_URL\", \"HYGIENE_TOKEN\"]\n[http]\nallow_origins = [{}, {}]\n",
        q(tokens.url()),
        q(github.url())
    );
    let env = [
        ("HYGIENE_URL", request_url.as_str()),
        ("HYGIENE_TOKEN", REQUEST_TOKEN),
        ("WIF_LOG", "trace"),
    ];
    let run = cli_token(&files, &url_auth, &url_policy, "raw", &env);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    secrets.push(run.stdout.trim().to_string());
    shown.push(run.stderr);
    let wrong_token = [
        ("HYGIENE_URL", request_url.as_str()),
        ("HYGIENE_TOKEN", HEADER_SECRET),
        ("WIF_LOG", "trace"),
    ];
    let run = cli_token(&files, &url_auth, &url_policy, "raw", &wrong_token);
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    shown.push(run.stderr);
    let env_auth =
        anthropic_wif_test_support::auth(&tokens.url(), json!({"env": "HYGIENE_ID_TOKEN"}));
    let env_policy = format!(
        "[env]\nallow = [\"HYGIENE_ID_TOKEN\"]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    );
    let run = cli_token(
        &files,
        &env_auth,
        &env_policy,
        "json",
        &[("HYGIENE_ID_TOKEN", ENV_TOKEN_SECRET), ("WIF_LOG", "trace")],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    shown.push(run.stderr);

    let log =
        String::from_utf8_lossy(&LOG.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    assert!(log.contains("DEBUG"), "debug logging was captured: {log}");
    shown.push(log);
    let mut hits = Vec::new();
    for text in &shown {
        for secret in &secrets {
            if !secret.is_empty() && text.contains(secret.as_str()) {
                hits.push(format!("`{secret}` in: {text}"));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "{} secret hits:\n{}",
        hits.len(),
        hits.join("\n\n")
    );
    println!(
        "searched {} outputs ({} bytes) for {} secrets: 0 hits",
        shown.len(),
        shown.iter().map(String::len).sum::<usize>(),
        secrets.len()
    );
}

/// Runs `wif-host token` (the binary cargo built for this test) on `auth`
/// and `policy` written in `files`.
fn cli_token(
    files: &Files,
    auth: &serde_json::Value,
    policy: &str,
    format: &str,
    env: &[(&str, &str)],
) -> CliRun {
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_wif-host"));
    token_through(binary, files, auth, policy, format, env)
}
