use super::*;

fn jwt(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

const NOW: u64 = 1_800_000_000;

#[test]
fn utc_formats_known_instants() {
    assert_eq!(utc(0), "1970-01-01T00:00:00Z");
    assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(utc(NOW), "2027-01-15T08:00:00Z");
}

#[test]
fn a_good_token_has_no_problem_and_shows_its_claims() {
    let token = jwt(
        serde_json::json!({"alg": "RS256", "kid": "k1"}),
        serde_json::json!({"iss": "https://issuer.test", "sub": "system:serviceaccount:a:b",
            "aud": ["https://api.anthropic.com"], "iat": NOW - 60, "exp": NOW + 3540,
            "jti": "secret-jti", "email": "x@y"}),
    );
    let reading = read(&token, NOW, None);
    assert!(reading.problems.is_empty(), "{:?}", reading.problems);
    assert!(reading.warnings.is_empty(), "{:?}", reading.warnings);
    let text = reading.lines.join("\n");
    for expected in [
        "header: alg RS256, kid k1",
        "iss: https://issuer.test",
        "sub: system:serviceaccount:a:b",
        "aud: https://api.anthropic.com",
        "exp: 2027-01-15T08:59:00Z (in 59 min; lifetime 60 min)",
        "jti: present (not shown)",
        "other claims (values not shown): email",
    ] {
        assert!(text.contains(expected), "`{expected}` not in\n{text}");
    }
    assert!(!text.contains("secret-jti") && !text.contains("x@y"));
}

#[test]
fn credential_like_and_control_characters_are_not_printed_raw() {
    let secret = "AbCdEfGh0123456789aBcDeFgH0123456789xyzXYZ";
    let token = jwt(
        serde_json::json!({"alg": "ES256"}),
        serde_json::json!({"iss": "\u{1b}[31mred", "sub": secret, "aud": "sk-ant-api03-x",
            "exp": NOW + 60}),
    );
    let text = read(&token, NOW, None).lines.join("\n");
    assert!(!text.contains(secret) && !text.contains("sk-ant-") && !text.contains('\u{1b}'));
    assert!(
        text.contains("[not shown: it looks like a credential]"),
        "{text}"
    );
}

#[test]
fn each_problem_is_named() {
    let expired = jwt(
        serde_json::json!({"alg": "RS256"}),
        serde_json::json!({"aud": "http://127.0.0.1:8080", "iat": NOW - 7200, "exp": NOW - 3600}),
    );
    let reading = read(&expired, NOW, Some("http://127.0.0.1:8080/"));
    let problems = reading.problems.join("\n");
    assert!(problems.contains("expired 60 min ago"), "{problems}");
    assert!(
        problems.contains("it is the config's base_url"),
        "{problems}"
    );

    let early = jwt(
        serde_json::json!({"alg": "RS256"}),
        serde_json::json!({"aud": "https://api.anthropic.com", "nbf": NOW + 600,
            "iat": NOW - 10, "exp": NOW + 200_000}),
    );
    let reading = read(&early, NOW, None);
    assert!(
        reading
            .problems
            .join("\n")
            .contains("not valid yet (nbf is 10 min ahead)")
    );
    assert!(
        reading.warnings.join("\n").contains("lives 2 days"),
        "{:?}",
        reading.warnings
    );

    let opaque = read("2YotnFZFEjr1zCsicMWpAA", NOW, None);
    assert!(opaque.problems[0].contains("not a JWT (22 bytes"));
    assert!(opaque.lines.is_empty());
}
