use serde_json::json;

use super::*;
use crate::error::Rejection;
use crate::testing::config;

fn refused(status: u16, error: Option<&str>) -> Error {
    Error::ExchangeRejected(Box::new(Rejection {
        status,
        error: error.map(String::from),
        hint: Some("check that the federation rule matches".into()),
        ..Rejection::default()
    }))
}

#[test]
fn each_source_is_told_what_to_change() {
    let cases = [
        (
            json!({"file": "/var/run/token"}),
            "new token to /var/run/token",
        ),
        (
            json!({"file": "/var/run/token"}),
            "80 % of its expirationSeconds",
        ),
        (json!({"env": "CI_JWT"}), "CI_JWT still holds the token"),
        (
            json!({"command": ["gcloud", "auth"]}),
            "the command gcloud is returning a cached token",
        ),
        (
            json!({"url": "https://idp.example/t?k=${KEY}"}),
            "https://idp.example/t?k=${KEY} is returning a cached token",
        ),
    ];
    for (source, expected) in cases {
        let error = refused_again(refused(401, None), &config(source.clone()));
        let shown = error.to_string();
        assert!(shown.contains(expected), "{source}: {shown}");
        assert!(
            shown.contains("has not changed since it was last exchanged"),
            "{shown}"
        );
        assert!(!shown.contains("federation rule matches"), "{shown}");
    }
}

#[test]
fn only_a_refusal_of_the_grant_is_explained() {
    let file = config(json!({"file": "/t"}));
    let explained = refused_again(refused(400, Some("invalid_grant")), &file);
    assert!(explained.to_string().contains("single-use"), "{explained}");
    for other in [refused(503, None), refused(400, Some("invalid_request"))] {
        assert_eq!(refused_again(other.clone(), &file), other);
    }
    let failed = Error::ExchangeFailed("timeout".into());
    assert_eq!(refused_again(failed.clone(), &file), failed);
}

#[test]
fn an_unchanged_source_names_itself() {
    let error = unchanged(&config(json!({"env": "CI_JWT"})));
    assert!(
        matches!(
            &error,
            Error::SourceFailed {
                kind: crate::SourceKind::Env,
                ..
            }
        ),
        "{error:?}"
    );
}
