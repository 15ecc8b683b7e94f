use serde_json::{Value, json};

use super::*;
use crate::testing::{FakeCaps, assert_no_secret, respond};

const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.assertion-secret.sig";
const TOKEN: &str = "sk-ant-oat01-secret-token";

fn config(extra: Value) -> Config {
    Config::parse(&crate::testing::config_json(json!({"file": "/t"}), extra)).unwrap()
}

fn assertion() -> Secret {
    Secret::new(ASSERTION)
}

fn response(status: u16, body: &str, request_id: Option<&str>) -> HttpResponse {
    let mut r = respond(status, body).unwrap();
    if let Some(id) = request_id {
        r.headers.push(Header {
            name: "Request-Id".into(),
            value: id.into(),
        });
    }
    r
}

#[test]
fn request_matches_the_official_sdks() {
    let req = request(&config(json!({})), &assertion());
    assert_eq!(req.method, "POST");
    assert_eq!(req.url, "https://api.anthropic.com/v1/oauth/token");
    let names: Vec<&str> = req.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["content-type", "anthropic-beta", "user-agent"]);
    assert_eq!(req.headers[0].value, "application/json");
    assert_eq!(
        req.headers[1].value,
        "oauth-2025-04-20,oidc-federation-2026-04-01"
    );
    assert!(req.headers[2].value.starts_with("anthropic-wif/"));
    let body = String::from_utf8(req.body).unwrap();
    assert_eq!(
        body,
        format!(
            "{{\"grant_type\":\"urn:ietf:params:oauth:grant-type:jwt-bearer\",\"assertion\":\"{ASSERTION}\",\
             \"federation_rule_id\":\"fdrl_rule1\",\"organization_id\":\"12345678-9abc-def0-1234-56789abcdef0\"}}"
        )
    );
}

#[test]
fn optional_ids_follow_in_order() {
    let cfg = config(
        json!({"service_account_id": "svac_1", "workspace_id": "wrkspc_2", "base_url": "http://127.0.0.1:8080/"}),
    );
    let req = request(&cfg, &assertion());
    assert_eq!(req.url, "http://127.0.0.1:8080/v1/oauth/token");
    let body: serde_json::Map<String, Value> = serde_json::from_slice(&req.body).unwrap();
    let text = String::from_utf8(req.body.clone()).unwrap();
    assert!(
        text.ends_with(",\"service_account_id\":\"svac_1\",\"workspace_id\":\"wrkspc_2\"}"),
        "{text}"
    );
    assert_eq!(body.len(), 6);
}

#[test]
fn a_token_response_is_read() {
    for token_type in [
        json!("Bearer"),
        json!("bearer"),
        json!("BEARER"),
        Value::Null,
    ] {
        let mut body = json!({"access_token": TOKEN, "expires_in": 3600});
        if !token_type.is_null() {
            body["token_type"] = token_type;
        }
        let issued = parse(
            response(200, &body.to_string(), None),
            &config(json!({})),
            &assertion(),
        )
        .unwrap();
        assert_eq!(issued.token.expose(), TOKEN);
        assert_eq!(issued.expires_in_secs, 3600);
    }
}

#[track_caller]
fn malformed(body: &str, part: &str) {
    match parse(response(200, body, None), &config(json!({})), &assertion()) {
        Err(e @ Error::MalformedResponse(_)) => {
            assert!(e.to_string().contains(part), "`{e}` lacks `{part}`");
            assert_no_secret(&e, &[TOKEN, ASSERTION]);
        }
        Err(other) => panic!("expected malformed, got {other:?}"),
        Ok(_) => panic!("expected malformed, got a token"),
    }
}

#[test]
fn malformed_token_responses() {
    malformed("", "not JSON");
    malformed("<html>", "not JSON");
    malformed("[1]", "not a JSON object");
    malformed(
        &json!({"expires_in": 60}).to_string(),
        "`access_token` is missing",
    );
    malformed(
        &json!({"access_token": 1, "expires_in": 60}).to_string(),
        "`access_token` is not a string",
    );
    malformed(
        &json!({"access_token": "", "expires_in": 60}).to_string(),
        "`access_token` is empty",
    );
    malformed(
        &json!({"access_token": TOKEN}).to_string(),
        "`expires_in` is missing",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": "60"}).to_string(),
        "`expires_in` is not a number",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": -5}).to_string(),
        "positive whole number",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": 0}).to_string(),
        "positive whole number",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": 1.5}).to_string(),
        "positive whole number",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": 60, "token_type": "mac"}).to_string(),
        "`token_type` is `mac`",
    );
    malformed(
        &json!({"access_token": TOKEN, "expires_in": 60, "token_type": 1}).to_string(),
        "`token_type` is not a string",
    );
}

/// Issue 14, item 2: a token that a shell, a header or a terminal would
/// read as more than a word is refused, and never echoed.
#[test]
fn a_token_outside_the_b64token_alphabet_is_malformed() {
    for token in [
        "sk-ant-x'; touch INJECTED; echo '",
        "sk-ant-x\nexport ANTHROPIC_BASE_URL=http://evil",
        "sk-ant-x\rY",
        "sk-ant-$(id)",
        "sk-ant-x y",
        "sk-ant-\u{1b}[2J",
        "sk-ant-=x",
    ] {
        let body = json!({"access_token": token, "expires_in": 60}).to_string();
        match parse(response(200, &body, None), &config(json!({})), &assertion()) {
            Err(e @ Error::MalformedResponse(_)) => {
                assert!(e.to_string().contains("RFC 6750"), "{e}");
                assert_no_secret(&e, &[token, "INJECTED", "evil", "id)"]);
            }
            Err(other) => panic!("{token:?}: expected malformed, got {other:?}"),
            Ok(_) => panic!("{token:?}: expected malformed, got a token"),
        }
    }
}

