use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::capabilities::{CapError, CommandOutput, HttpRequest};
use crate::testing::{FakeCaps, T0, assert_no_secret, config_json, respond};
use crate::{Fingerprint, Secret};

/// What every identity token minted by [`caps`] starts with.
const JWT: &str = "eyJ.identity-secret";

/// Caps whose identity command prints a new JWT on every run, and whose
/// token endpoint issues `tok-N` (N counting from 1) valid for `expires_in`
/// seconds, or fails while `down` is set.
fn caps(expires_in: u64, down: Rc<Cell<bool>>) -> FakeCaps {
    let minted = Cell::new(0);
    endpoint(FakeCaps::new(), expires_in, down).commands(move |_, _| {
        minted.set(minted.get() + 1);
        Ok(CommandOutput {
            exit_code: Some(0),
            stdout: format!("{JWT}-{}.sig", minted.get()).into_bytes(),
            stderr: Vec::new(),
        })
    })
}

/// A token endpoint like the real one: `tok-N` for a new assertion, `401
/// invalid_grant` with no reason for one it has seen, 503 while `down`.
fn endpoint(caps: FakeCaps, expires_in: u64, down: Rc<Cell<bool>>) -> FakeCaps {
    let issued = Cell::new(0);
    let seen = RefCell::new(HashSet::new());
    caps.route(
        "https://api.anthropic.com/",
        move |request: &HttpRequest| {
            if down.get() {
                return respond(503, "unavailable");
            }
            let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
            if !seen.borrow_mut().insert(body["assertion"].to_string()) {
                return respond(401, r#"{"error":"invalid_grant"}"#);
            }
            issued.set(issued.get() + 1);
            respond(
                200,
                &json!({"access_token": format!("tok-{}", issued.get()), "expires_in": expires_in})
                    .to_string(),
            )
        },
    )
}

/// Caps whose identity token is the file `/t`, holding `jwt`.
fn file_caps(jwt: &str, expires_in: u64) -> FakeCaps {
    endpoint(FakeCaps::new().file("/t", jwt), expires_in, Rc::default())
}

fn cfg() -> String {
    config_json(json!({"command": ["mint-jwt"]}), json!({}))
}

fn file_cfg() -> String {
    config_json(json!({"file": "/t"}), json!({}))
}

#[test]
fn a_fresh_token_carries_expiry_and_refresh_after() {
    let caps = caps(3600, Rc::default());
    let token = Provider::new().get_token(&caps, &cfg()).unwrap();
    assert_eq!(token.token.expose(), "tok-1");
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_at, T0 / 1000 + 3600);
    assert_eq!(token.refresh_after, T0 / 1000 + 3600 - FRESH_SECS);
}

#[test]
fn more_than_120_s_left_serves_the_cache() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    caps.advance_secs(3600 - 121);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-1"
    );
    assert_eq!(caps.exchanges(), 1);
}

#[test]
fn between_30_and_120_s_left_refreshes() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    caps.advance_secs(3600 - 120);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-2"
    );
    assert_eq!(caps.exchanges(), 2);
}

#[test]
fn a_failed_advisory_refresh_serves_the_cached_token_and_backs_off() {
    let down = Rc::new(Cell::new(false));
    let caps = caps(3600, down.clone());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    down.set(true);
    caps.advance_secs(3600 - 100);
    let served = provider.get_token(&caps, &cfg()).unwrap();
    assert_eq!(served.token.expose(), "tok-1");
    assert_eq!(
        served.refresh_after,
        caps.now_millis() / 1000 + BACKOFF_SECS
    );
    assert_eq!(caps.exchanges(), 2);
    caps.advance_secs(BACKOFF_SECS - 1);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-1"
    );
    assert_eq!(caps.exchanges(), 2, "no retry within the backoff");
    caps.advance_secs(1);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-1"
    );
    assert_eq!(caps.exchanges(), 3, "retried once the backoff is over");
    down.set(false);
    caps.advance_secs(BACKOFF_SECS);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-2"
    );
}

#[test]
fn the_backoff_never_extends_into_the_mandatory_window() {
    let down = Rc::new(Cell::new(false));
    let caps = caps(3600, down.clone());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    down.set(true);
    caps.advance_secs(3600 - 33);
    let served = provider.get_token(&caps, &cfg()).unwrap();
    assert_eq!(served.refresh_after, T0 / 1000 + 3600 - MANDATORY_SECS);
}

