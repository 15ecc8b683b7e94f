use super::*;

fn origin(url: &str) -> Origin {
    Origin::of(&url::Url::parse(url).unwrap()).unwrap()
}

fn env(pairs: &[(&str, &str)]) -> ProxyEnv {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ProxyEnv::from_lookup(|name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
}

fn proxied_by(setting: &ProxySetting, env: &ProxyEnv, url: &str) -> Option<(String, &'static str)> {
    match select(setting, env, &origin(url)).unwrap() {
        Route::Proxy { proxy, source } => Some((proxy.to_string(), source)),
        Route::Direct(_) => None,
    }
}

#[test]
fn https_urls_read_https_proxy_lowercase_first_then_all_proxy() {
    let both = env(&[
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:2"),
        ("ALL_PROXY", "http://all:3"),
    ]);
    assert_eq!(
        proxied_by(&ProxySetting::Env, &both, "https://api.example.com"),
        Some(("http://lower:1".into(), "https_proxy"))
    );
    let upper = env(&[
        ("HTTPS_PROXY", "http://upper:2"),
        ("ALL_PROXY", "http://all:3"),
    ]);
    assert_eq!(
        proxied_by(&ProxySetting::Env, &upper, "https://api.example.com"),
        Some(("http://upper:2".into(), "HTTPS_PROXY"))
    );
    let all = env(&[
        ("all_proxy", "socks5h://all:3"),
        ("ALL_PROXY", "http://other:4"),
    ]);
    assert_eq!(
        proxied_by(&ProxySetting::Env, &all, "https://api.example.com"),
        Some(("socks5h://all:3".into(), "all_proxy"))
    );
}

#[test]
fn http_urls_read_lowercase_http_proxy_only() {
    let upper = env(&[("HTTP_PROXY", "http://cgi:1")]);
    assert_eq!(
        proxied_by(&ProxySetting::Env, &upper, "http://10.1.2.3"),
        None
    );
    let lower = env(&[("http_proxy", "http://p:1"), ("https_proxy", "http://s:2")]);
    assert_eq!(
        proxied_by(&ProxySetting::Env, &lower, "http://10.1.2.3"),
        Some(("http://p:1".into(), "http_proxy"))
    );
}

#[test]
fn loopback_and_link_local_are_never_proxied() {
    let all = env(&[("https_proxy", "http://p:1"), ("http_proxy", "http://p:1")]);
    let pinned = ProxySetting::Pinned(ProxyUrl::parse("http://pinned:1").unwrap());
    for url in [
        "https://localhost:8443",
        "https://127.0.0.1",
        "https://127.9.9.9:1",
        "http://[::1]:80",
        "http://169.254.169.254",
        "http://[fe80::1]",
        "https://app.localhost",
        "http://[::ffff:127.0.0.1]:8080",
        "http://[::ffff:169.254.169.254]",
    ] {
        assert_eq!(proxied_by(&ProxySetting::Env, &all, url), None, "{url}");
        assert_eq!(proxied_by(&pinned, &all, url), None, "{url}");
    }
}

#[test]
fn the_policy_can_pin_or_refuse_a_proxy() {
    let from_env = env(&[("https_proxy", "http://env:1")]);
    let pinned = ProxySetting::Pinned(ProxyUrl::parse("https://pinned:8443").unwrap());
    assert_eq!(
        proxied_by(&pinned, &ProxyEnv::default(), "https://api.example.com"),
        Some(("https://pinned:8443".into(), "http.proxy (policy)"))
    );
    assert_eq!(
        proxied_by(&ProxySetting::None, &from_env, "https://api.example.com"),
        None
    );
}

#[test]
fn no_proxy_forms() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "https://api.example.com", true),
        ("example.com", "https://api.example.com", true),
        (".example.com", "https://api.example.com", true),
        ("example.com", "https://example.com", true),
        (".example.com", "https://example.com", true),
        ("example.com", "https://notexample.com", false),
        ("EXAMPLE.com", "https://Api.Example.COM", true),
        (
            "  other.org ,  example.com  ",
            "https://api.example.com",
            true,
        ),
        ("other.org,,", "https://api.example.com", false),
        ("10.1.2.3", "https://10.1.2.3", true),
        ("10.1.2.3", "https://10.1.2.4", false),
        ("10.0.0.0/8", "https://10.200.3.4", true),
        ("10.0.0.0/8", "https://11.0.0.1", false),
        ("192.168.1.0/24", "https://192.168.1.77:8443", true),
        ("0.0.0.0/0", "https://8.8.8.8", true),
        ("2001:db8::/32", "https://[2001:db8::5]", true),
        ("2001:db8::/32", "https://[2001:db9::5]", false),
        ("2001:db8::5", "https://[2001:db8::5]", true),
        ("[2001:db8::5]:8443", "https://[2001:db8::5]:8443", true),
        ("[2001:db8::5]:8443", "https://[2001:db8::5]", false),
        ("example.com:8443", "https://api.example.com:8443", true),
        ("example.com:8443", "https://api.example.com", false),
        ("example.com:443", "https://api.example.com", true),
        ("10.0.0.0/8", "https://ten.example.com", false),
    ];
    for (list, url, bypassed) in cases {
        let e = env(&[("https_proxy", "http://p:1"), ("no_proxy", list)]);
        assert_eq!(
            proxied_by(&ProxySetting::Env, &e, url).is_none(),
            *bypassed,
            "no_proxy={list:?} url={url}"
        );
    }
}