fn rejected(status: u16, body: &str, cfg: &Config) -> Rejection {
    match parse(response(status, body, Some("req_0123")), cfg, &assertion()) {
        Err(Error::ExchangeRejected(r)) => *r,
        Err(other) => panic!("expected a rejection, got {other:?}"),
        Ok(_) => panic!("expected a rejection, got a token"),
    }
}

#[test]
fn an_oauth_error_keeps_only_its_three_fields() {
    let body = json!({"error": "invalid_grant", "error_description": "token expired", "error_uri": "https://docs", "assertion": ASSERTION});
    let r = rejected(400, &body.to_string(), &config(json!({})));
    assert_eq!(r.status, 400);
    assert_eq!(r.error.as_deref(), Some("invalid_grant"));
    assert_eq!(r.error_description.as_deref(), Some("token expired"));
    assert_eq!(r.error_uri.as_deref(), Some("https://docs"));
    assert_eq!(r.request_id.as_deref(), Some("req_0123"));
    assert_eq!(r.body_snippet, None);
    assert_eq!(r.hint, None);
    let shown = Error::ExchangeRejected(Box::new(r)).to_string();
    assert_eq!(
        shown,
        "token endpoint rejected the exchange with status 400: invalid_grant: token expired (see https://docs) [request-id req_0123]"
    );
}

#[test]
fn an_anthropic_api_error_is_read() {
    let body = json!({"type": "error", "error": {"type": "permission_error", "message": "rule does not match"}});
    let r = rejected(403, &body.to_string(), &config(json!({})));
    assert_eq!(r.error.as_deref(), Some("permission_error"));
    assert_eq!(r.error_description.as_deref(), Some("rule does not match"));
}

#[test]
fn a_non_json_error_becomes_a_bounded_redacted_snippet() {
    let body = format!("<html>{}{ASSERTION}</html>", "x".repeat(10_000));
    let r = rejected(502, &body, &config(json!({})));
    let snippet = r.body_snippet.clone().unwrap();
    assert!(
        snippet.starts_with("<html>xxx") && snippet.len() < 400,
        "{snippet}"
    );
    let echoed = rejected(
        500,
        &format!("bad assertion {ASSERTION}"),
        &config(json!({})),
    );
    assert_eq!(
        echoed.body_snippet.as_deref(),
        Some("bad assertion [redacted]")
    );
    assert_no_secret(&Error::ExchangeRejected(Box::new(echoed)), &[ASSERTION]);
}

#[test]
fn a_401_carries_a_hint_and_the_workspace_sentence_only_without_workspace() {
    let without = rejected(401, "{\"error\":\"invalid_client\"}", &config(json!({})));
    let hint = without.hint.unwrap();
    assert!(hint.contains("federation rule matches"), "{hint}");
    assert!(hint.contains("set workspace_id"), "{hint}");
    let with = rejected(
        401,
        "{\"error\":\"invalid_client\"}",
        &config(json!({"workspace_id": "wrkspc_1"})),
    );
    assert!(!with.hint.unwrap().contains("workspace_id"));
}

#[test]
fn transport_errors_and_denials() {
    let cfg = config(json!({}));
    let down = FakeCaps::new().route("https://api.anthropic.com/", |_| {
        Err(CapError::Failed("connection refused".into()))
    });
    assert_eq!(
        exchange(&down, &cfg, &assertion())
            .err()
            .unwrap()
            .to_string(),
        "token exchange failed: https://api.anthropic.com/v1/oauth/token: connection refused"
    );
    let slow = FakeCaps::new().route("https://api.anthropic.com/", |_| {
        Err(CapError::Timeout("30 s".into()))
    });
    assert!(
        exchange(&slow, &cfg, &assertion())
            .err()
            .unwrap()
            .to_string()
            .contains("did not answer in time")
    );
    let denied = exchange(&FakeCaps::new(), &cfg, &assertion())
        .err()
        .unwrap();
    assert!(matches!(
        denied,
        Error::Denied {
            capability: Capability::HttpFetch,
            ..
        }
    ));
}

/// Found by the `exchange_response` fuzz target (artifact
/// `crash-ad45eb1e…`, input `400{"access_token": "sk-ant-…"}`): a refusal
/// whose JSON body held a token and no `error` field was echoed whole in the
/// body snippet.
#[test]
fn a_refusal_never_echoes_a_token_in_its_body() {
    let cfg = config(json!({}));
    for body in [
        format!(r#"{{"access_token": "{TOKEN}"}}"#),
        format!(r#"{{"access_token": " {TOKEN} ", "error": "got {TOKEN}"}}"#),
        format!(r#"{{"access_token": "{TOKEN}", "error": {{"type": "x", "message": "{TOKEN}"}}}}"#),
        // The same token spelled with a JSON escape.
        r#"{"access_token": "sk-ant-oat01-\u0073ecret-token", "expires_in": 60}"#.to_string(),
    ] {
        let err = parse(response(400, &body, None), &cfg, &assertion())
            .err()
            .unwrap();
        assert_no_secret(&err, &[TOKEN, "oat01-\\u0073ecret"]);
        assert!(err.to_string().contains("[redacted]"), "{err}");
    }
}
