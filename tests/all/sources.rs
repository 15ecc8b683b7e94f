//! The four identity-token sources, end to end: the embedded component in the
//! host, real files, real child processes, real loopback servers, and the
//! real `wif-host` binary for everything that reads environment variables.

use anthropic_wif_host::{Error, SourceKind};
use anthropic_wif_loopback::{LoopbackServer, Reply, identity_endpoint};
use anthropic_wif_test_support::*;
use serde_json::json;
use std::time::Duration;

fn source_failure(error: Error) -> (SourceKind, String, String) {
    match error {
        Error::SourceFailed {
            kind,
            federation_rule_id,
            message,
        } => (kind, federation_rule_id, message),
        other => panic!("expected a source failure, got {other:?} ({other})"),
    }
}

#[test]
fn file_source_mints_a_token() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", format!("{JWT}\n"));
    let provider = provider(file_policy(&[&path], &[&tokens.url()]));

    let token = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .expect("a token from the file source");

    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
    assert_eq!(token.token_type, "Bearer");
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1);
    assert_eq!(assertion_of(&sent[0]), JWT);
}

#[test]
fn command_source_mints_a_token() {
    let tokens = token_server();
    let provider = provider(policy(&format!(
        "[commands]\nallow = [[\"echo\"]]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));

    let token = provider
        .get_token(&config(&tokens.url(), json!({ "command": ["echo", JWT] })))
        .expect("a token from the command source");

    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1);
    // `echo` adds a newline; the assertion is trimmed.
    assert_eq!(assertion_of(&sent[0]), JWT);
}

#[test]
fn identity_url_non_2xx_is_a_url_source_error_with_status_and_url_as_written() {
    let tokens = token_server();
    let identity =
        LoopbackServer::start(|_| Reply::text(403, "forbidden: audience not allowed")).unwrap();
    let url = format!("{}/oidc/token?audience=anthropic", identity.url());
    let provider = provider(file_policy(&[], &[&identity.url(), &tokens.url()]));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "url": url })))
        .unwrap_err();

    let (kind, rule, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Url);
    assert_eq!(rule, RULE);
    assert!(message.contains("403"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("forbidden: audience not allowed"),
        "{message}"
    );
    assert_eq!(identity.requests().len(), 1);
    assert!(exchanges(&tokens).is_empty(), "no exchange after a failure");
}

#[test]
fn identity_url_redirect_is_not_followed() {
    let tokens = token_server();
    let target = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN)).unwrap();
    let location = format!("{}/elsewhere", target.url());
    let identity =
        LoopbackServer::start(move |_| Reply::text(302, "moved").header("location", &location))
            .unwrap();
    let url = format!("{}/oidc/token", identity.url());
    // Both origins are granted: only the no-redirect rule stands in the way.
    let provider = provider(file_policy(
        &[],
        &[&identity.url(), &target.url(), &tokens.url()],
    ));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "url": url })))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Url);
    assert!(message.contains("302"), "{message}");
    assert!(message.contains("redirects are not followed"), "{message}");
    assert_eq!(identity.requests().len(), 1);
    assert_eq!(target.requests().len(), 0, "the redirect was followed");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn identity_url_body_over_the_cap_is_an_error() {
    let tokens = token_server();
    let big = "e".repeat(5000);
    let identity = LoopbackServer::start(move |_| Reply::text(200, &big)).unwrap();
    let url = format!("{}/oidc/token", identity.url());
    let provider = provider(policy(&format!(
        "[http]\nallow_origins = {}\nmax_body_bytes = 1000\n",
        q_list(&[identity.url(), tokens.url()])
    )));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "url": url })))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Url);
    assert!(message.contains("too large"), "{message}");
    assert!(message.contains("1000"), "{message}");
    assert!(
        exchanges(&tokens).is_empty(),
        "a cut body was used as an assertion"
    );
}

