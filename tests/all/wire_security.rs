//! Issue 14, items 2, 3, 6 and 7 (leaks), end to end through the real
//! component in the real host: a token that would inject shell code, a
//! `Host` header from a config, a URL the two parsers would read
//! differently, and a failing command that prints a granted variable.

use anthropic_wif_host::Error;
use anthropic_wif_test_support::*;
use serde_json::json;

#[test]
fn a_host_header_in_the_config_never_reaches_the_wire() {
    let identity = RawServer::start(|stream, _| respond(stream, 200, &[], JWT.as_bytes()));
    let tokens = token_server();
    let policy = policy(&format!(
        "[http]\nallow_origins = {}\n",
        q_list(&[identity.url(), tokens.url()])
    ));
    let provider = provider(policy);
    let url = format!("{}/oidc", identity.url());
    for name in [
        "Host",
        "host",
        "Transfer-Encoding",
        "Content-Length",
        "Proxy-Authorization",
    ] {
        let config = config(
            &tokens.url(),
            json!({"url": url, "headers": {name: "internal-admin.svc"}}),
        );
        match provider.get_token(&config) {
            Err(Error::InvalidConfig { field, message }) => {
                assert_eq!(
                    field,
                    format!("workload_identity_federation.identity_token.headers.{name}")
                );
                assert!(message.contains("set by the HTTP client"), "{message}");
            }
            other => panic!("{name}: expected an invalid config, got {other:?}"),
        }
    }
    assert_eq!(identity.connections(), 0, "a refused config connected");
    assert!(exchanges(&tokens).is_empty());

    // Control: without it, the request goes out with the URL's own host.
    let config = config(
        &tokens.url(),
        json!({"url": url, "headers": {"X-Host": "a"}}),
    );
    provider.get_token(&config).expect("a token");
    let requests = identity.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("host"),
        Some(format!("127.0.0.1:{}", identity.port()).as_str())
    );
    assert_eq!(requests[0].header("x-host"), Some("a"));
}
