use proptest::prelude::*;

use super::*;

#[test]
fn normalizes_case_and_default_ports() {
    assert_eq!(
        origin("HTTPS://API.Anthropic.com:443/v1?x").unwrap(),
        "https://api.anthropic.com"
    );
    assert_eq!(
        origin("http://127.0.0.1:8080/t").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(origin("http://[::1]:80").unwrap(), "http://[::1]");
    assert_eq!(origin("http://[::1]:9/x").unwrap(), "http://[::1]:9");
}

#[test]
fn rejects_what_is_not_a_plain_http_origin() {
    assert!(
        origin("api.anthropic.com")
            .unwrap_err()
            .contains("absolute")
    );
    assert!(origin("ftp://x").unwrap_err().contains("scheme"));
    assert!(origin("https://a@b").unwrap_err().contains("user"));
    assert!(origin("https:///x").unwrap_err().contains("no host"));
    assert!(origin("https://h:99999").unwrap_err().contains("port"));
    assert!(origin("https://[::1]x").unwrap_err().contains("IPv6"));
    for spaced in [
        "https://h /",
        "https://h\t:1",
        "https://h\u{a0}",
        "https:// /x",
    ] {
        assert!(
            origin(spaced).unwrap_err().contains("white space"),
            "{spaced:?}"
        );
    }
}

#[test]
fn knows_loopback_hosts() {
    assert!(is_loopback("http://localhost:1"));
    assert!(is_loopback("http://127.0.0.1"));
    assert!(is_loopback("http://[::1]:5"));
    assert!(!is_loopback("http://127.0.0.1.evil.test"));
    assert!(!is_loopback("http://localhost.evil.test"));
}

/// The origin the host computes for `url` (the WHATWG parser of the `url`
/// crate, then the policy's origin), or `None` when it refuses the URL.
fn host_origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    anthropic_wif_host::policy::Origin::of(&parsed).map(|o| o.to_string())
}

/// The property of issue 14, item 6: the component either refuses a URL or
/// names the very origin the host would connect to.
fn agrees_or_refuses(url: &str) -> Result<(), String> {
    match origin(url) {
        Err(_) => Ok(()),
        Ok(ours) => match host_origin(url) {
            Some(theirs) if theirs == ours => Ok(()),
            theirs => Err(format!(
                "{url:?}: the component accepts it as {ours}, the host reads {theirs:?}"
            )),
        },
    }
}

/// URLs that one parser or another reads in a surprising way.
const TRICKY: &[&str] = &[
    "https://evil.example\\.api.anthropic.com",
    "https://api.anthropic.com\\@evil.example",
    "https:\\\\evil.example",
    "https://evil.example\\",
    "https://ev\til.example",
    "https://evil.exam\nple",
    "https://api.anthropic.com\r/x",
    " https://api.anthropic.com",
    "https://api.anthropic.com\u{0}.evil",
    "https://api.anthropic.com%00.evil.example",
    "https://api.anthropic.com/%00",
    "https://api%2eanthropic.com",
    "https://%61pi.anthropic.com",
    "https://api.anthropic.com%2f@evil.example",
    "https://ＡＰＩ.anthropic.com",
    "https://api.anthropic.com\u{ad}",
    "https://api.anthrop\u{200b}ic.com",
    "https://api.anthropic.com\u{3002}evil",
    "https://xn--nxasmq6b.example",
    "https://xn--.example",
    "https://a..b",
    "https://.",
    "https://a_b-c.example",
    "http://2130706433:8080",
    "http://0x7f.0.0.1",
    "http://0177.0.0.1",
    "http://127.1",
    "http://127.0.0.1.",
    "http://127.000.0.1",
    "http://256.0.0.1",
    "http://1.2.3.4.5",
    "http://a.0x1",
    "http://a.09",
    "http://example.1a",
    "http://127.0.0.1",
    "http://127.0.0.1:0080",
    "http://127.0.0.1:80",
    "http://127.0.0.1:",
    "http://127.0.0.1:+80",
    "http://127.0.0.1:65536",
    "https://h:443:1",
    "http://[::1]",
    "http://[0:0:0:0:0:0:0:1]",
    "http://[::FFFF:127.0.0.1]",
    "http://[::ffff:7f00:1]:80",
    "http://[::127.0.0.1]",
    "http://[fe80::1%25eth0]",
    "http://[1:0:0:1:0:0:0:1]",
    "http://[1::0:1]",
    "http://[::1]x",
    "HTTPS://API.ANTHROPIC.COM:443/v1",
    "https:///api.anthropic.com",
    "https:/api.anthropic.com",
    "https://user@api.anthropic.com",
    "https://api.anthropic.com#@evil.example",
    "https://api.anthropic.com?@evil.example",
    "https://api.anthropic.com/..%2f..%2fevil",
    "https://api.anthropic.com;evil.example",
    "https://api.anthropic.com^",
    "https://api.anthropic.com|x",
    "https://api.anthropic.com<x>",
];

