use super::*;

/// The official SDKs' advisory refresh window, in seconds.
const SDK_ADVISORY_SECS: u64 = 120;

#[test]
fn an_hour_long_token_is_replaced_three_minutes_before_it_expires() {
    assert_eq!(refresh_at(1_000, 4_600), 4_600 - REFRESH_LEAD_SECS);
}

#[test]
fn a_reader_always_sees_more_than_the_advisory_window_for_sdk_sized_tokens() {
    for lifetime in [600, 900, 3_600, 43_200] {
        let expires_at = 10_000 + lifetime;
        let left_at_refresh = expires_at - refresh_at(10_000, expires_at);
        assert!(left_at_refresh > SDK_ADVISORY_SECS, "lifetime {lifetime}");
    }
}

#[test]
fn short_tokens_are_replaced_at_half_their_life() {
    assert_eq!(refresh_at(100, 200), 150);
    assert_eq!(refresh_at(100, 101), 101);
}

#[test]
fn an_expired_token_is_replaced_now() {
    assert_eq!(refresh_at(500, 400), 500);
    assert_eq!(refresh_at(500, 500), 500);
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap() {
    let delays: Vec<u64> = (1..=7).map(|n| retry_delay(n).as_secs()).collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
    assert_eq!(retry_delay(200).as_secs(), MAX_RETRY_SECS);
}

#[test]
fn a_manual_stop_is_seen_by_the_waiter() {
    let stop = Stop::manual();
    assert!(!stop.wait(Duration::from_millis(1)));
    stop.sender().send(()).unwrap();
    assert!(stop.wait(Duration::from_secs(60)));
}

#[test]
fn the_validity_asked_for_exceeds_what_the_held_token_has_left_at_refresh_time() {
    let expires_at = 4_600;
    let next = refresh_at(1_000, expires_at);
    assert_eq!(wanted_validity(next, expires_at), 181);
    assert!(u64::from(wanted_validity(next, expires_at)) > expires_at - next);
    assert_eq!(
        wanted_validity(500, 400),
        1,
        "an expired token: any valid one"
    );
}
