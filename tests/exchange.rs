//! The token exchange as the loopback token endpoint sees it, and the
//! hardening of the fetch that carries it (redirects, body cap, timeout).

#![deny(unsafe_code)]

mod common;

use anthropic_wif_host::Error;
use anthropic_wif_host::loopback::{LoopbackServer, Recorded, Reply};
use common::*;
use serde_json::json;
use std::time::Duration;

/// Mints one token from a file holding `contents` with `extra` fields in the
/// config, and returns the exchange request the endpoint received.
fn one_exchange(contents: &str, extra: serde_json::Value) -> Recorded {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", contents);
    let provider = provider(file_policy(&[&path], &[&tokens.url()]));
    let config = auth_with(&tokens.url(), json!({ "file": path }), extra).to_string();

    let token = provider.get_token(&config).expect("a token");

    // The loopback endpoint answers 400 to an exchange it finds wrong.
    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
    let mut sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1, "exactly one exchange");
    assert_eq!(tokens.requests().len(), 1, "nothing but the exchange");
    sent.remove(0)
}

fn assert_exchange_headers(request: &Recorded) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/oauth/token");
    let values = |name: &str| -> Vec<&str> {
        request
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(values("content-type"), ["application/json"]);
    assert_eq!(
        values("anthropic-beta"),
        ["oauth-2025-04-20,oidc-federation-2026-04-01"]
    );
    let agents = values("user-agent");
    assert_eq!(agents.len(), 1, "one user-agent: {agents:?}");
    assert!(agents[0].starts_with("anthropic-wif/"), "{agents:?}");
    for forbidden in ["anthropic-version", "x-api-key", "authorization"] {
        assert!(
            values(forbidden).is_empty(),
            "the exchange sent {forbidden}: {:?}",
            request.headers
        );
    }
}

#[test]
fn exchange_request_matches_the_design_without_optional_ids() {
    let request = one_exchange(&format!("\n  {JWT}  \n\n"), json!({}));

    assert_exchange_headers(&request);
    let body = String::from_utf8(request.body).expect("a UTF-8 body");
    let expected = format!(
        "{{\"grant_type\":\"urn:ietf:params:oauth:grant-type:jwt-bearer\",\
         \"assertion\":\"{JWT}\",\"federation_rule_id\":\"{RULE}\",\"organization_id\":\"{ORG}\"}}"
    );
    assert_eq!(body, expected);
}

#[test]
fn exchange_request_appends_service_account_and_workspace_when_set() {
    let request = one_exchange(
        JWT,
        json!({"workspace_id": "wrkspc_01integration", "service_account_id": "svac_01integration"}),
    );

    assert_exchange_headers(&request);
    let body = String::from_utf8(request.body).expect("a UTF-8 body");
    // The order is the design's, not the config's.
    let expected = format!(
        "{{\"grant_type\":\"urn:ietf:params:oauth:grant-type:jwt-bearer\",\
         \"assertion\":\"{JWT}\",\"federation_rule_id\":\"{RULE}\",\"organization_id\":\"{ORG}\",\
         \"service_account_id\":\"svac_01integration\",\"workspace_id\":\"wrkspc_01integration\"}}"
    );
    assert_eq!(body, expected);
}

#[test]
fn exchange_request_with_only_a_workspace_omits_the_service_account() {
    let request = one_exchange(JWT, json!({"workspace_id": "default"}));

    let body = String::from_utf8(request.body).expect("a UTF-8 body");
    assert!(
        body.ends_with(&format!(
            "\"organization_id\":\"{ORG}\",\"workspace_id\":\"default\"}}"
        )),
        "{body}"
    );
    assert!(!body.contains("service_account_id"), "{body}");
}

/// A provider granted `path` and `origins`, and the config for `base_url`.
fn setup(base_url: &str, origins: &[&str], extra_http: &str) -> (Files, String, String) {
    let files = Files::new();
    let path = files.write("token", JWT);
    let policy = format!(
        "[files]\nallow = [{}]\n[http]\nallow_origins = {}\n{extra_http}",
        q(path.display().to_string()),
        q_list(origins)
    );
    let config = config(base_url, json!({ "file": path }));
    (files, policy, config)
}

fn get_token_error(policy_toml: &str, config: &str) -> Error {
    provider(policy(policy_toml))
        .get_token(config)
        .expect_err("no token")
}

#[test]
fn token_endpoint_redirect_is_not_followed() {
    let target = token_server();
    let location = format!("{}/v1/oauth/token", target.url());
    let redirecting =
        LoopbackServer::start(move |_| Reply::text(302, "").header("location", &location)).unwrap();
    let (_files, policy, config) =
        setup(&redirecting.url(), &[&redirecting.url(), &target.url()], "");

    let error = get_token_error(&policy, &config);

    let Error::ExchangeRejected(rejection) = &error else {
        panic!("expected a rejection, got {error:?}");
    };
    assert_eq!(rejection.status, 302);
    assert!(
        error.to_string().contains("redirects are not followed"),
        "{error}"
    );
    assert_eq!(exchanges(&redirecting).len(), 1);
    assert_eq!(target.requests().len(), 0, "the redirect was followed");
}