#[test]
fn no_proxy_reads_lowercase_first_and_says_which_entry_matched() {
    let e = env(&[
        ("https_proxy", "http://p:1"),
        ("no_proxy", "a.org, example.com"),
        ("NO_PROXY", "other.net"),
    ]);
    assert_eq!(
        select(&ProxySetting::Env, &e, &origin("https://api.example.com")).unwrap(),
        Route::Direct("no_proxy entry `example.com` matches".into())
    );
    let upper = env(&[("https_proxy", "http://p:1"), ("NO_PROXY", "example.com")]);
    assert!(proxied_by(&ProxySetting::Env, &upper, "https://api.example.com").is_none());
}

#[test]
fn proxy_urls_parse_as_curl_reads_them() {
    assert_eq!(
        ProxyUrl::parse("proxy.corp:3128").unwrap().to_string(),
        "http://proxy.corp:3128"
    );
    assert_eq!(ProxyUrl::parse("http://proxy.corp").unwrap().port(), 80);
    assert_eq!(ProxyUrl::parse("https://proxy.corp").unwrap().port(), 443);
    assert_eq!(ProxyUrl::parse("socks5://proxy.corp").unwrap().port(), 1080);
    assert_eq!(
        ProxyUrl::parse("socks5h://proxy.corp:9").unwrap().scheme(),
        "socks5h"
    );
    assert!(
        ProxyUrl::parse("socks4://proxy.corp")
            .unwrap_err()
            .to_string()
            .contains("socks5h")
    );
    assert_eq!(
        ProxyUrl::parse("http://proxy.corp/path"),
        Err(ProxyUrlError::PathOrQuery)
    );
    assert!(ProxyUrl::parse("http://").is_err());
    assert!(ProxyUrl::parse("http://").is_err_and(|e| !e.is_transient()));
}

#[test]
fn proxy_credentials_never_show() {
    let proxy = ProxyUrl::parse("http://us%40er:p%3Ass-w0rd@proxy.corp:3128").unwrap();
    assert!(proxy.has_credentials());
    let shown = format!(
        "{proxy} {proxy:?} {:?}",
        ProxySetting::Pinned(proxy.clone())
    );
    assert!(
        !shown.contains("w0rd") && !shown.contains("us%40er"),
        "{shown}"
    );
    assert!(shown.contains("proxy.corp:3128"));
    assert!(proxy.expose().contains("p%3Ass-w0rd"));
    use base64::Engine;
    assert_eq!(
        proxy.basic_credentials(),
        Some(base64::engine::general_purpose::STANDARD.encode("us@er:p:ss-w0rd"))
    );
    assert_eq!(
        ProxyUrl::parse("http://p:1").unwrap().basic_credentials(),
        None
    );
    let e = env(&[("https_proxy", "http://user:s3cret@p:1")]);
    assert!(!format!("{e:?}").contains("s3cret"));
    let bad = env(&[("https_proxy", "ftp://user:s3cret@p:1")]);
    let error = select(&ProxySetting::Env, &bad, &origin("https://api.example.com")).unwrap_err();
    assert!(error.to_string().starts_with("proxy variable https_proxy"));
    assert!(!error.to_string().contains("s3cret"));
}