#[test]
fn thirty_seconds_or_less_left_must_refresh_and_fails_loudly() {
    let down = Rc::new(Cell::new(false));
    let caps = caps(3600, down.clone());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    down.set(true);
    caps.advance_secs(3600 - 30);
    let err = provider.get_token(&caps, &cfg()).unwrap_err();
    assert!(
        matches!(err, Error::ExchangeRejected(ref r) if r.status == 503),
        "{err}"
    );
    assert_no_secret(&err, &["tok-1", JWT]);
    down.set(false);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-2"
    );
}

#[test]
fn an_expired_token_is_never_served() {
    let down = Rc::new(Cell::new(false));
    let caps = caps(60, down.clone());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    down.set(true);
    caps.advance_secs(61);
    assert!(provider.get_token(&caps, &cfg()).is_err());
}

#[test]
fn invalidate_forces_an_exchange() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    provider.invalidate(&cfg());
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-2"
    );
    provider.invalidate("not json");
}

#[test]
fn two_configs_never_share_a_token_and_equal_ones_do() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    let other = config_json(
        json!({"command": ["mint-jwt"]}),
        json!({"workspace_id": "default"}),
    );
    provider.get_token(&caps, &cfg()).unwrap();
    assert_eq!(
        provider.get_token(&caps, &other).unwrap().token.expose(),
        "tok-2"
    );
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&cfg()).unwrap())
            .unwrap();
    assert_eq!(
        provider
            .get_token(&caps, &reformatted)
            .unwrap()
            .token
            .expose(),
        "tok-1"
    );
    assert_eq!(caps.exchanges(), 2);
}

#[test]
fn the_source_is_read_again_for_every_exchange() {
    let mut caps = file_caps("eyJ.first.sig", 3600);
    let mut provider = Provider::new();
    provider.get_token(&caps, &file_cfg()).unwrap();
    caps = caps.file("/t", "eyJ.rotated.sig");
    provider.invalidate(&file_cfg());
    provider.get_token(&caps, &file_cfg()).unwrap();
    let requests = caps.requests.borrow();
    let last: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(last["assertion"], "eyJ.rotated.sig");
}

#[test]
fn invalid_config_and_source_errors_reach_the_caller() {
    let caps = FakeCaps::new();
    assert!(matches!(
        Provider::new().get_token(&caps, "{}"),
        Err(Error::InvalidConfig { .. })
    ));
    let mut denied = FakeCaps::new();
    denied
        .files
        .insert("/t".into(), Err(CapError::Denied("path /t".into())));
    assert!(matches!(
        Provider::new().get_token(&denied, &file_cfg()),
        Err(Error::Denied { .. })
    ));
}

#[test]
fn identity_token_reads_the_source_without_exchanging_or_remembering_it() {
    let caps = file_caps("eyJ.read.sig", 3600);
    let mut provider = Provider::new();
    let client = provider.client(&file_cfg()).unwrap();
    let read = client.identity_token(&caps).unwrap();
    assert_eq!(read.expose(), "eyJ.read.sig");
    assert_eq!(caps.exchanges(), 0);
    // Not remembered as exchanged: the next token call sends it and succeeds.
    client.token(&caps).unwrap();
    assert_eq!(caps.exchanges(), 1);
}

#[test]
fn requirements_validate_first() {
    let mut provider = Provider::new();
    assert!(provider.requirements("{\"type\":\"x\"}").is_err());
    assert_eq!(provider.requirements(&file_cfg()).unwrap().files, ["/t"]);
}

#[test]
fn the_windows_scale_to_the_lifetime_and_keep_the_sdk_table_from_240_s() {
    let windows = |secs: u64| {
        let w = Windows::for_lifetime(secs * 1000);
        (w.advisory_ms, w.mandatory_ms)
    };
    assert_eq!(windows(90), (45_000, 22_500));
    assert_eq!(windows(200), (100_000, 30_000));
    for long in [240, 241, 3600, 86_400] {
        assert_eq!(windows(long), (120_000, 30_000), "{long} s");
    }
    assert_eq!(windows(0), (0, 0));
}

#[test]
fn a_90_s_token_is_served_for_half_its_life_and_must_go_at_three_quarters() {
    let caps = caps(90, Rc::default());
    let token = Provider::new().get_token(&caps, &cfg()).unwrap();
    assert_eq!(token.issued_at, T0 / 1000);
    assert_eq!(token.expires_at, T0 / 1000 + 90);
    assert_eq!(token.refresh_after, T0 / 1000 + 45);
    assert_eq!(token.refresh_by, T0 / 1000 + 67);
}