#[test]
fn identity_url_slower_than_the_timeout_is_an_error() {
    let tokens = token_server();
    let identity = LoopbackServer::start(|_| {
        Reply::json(200, &json!({"value": JWT})).delayed(Duration::from_secs(3))
    })
    .unwrap();
    let url = format!("{}/oidc/token", identity.url());
    let provider = provider(policy(&format!(
        "[http]\nallow_origins = {}\ntimeout_secs = 0.5\n",
        q_list(&[identity.url(), tokens.url()])
    )));

    let error = provider
        .get_token(&config(
            &tokens.url(),
            json!({ "url": url, "response_field": "value" }),
        ))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Url);
    assert!(message.contains("timed out"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn failing_command_reports_its_exit_status_and_stderr() {
    let tokens = token_server();
    let provider = provider(policy(&format!(
        "[commands]\nallow = [[\"sh\", \"-c\"]]\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));
    let script = "echo 'gcloud: credentials expired, run gcloud auth login' >&2; exit 7";

    let error = provider
        .get_token(&config(
            &tokens.url(),
            json!({ "command": ["sh", "-c", script] }),
        ))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Command);
    assert!(message.contains("status 7"), "{message}");
    assert!(
        message.contains("gcloud: credentials expired, run gcloud auth login"),
        "{message}"
    );
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn command_past_the_policy_timeout_is_killed_and_reported() {
    let tokens = token_server();
    let provider = provider(policy(&format!(
        "[commands]\nallow = [[\"sleep\"]]\ntimeout_secs = 0.5\n[http]\nallow_origins = [{}]\n",
        q(tokens.url())
    )));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "command": ["sleep", "5"] })))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::Command);
    assert!(message.contains("did not finish in time"), "{message}");
    assert!(message.contains("sleep"), "{message}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn missing_empty_and_directory_files_are_distinct_errors() {
    let tokens = token_server();
    let files = Files::new();
    let empty = files.write("empty", "  \n");
    let missing = files.dir().join("missing");
    let folder = files.dir().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let provider = provider(policy(&format!(
        "[files]\nallow_prefixes = [{}]\n[http]\nallow_origins = [{}]\n",
        q(files.dir().display().to_string()),
        q(tokens.url())
    )));
    let message_for = |path: &std::path::Path| {
        let (kind, _, message) = source_failure(
            provider
                .get_token(&config(&tokens.url(), json!({ "file": path })))
                .unwrap_err(),
        );
        assert_eq!(kind, SourceKind::File);
        assert!(message.contains(&path.display().to_string()), "{message}");
        message
    };

    let missing = message_for(&missing);
    let empty = message_for(&empty);
    let folder = message_for(&folder);

    assert!(missing.contains("does not exist"), "{missing}");
    assert!(empty.contains("is empty"), "{empty}");
    assert!(folder.contains("is a directory"), "{folder}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn an_assertion_over_16_kib_is_refused_before_any_exchange() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", "a".repeat(16_385));
    let provider = provider(file_policy(&[&path], &[&tokens.url()]));

    let error = provider
        .get_token(&config(&tokens.url(), json!({ "file": path })))
        .unwrap_err();

    let (kind, _, message) = source_failure(error);
    assert_eq!(kind, SourceKind::File);
    assert!(message.contains("16385 bytes"), "{message}");
    assert!(message.contains("16384"), "{message}");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn each_exchange_reads_the_source_again() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", "first-identity-token");
    let provider = provider(file_policy(&[&path], &[&tokens.url()]));
    let config = config(&tokens.url(), json!({ "file": path }));

    provider.get_token(&config).unwrap();
    files.write("token", "second-identity-token");
    provider.invalidate(&config).unwrap();
    provider.get_token(&config).unwrap();

    let sent: Vec<String> = exchanges(&tokens).iter().map(assertion_of).collect();
    assert_eq!(sent, ["first-identity-token", "second-identity-token"]);
}

#[test]
fn azure_example_reads_the_managed_identity_token_from_imds() {
    // examples/azure/auth.yaml, with IMDS's link-local address replaced by
    // a loopback stand-in that answers as IMDS does.
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/azure/auth.yaml");
    let json = anthropic_wif_host::config_file::auth_block(
        &anthropic_wif_host::config_file::read_document(&example).unwrap(),
        None,
    )
    .unwrap()
    .to_string();
    let imds = LoopbackServer::start(|request| {
        let expected = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://anthropic-wif";
        if request.header("metadata") == Some("true") && request.path == expected {
            Reply::json(
                200,
                &json!({"access_token": JWT, "expires_in": "86399", "token_type": "Bearer", "resource": "api://anthropic-wif"}),
            )
        } else {
            Reply::json(400, &json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}))
        }
    })
    .unwrap();
    let tokens = token_server();
    let mut auth: serde_json::Value =
        serde_json::from_str(&json.replace("http://169.254.169.254", &imds.url())).unwrap();
    auth["workload_identity_federation"]["base_url"] = json!(tokens.url());
    let provider = provider(policy(&format!(
        "[http]\nallow_origins = [{}, {}]\n",
        q(imds.url()),
        q(tokens.url())
    )));
    let token = provider.get_token(&auth.to_string()).unwrap();
    assert_eq!(token.token.expose(), "sk-ant-oat01-demo-1");
    assert_eq!(imds.requests()[0].method, "GET");
    assert_eq!(assertion_of(&exchanges(&tokens)[0]), JWT);
}