#[test]
fn both_parsers_agree_or_the_component_refuses() {
    let problems: Vec<String> = TRICKY
        .iter()
        .filter_map(|url| agrees_or_refuses(url).err())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_review_s_backslash_url_is_refused_with_its_reason() {
    let error = origin("https://evil.example\\.api.anthropic.com").unwrap_err();
    assert!(error.contains("backslash"), "{error}");
    for (url, part) in [
        ("https://a\tb", "white space"),
        ("https://a/%00", "NUL"),
        ("https://%61pi.example", "letters, digits"),
        ("http://127.1", "IPv4"),
        ("http://[0:0::1]", "non-canonical"),
    ] {
        let error = origin(url).unwrap_err();
        assert!(error.contains(part), "{url:?}: {error}");
    }
    assert_eq!(
        origin("http://127.0.0.1:0080/x").unwrap(),
        "http://127.0.0.1"
    );
}

/// A piece of a URL authority, tricky or plain.
fn authority_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("Z".to_string()),
        Just("0".to_string()),
        Just("9".to_string()),
        Just("127".to_string()),
        Just("0x".to_string()),
        Just("f".to_string()),
        Just(".".to_string()),
        Just("-".to_string()),
        Just("_".to_string()),
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("@".to_string()),
        Just("\\".to_string()),
        Just("/".to_string()),
        Just("%".to_string()),
        Just("%2e".to_string()),
        Just("%00".to_string()),
        Just("\t".to_string()),
        Just("\n".to_string()),
        Just(" ".to_string()),
        Just("xn--".to_string()),
        Just("\u{ad}".to_string()),
        Just("é".to_string()),
        Just("Ａ".to_string()),
        Just("#".to_string()),
        Just("?".to_string()),
        Just("^".to_string()),
        Just("::".to_string()),
        Just("ffff".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_urls_agree_or_are_refused(
        scheme in prop_oneof![Just("http"), Just("https"), Just("HTTP")],
        pieces in proptest::collection::vec(authority_piece(), 1..8),
        tail in prop_oneof![Just(""), Just("/x"), Just("?q"), Just("#f"), Just("/a\\b")],
    ) {
        let url = format!("{scheme}://{}{tail}", pieces.concat());
        prop_assert!(agrees_or_refuses(&url).is_ok(), "{}", agrees_or_refuses(&url).unwrap_err());
    }
}

#[test]
fn templates_are_checked_as_far_as_they_are_written() {
    for ok in [
        "https://${HOST}/token",
        "http://127.0.0.1:${PORT}/token",
        "${URL}&audience=https://api.anthropic.com",
        "https://idp.example/t?aud=${AUD}",
    ] {
        assert!(check_template(ok).is_ok(), "{ok}");
    }
    for (bad, part) in [
        ("https://${HOST}\\evil/t", "backslash"),
        ("${URL}\t", "white space"),
        ("https://idp.exa%6dple/t?aud=${AUD}", "letters, digits"),
        ("https://idp.example\\@evil/t?aud=${AUD}", "backslash"),
    ] {
        let error = check_template(bad).unwrap_err();
        assert!(error.contains(part), "{bad:?}: {error}");
    }
}