#[test]
fn a_thousand_calls_over_ten_minutes_with_90_s_tokens_exchange_once_per_half_life() {
    let caps = caps(90, Rc::default());
    let mut provider = Provider::new();
    for _ in 0..1000 {
        provider.get_token(&caps, &cfg()).unwrap();
        caps.now_ms.set(caps.now_ms.get() + 600);
    }
    // Calls at 0, 0.6, …, 599.4 s; a token is refreshed as soon as 45 s
    // (half of 90) have passed: at 0, 45, …, 585 s.
    assert_eq!(caps.exchanges(), 1 + 599 / 45);
}

#[test]
fn an_unchanged_assertion_is_not_sent_in_the_advisory_window() {
    let mut caps = file_caps("eyJ.same.sig", 3600);
    let mut provider = Provider::new();
    provider.get_token(&caps, &file_cfg()).unwrap();
    caps.advance_secs(3600 - 100);
    let served = provider.get_token(&caps, &file_cfg()).unwrap();
    assert_eq!(served.token.expose(), "tok-1");
    assert_eq!(
        served.refresh_after,
        caps.now_ms.get() / 1000 + BACKOFF_SECS
    );
    caps.advance_secs(BACKOFF_SECS);
    provider.get_token(&caps, &file_cfg()).unwrap();
    assert_eq!(
        caps.exchanges(),
        1,
        "the same assertion is never resent here"
    );
    caps = caps.file("/t", "eyJ.rotated.sig");
    caps.advance_secs(BACKOFF_SECS);
    let token = provider.get_token(&caps, &file_cfg()).unwrap();
    assert_eq!(token.token.expose(), "tok-2");
    assert_eq!(
        token.assertion,
        Fingerprint::of(&Secret::new("eyJ.rotated.sig"))
    );
}

#[test]
fn an_unchanged_assertion_refused_in_the_mandatory_window_says_so() {
    let caps = file_caps("eyJ.same.sig", 3600);
    let mut provider = Provider::new();
    provider.get_token(&caps, &file_cfg()).unwrap();
    caps.advance_secs(3600 - 30);
    let error = provider.get_token(&caps, &file_cfg()).unwrap_err();
    assert_eq!(
        caps.exchanges(),
        2,
        "in the mandatory window the endpoint decides"
    );
    let shown = error.to_string();
    assert!(shown.contains("status 401: invalid_grant"), "{shown}");
    assert!(
        shown.contains("has not changed since it was last exchanged"),
        "{shown}"
    );
    assert!(shown.contains("single-use"), "{shown}");
    assert!(
        shown.contains("/t more often than the access token"),
        "{shown}"
    );
    assert!(!shown.contains("federation rule matches"), "{shown}");
    assert_no_secret(&error, &["eyJ.same.sig", "tok-1"]);
}

#[test]
fn an_unchanged_assertion_after_invalidate_is_sent_and_its_refusal_explained() {
    let caps = file_caps("eyJ.same.sig", 3600);
    let mut provider = Provider::new();
    provider.get_token(&caps, &file_cfg()).unwrap();
    provider.invalidate(&file_cfg());
    let error = provider.get_token(&caps, &file_cfg()).unwrap_err();
    assert_eq!(caps.exchanges(), 2);
    assert!(
        error
            .to_string()
            .contains("has not changed since it was last exchanged"),
        "{error}"
    );
}

#[test]
fn a_refused_new_assertion_keeps_the_federation_rule_hint() {
    let caps = file_caps("eyJ.new.sig", 3600).route("https://api.anthropic.com/", |_| {
        respond(401, r#"{"error":"invalid_grant"}"#)
    });
    let error = Provider::new().get_token(&caps, &file_cfg()).unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("federation rule matches"), "{shown}");
    assert!(!shown.contains("has not changed"), "{shown}");
}

#[test]
fn a_restored_token_is_served_and_its_assertion_known() {
    let caps = file_caps("eyJ.same.sig", 3600);
    let token = Provider::new().get_token(&caps, &file_cfg()).unwrap();
    let mut other = Provider::new();
    other.restore(&file_cfg(), &token);
    assert_eq!(other.get_token(&caps, &file_cfg()).unwrap(), token);
    caps.advance_secs(3600 - 100);
    assert_eq!(
        other.get_token(&caps, &file_cfg()).unwrap().token.expose(),
        "tok-1"
    );
    assert_eq!(
        caps.exchanges(),
        1,
        "the other process's assertion is not resent"
    );
    caps.advance_secs(100 - 30);
    let error = other.get_token(&caps, &file_cfg()).unwrap_err();
    assert!(error.to_string().contains("has not changed"), "{error}");
}

