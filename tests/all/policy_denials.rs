//! Deny by default: each capability the policy does not grant is refused
//! with `Error::Denied`, naming the capability and the refused item, before
//! any I/O happens; the CLI exits 4.

use anthropic_wif_host::Error;
use anthropic_wif_loopback::{LoopbackServer, identity_endpoint};
use anthropic_wif_test_support::*;
use serde_json::json;

fn denial(error: Error) -> (String, String) {
    match error {
        Error::Denied { capability, detail } => (capability, detail),
        other => panic!("expected a denial, got {other:?} ({other})"),
    }
}

#[test]
fn file_not_granted_is_denied_as_read_file() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let other = files.write("other", JWT);
    // A different file in the same folder is granted, not this one.
    let provider = provider(file_policy(&[&other], &[&tokens.url()]));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .unwrap_err();

    let (capability, detail) = denial(error.clone());
    assert_eq!(capability, "read-file");
    assert!(detail.contains(&path.display().to_string()), "{detail}");
    assert!(error.to_string().contains("read-file denied"), "{error}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn symlink_out_of_a_granted_folder_is_denied() {
    let tokens = token_server();
    let granted = Files::new();
    let outside = Files::new();
    let secret = outside.write("secret", JWT);
    let link = granted.dir().join("token");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let provider = provider(policy(&format!(
        "[files]\nallow_prefixes = [{}]\n[http]\nallow_origins = [{}]\n",
        q(granted.dir().display().to_string()),
        q(tokens.url())
    )));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "file": link })))
        .unwrap_err();

    let (capability, detail) = denial(error);
    assert_eq!(capability, "read-file");
    assert!(detail.contains(&link.display().to_string()), "{detail}");
    // Where the link leads is not told (issue 14, item 7).
    assert!(!detail.contains(&secret.display().to_string()), "{detail}");
    assert!(!detail.contains("resolves"), "{detail}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn origin_not_granted_is_denied_as_http_fetch() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    // The file is granted; the token endpoint's origin is not.
    let provider = provider(file_policy(&[&path], &[]));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .unwrap_err();

    let (capability, detail) = denial(error);
    assert_eq!(capability, "http-fetch");
    assert!(detail.contains(&tokens.url()), "{detail}");
    assert!(
        tokens.requests().is_empty(),
        "a denied origin was contacted"
    );
}

#[test]
fn identity_origin_not_granted_is_denied_as_http_fetch() {
    let tokens = token_server();
    let identity = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let provider = provider(file_policy(&[], &[&tokens.url()]));

    let error = provider
        .get_token(&config(
            &tokens.url(),
            json!({ "url": format!("{}/oidc", identity.url()) }),
        ))
        .unwrap_err();

    let (capability, detail) = denial(error);
    assert_eq!(capability, "http-fetch");
    assert!(detail.contains(&identity.url()), "{detail}");
    assert!(identity.requests().is_empty());
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn command_not_granted_is_denied_as_run_command() {
    let tokens = token_server();
    let files = Files::new();
    let marker = files.dir().join("ran");
    // `sh -c` is granted only with a different script prefix.
    let provider = provider(policy(&format!(
        "[commands]\nallow = [[\"echo\"], [\"sh\", \"-c\", \"true\"]]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));
    let script = format!("touch {}; echo {JWT}", marker.display());

    let error = provider
        .get_token(&config(
            &tokens.url(),
            json!({ "command": ["sh", "-c", script] }),
        ))
        .unwrap_err();

    let (capability, detail) = denial(error);
    assert_eq!(capability, "run-command");
    assert!(detail.contains("sh -c"), "{detail}");
    assert!(!marker.exists(), "the denied command ran");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn the_default_policy_grants_nothing() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let provider = anthropic_wif_host::Provider::builder().build().unwrap();

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .unwrap_err();

    assert_eq!(denial(error).0, "read-file");
    // Validation still works without any grant.
    let needs = provider
        .requirements(&config(&tokens.url(), json!({ "file": path })))
        .unwrap();
    assert_eq!(needs.files, [path.display().to_string()]);
    assert_eq!(needs.origins, [tokens.url()]);
}