#[test]
fn token_response_over_the_body_cap_is_an_error_not_a_cut() {
    let padding = "p".repeat(5000);
    let tokens = LoopbackServer::start(move |_| {
        Reply::json(
            200,
            &json!({"access_token": "sk-ant-oat01-big", "expires_in": 3600, "padding": padding}),
        )
    })
    .unwrap();
    let (_files, policy, config) =
        setup(&tokens.url(), &[&tokens.url()], "max_body_bytes = 1000\n");

    let error = get_token_error(&policy, &config);

    let Error::ExchangeFailed(message) = &error else {
        panic!("expected an exchange failure, got {error:?}");
    };
    assert!(message.contains("too large"), "{message}");
    assert!(message.contains("1000"), "{message}");
    assert_eq!(exchanges(&tokens).len(), 1);
}

#[test]
fn token_response_at_the_body_cap_is_accepted() {
    // The cap is on the body, inclusive: a body of exactly the cap passes.
    let body = json!({"access_token": "sk-ant-oat01-fits", "expires_in": 3600}).to_string();
    let cap = body.len();
    let tokens = LoopbackServer::start(move |_| {
        Reply::text(200, &body).header("content-type", "application/json")
    })
    .unwrap();
    let (_files, policy, config) = setup(
        &tokens.url(),
        &[&tokens.url()],
        &format!("max_body_bytes = {cap}\n"),
    );

    let token = provider(common::policy(&policy))
        .get_token(&config)
        .expect("a body of exactly the cap is accepted");

    assert_eq!(token.token.expose(), "sk-ant-oat01-fits");
}

#[test]
fn slow_token_endpoint_hits_the_configured_timeout() {
    let tokens = LoopbackServer::start(|_| {
        Reply::json(
            200,
            &json!({"access_token": "sk-ant-oat01-late", "expires_in": 3600}),
        )
        .delayed(Duration::from_secs(3))
    })
    .unwrap();
    let (_files, policy, config) = setup(&tokens.url(), &[&tokens.url()], "timeout_secs = 0.5\n");

    let error = get_token_error(&policy, &config);

    let Error::ExchangeFailed(message) = &error else {
        panic!("expected an exchange failure, got {error:?}");
    };
    assert!(message.contains("did not answer in time"), "{message}");
    assert!(
        message.contains(&format!("{}/v1/oauth/token", tokens.url())),
        "{message}"
    );
}

#[test]
fn rejection_keeps_the_oauth_error_request_id_and_a_401_hint() {
    let tokens = LoopbackServer::start(|_| {
        Reply::json(
            401,
            &json!({
                "error": "invalid_grant",
                "error_description": "the token's subject does not match the rule",
                "error_uri": "https://docs.example/wif",
                "extra": "dropped"
            }),
        )
        .header("request-id", "req_01integration")
    })
    .unwrap();
    let (_files, policy, config) = setup(&tokens.url(), &[&tokens.url()], "");

    let error = get_token_error(&policy, &config);

    let Error::ExchangeRejected(rejection) = error else {
        panic!("expected a rejection, got {error:?}");
    };
    assert_eq!(rejection.status, 401);
    assert_eq!(rejection.error.as_deref(), Some("invalid_grant"));
    assert_eq!(
        rejection.error_description.as_deref(),
        Some("the token's subject does not match the rule")
    );
    assert_eq!(
        rejection.error_uri.as_deref(),
        Some("https://docs.example/wif")
    );
    assert_eq!(rejection.request_id.as_deref(), Some("req_01integration"));
    assert_eq!(rejection.body_snippet, None);
    let hint = rejection.hint.clone().expect("a 401 has a hint");
    assert!(hint.contains("workspace_id"), "{hint}");
}

#[test]
fn rejection_never_echoes_the_assertion() {
    // An endpoint that echoes the request body in a non-JSON error.
    let tokens = LoopbackServer::start(|r| {
        Reply::text(
            400,
            &format!("bad request: {}", String::from_utf8_lossy(&r.body)),
        )
    })
    .unwrap();
    let (_files, policy, config) = setup(&tokens.url(), &[&tokens.url()], "");

    let error = get_token_error(&policy, &config);

    let shown = format!("{error} {error:?}");
    assert!(shown.contains("bad request"), "{shown}");
    assert!(shown.contains("400"), "{shown}");
    assert!(!shown.contains(JWT), "the assertion leaked: {shown}");
}

#[test]
fn a_token_type_other_than_bearer_is_malformed() {
    let tokens = LoopbackServer::start(|_| {
        Reply::json(
            200,
            &json!({"access_token": "sk-ant-oat01-x", "expires_in": 3600, "token_type": "mac"}),
        )
    })
    .unwrap();
    let (_files, policy, config) = setup(&tokens.url(), &[&tokens.url()], "");

    let error = get_token_error(&policy, &config);

    let Error::MalformedResponse(message) = &error else {
        panic!("expected a malformed response, got {error:?}");
    };
    assert!(message.contains("token_type"), "{message}");
}
