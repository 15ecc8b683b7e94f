//! The `wif-host` binary side of `tests/all/sources.rs`: the same checks
//! through the command line (exit codes, stdout and stderr).

use crate::{CliRun, cli_token};
use anthropic_wif_loopback::{LoopbackServer, Reply, identity_endpoint};
use anthropic_wif_test_support::*;
use serde_json::{Value, json};

/// The JSON output of `wif-host token --format json`.
fn token_json(run: &CliRun) -> Value {
    assert_eq!(run.code, Some(0), "wif-host failed: {run:?}");
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run:?}"))
}

#[test]
fn env_source_mints_a_token_through_the_cli() {
    let tokens = token_server();
    let files = Files::new();
    let var = "WIF_IT_ENV_SOURCE_TOKEN";
    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({ "env": var })),
        &format!(
            "[env]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(var),
            q(tokens.url())
        ),
        "json",
        &[(var, &format!("  {JWT}\n"))],
    );

    let out = token_json(&run);
    assert_eq!(out["access_token"], "sk-ant-oat01-demo-1");
    assert_eq!(out["token_type"], "Bearer");
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1);
    assert_eq!(assertion_of(&sent[0]), JWT);
}

#[test]
fn url_source_expands_variables_and_reads_the_response_field_through_the_cli() {
    let tokens = token_server();
    let identity = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let files = Files::new();
    let (url_var, token_var) = ("WIF_IT_URL_SOURCE_URL", "WIF_IT_URL_SOURCE_REQUEST_TOKEN");
    let source = json!({
        "url": format!("${{{url_var}}}&audience=https://api.anthropic.com"),
        "headers": {"Authorization": format!("bearer ${{{token_var}}}")},
        "response_field": "value",
    });
    let request_url = format!("{}/oidc/token?api-version=2.0", identity.url());
    let run = cli_token(
        &files,
        &auth(&tokens.url(), source),
        &format!(
            "[env]\nallow = {}\n[http]\nallow_origins = {}\n",
            q_list(&[url_var, token_var]),
            q_list(&[identity.url(), tokens.url()])
        ),
        "json",
        &[(url_var, &request_url), (token_var, REQUEST_TOKEN)],
    );

    let out = token_json(&run);
    assert_eq!(out["access_token"], "sk-ant-oat01-demo-1");
    let asked = identity.requests();
    assert_eq!(asked.len(), 1, "one identity request");
    assert_eq!(asked[0].method, "GET");
    assert_eq!(
        asked[0].path,
        "/oidc/token?api-version=2.0&audience=https://api.anthropic.com"
    );
    assert_eq!(
        asked[0].header("authorization"),
        Some(format!("bearer {REQUEST_TOKEN}").as_str())
    );
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1);
    assert_eq!(assertion_of(&sent[0]), JWT);
}

#[test]
fn secrets_in_expanded_variables_never_appear_in_errors() {
    // The identity endpoint fails and echoes the whole request back; the
    // CLI's stderr must still hold neither secret, but the URL as written.
    let tokens = token_server();
    let identity = LoopbackServer::start(|r| {
        Reply::text(
            500,
            &format!(
                "internal error for {} with authorization {}",
                r.path,
                r.header("authorization").unwrap_or("-")
            ),
        )
    })
    .unwrap();
    let files = Files::new();
    let (query_var, header_var) = ("WIF_IT_LEAK_QUERY_SECRET", "WIF_IT_LEAK_HEADER_SECRET");
    let (query_secret, header_secret) = ("qs3cr3t-7f9a2c41d8e6", "hs3cr3t-b5e0c3a9f172");
    let template = format!("{}/oidc/token?code=${{{query_var}}}", identity.url());
    let source = json!({
        "url": template,
        "headers": {"Authorization": format!("Bearer ${{{header_var}}}")},
    });
    let run = cli_token(
        &files,
        &auth(&tokens.url(), source),
        &format!(
            "[env]\nallow = {}\n[http]\nallow_origins = {}\n",
            q_list(&[query_var, header_var]),
            q_list(&[identity.url(), tokens.url()])
        ),
        "json",
        &[(query_var, query_secret), (header_var, header_secret)],
    );

    // The secrets did reach the endpoint, and its body echoed them.
    let asked = identity.requests();
    assert_eq!(asked.len(), 1);
    assert!(asked[0].path.contains(query_secret));
    assert_eq!(
        asked[0].header("authorization"),
        Some(format!("Bearer {header_secret}").as_str())
    );
    assert_eq!(run.code, Some(5), "{run:?}");
    assert!(run.stderr.contains("500"), "{}", run.stderr);
    assert!(run.stderr.contains(&template), "{}", run.stderr);
    assert!(!run.stderr.contains(query_secret), "{}", run.stderr);
    assert!(!run.stderr.contains(header_secret), "{}", run.stderr);
    assert!(!run.stdout.contains(query_secret) && !run.stdout.contains(header_secret));
}

#[test]
fn secrets_in_expanded_variables_never_appear_in_a_denial() {
    let tokens = token_server();
    let identity = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let files = Files::new();
    let (origin_var, query_var, header_var) = (
        "WIF_IT_DENIED_ORIGIN",
        "WIF_IT_DENIED_QUERY_SECRET",
        "WIF_IT_DENIED_HEADER_SECRET",
    );
    let (query_secret, header_secret) = ("qs3cr3t-0c8d1e5b7a93", "hs3cr3t-4a6f2d9e1c05");
    let source = json!({
        "url": format!("${{{origin_var}}}/oidc/token?code=${{{query_var}}}"),
        "headers": {"Authorization": format!("Bearer ${{{header_var}}}")},
    });
    // The identity origin is not granted.
    let run = cli_token(
        &files,
        &auth(&tokens.url(), source),
        &format!(
            "[env]\nallow = {}\n[http]\nallow_origins = [{}]\n",
            q_list(&[origin_var, query_var, header_var]),
            q(tokens.url())
        ),
        "json",
        &[
            (origin_var, &identity.url()),
            (query_var, query_secret),
            (header_var, header_secret),
        ],
    );

    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.contains("http-fetch"), "{}", run.stderr);
    assert!(run.stderr.contains(&identity.url()), "{}", run.stderr);
    assert!(!run.stderr.contains(query_secret), "{}", run.stderr);
    assert!(!run.stderr.contains(header_secret), "{}", run.stderr);
    assert!(identity.requests().is_empty());
    assert!(exchanges(&tokens).is_empty());
}
