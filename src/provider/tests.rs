use std::cell::Cell;
use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::capabilities::CapError;
use crate::testing::{FakeCaps, T0, assert_no_secret, config_json, respond};

const JWT: &str = "eyJ.identity-secret.sig";

/// Caps whose token endpoint issues `tok-N` (N counting from 1) valid for
/// `expires_in` seconds, or fails while `down` is set.
fn caps(expires_in: u64, down: Rc<Cell<bool>>) -> FakeCaps {
    let issued = Cell::new(0);
    FakeCaps::new()
        .file("/t", JWT)
        .route("https://api.anthropic.com/", move |_| {
            if down.get() {
                return respond(503, "unavailable");
            }
            issued.set(issued.get() + 1);
            respond(
                200,
                &json!({"access_token": format!("tok-{}", issued.get()), "expires_in": expires_in})
                    .to_string(),
            )
        })
}

fn cfg() -> String {
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
    let other = config_json(json!({"file": "/t"}), json!({"workspace_id": "default"}));
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
    let mut caps = caps(3600, Rc::default());
    let mut provider = Provider::new();
    provider.get_token(&caps, &cfg()).unwrap();
    caps = caps.file("/t", "eyJ.rotated.sig");
    provider.invalidate(&cfg());
    provider.get_token(&caps, &cfg()).unwrap();
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
        Provider::new().get_token(&denied, &cfg()),
        Err(Error::Denied { .. })
    ));
}

#[test]
fn requirements_validate_first() {
    let mut provider = Provider::new();
    assert!(provider.requirements("{\"type\":\"x\"}").is_err());
    assert_eq!(provider.requirements(&cfg()).unwrap().files, ["/t"]);
}