#[test]
fn a_restored_backoff_is_honoured() {
    let caps = file_caps("eyJ.same.sig", 3600);
    let mut first = Provider::new();
    first.get_token(&caps, &file_cfg()).unwrap();
    caps.advance_secs(3600 - 100);
    let backing_off = first.get_token(&caps, &file_cfg()).unwrap();
    let mut other = Provider::new();
    other.restore(&file_cfg(), &backing_off);
    let served = other.get_token(&caps, &file_cfg()).unwrap();
    assert_eq!(served.refresh_after, backing_off.refresh_after);
    assert_eq!(caps.exchanges(), 1);
}

#[test]
fn restore_keeps_the_newer_token_and_never_revives_an_invalidated_one() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    let old = provider.get_token(&caps, &cfg()).unwrap();
    caps.advance_secs(10);
    provider.invalidate(&cfg());
    let new = provider.get_token(&caps, &cfg()).unwrap();
    provider.restore(&cfg(), &old);
    assert_eq!(provider.get_token(&caps, &cfg()).unwrap(), new);
    provider.invalidate(&cfg());
    provider.restore(&cfg(), &new);
    provider.restore("not json", &new);
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-3"
    );
}

#[test]
fn a_client_serves_what_get_token_cached_and_shares_its_entry() {
    let caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    let first = provider.get_token(&caps, &cfg()).unwrap();
    let respaced =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&cfg()).unwrap())
            .unwrap();
    let client = provider.client(&respaced).unwrap();
    assert_eq!(client.token(&caps).unwrap(), first);
    client.invalidate();
    assert_eq!(
        provider.get_token(&caps, &cfg()).unwrap().token.expose(),
        "tok-2"
    );
    assert_eq!(caps.exchanges(), 2);
}

#[test]
fn an_invalid_config_makes_no_client() {
    let err = Provider::new().client(r#"{"type": "nope"}"#).err().unwrap();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
}

#[test]
fn token_valid_for_refreshes_early_when_less_is_left() {
    let caps = caps(3600, Rc::default());
    let client = Provider::new().client(&cfg()).unwrap();
    client.token(&caps).unwrap();
    caps.advance_secs(3000);
    assert_eq!(
        client.token_valid_for(&caps, 300).unwrap().token.expose(),
        "tok-1",
        "600 s left is enough for 300"
    );
    assert_eq!(
        client.token_valid_for(&caps, 900).unwrap().token.expose(),
        "tok-2",
        "600 s left is not enough for 900"
    );
    assert_eq!(caps.exchanges(), 2);
}

#[test]
fn token_valid_for_never_spends_an_unchanged_assertion() {
    let caps = file_caps("eyJ.same-file-token", 3600);
    let client = Provider::new().client(&file_cfg()).unwrap();
    client.token(&caps).unwrap();
    caps.advance_secs(3000);
    let served = client.token_valid_for(&caps, 900).unwrap();
    assert_eq!(served.expires_at, T0 / 1000 + 3600, "the cached token");
    assert_eq!(caps.exchanges(), 1, "the same file token is not sent again");
    assert_eq!(
        served.refresh_after,
        T0 / 1000 + 3600 - FRESH_SECS,
        "plain callers keep it until its advisory window"
    );
    caps.advance_secs(BACKOFF_SECS - 1);
    client.token_valid_for(&caps, 900).unwrap();
    assert_eq!(caps.exchanges(), 1, "no new read within the backoff");
}

#[test]
fn invalidate_rejected_drops_only_the_refused_token() {
    let caps = caps(3600, Rc::default());
    let client = Provider::new().client(&cfg()).unwrap();
    let refused = client.token(&caps).unwrap();
    client.invalidate_rejected("tok-other");
    assert_eq!(client.token(&caps).unwrap(), refused, "another token: kept");
    client.invalidate_rejected(refused.token.expose());
    let replaced = client.token(&caps).unwrap();
    assert_eq!(replaced.token.expose(), "tok-2");
    client.invalidate_rejected(refused.token.expose());
    assert_eq!(client.token(&caps).unwrap(), replaced, "already replaced");
    assert_eq!(caps.exchanges(), 2);
}
