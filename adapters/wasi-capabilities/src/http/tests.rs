use std::time::Duration;

use super::{Scheme, Target, parse_timeout, valid_name};
use crate::bindings::exports::anthropic_wif::federation::capabilities::CapError;

fn failure(url: &str) -> String {
    match Target::parse(url) {
        Err(CapError::Failed(message)) => message,
        Err(_) => panic!("{url}: not a `failed` error"),
        Ok(_) => panic!("{url}: parsed"),
    }
}

#[test]
fn a_url_splits_into_authority_and_path_with_query_without_the_fragment() {
    let target = Target::parse("http://127.0.0.1:8080/v1/oauth/token?secret=x#frag").unwrap();
    assert!(matches!(target.scheme, Scheme::Http));
    assert_eq!(target.authority, "127.0.0.1:8080");
    assert_eq!(target.path_with_query, "/v1/oauth/token?secret=x");
    assert_eq!(target.origin, "http://127.0.0.1:8080");

    let target = Target::parse("HTTPS://example.com?audience=a").unwrap();
    assert!(matches!(target.scheme, Scheme::Https));
    assert_eq!(target.path_with_query, "/?audience=a");
    assert_eq!(target.origin, "https://example.com");
    assert_eq!(
        Target::parse("https://example.com")
            .unwrap()
            .path_with_query,
        "/"
    );
}

#[test]
fn other_schemes_a_missing_host_and_user_information_are_refused_without_echo() {
    assert!(failure("ftp://example.com/x").contains("not a valid http or https URL"));
    assert!(failure("not a url").contains("not a valid http or https URL"));
    assert!(failure("https:///path").contains("has no host"));
    let message = failure("https://user:s3cret@example.com/");
    assert!(message.contains("user information"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}

#[test]
fn the_timeout_is_one_millisecond_up_to_an_hour() {
    assert_eq!(parse_timeout("30"), Some(Duration::from_secs(30)));
    assert_eq!(parse_timeout(" 0.5 "), Some(Duration::from_millis(500)));
    assert_eq!(parse_timeout("3600"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_timeout("0.001"), Some(Duration::from_millis(1)));
    for invalid in [
        "0", "1e-300", "0.0009", "-1", "3601", "inf", "NaN", "", "30s",
    ] {
        assert_eq!(parse_timeout(invalid), None, "{invalid:?}");
    }
}

#[test]
fn header_names_are_http_tokens() {
    assert!(valid_name("content-type"));
    assert!(valid_name("x-custom_1"));
    assert!(!valid_name(""));
    assert!(!valid_name("bad name"));
    assert!(!valid_name("colon:"));
}
