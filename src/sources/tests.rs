use serde_json::json;

use super::*;
use crate::capabilities::CommandOutput;
use crate::testing::{FakeCaps, assert_no_secret, config, respond};

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2ln";

fn source_error(result: Result<Secret, Error>, kind: SourceKind, part: &str) -> String {
    match result {
        Err(Error::SourceFailed {
            kind: k,
            federation_rule_id,
            message,
        }) => {
            assert_eq!(k, kind, "{message}");
            assert_eq!(federation_rule_id, "fdrl_rule1");
            assert!(message.contains(part), "`{message}` lacks `{part}`");
            let shown = Error::SourceFailed {
                kind: k,
                federation_rule_id,
                message: message.clone(),
            }
            .to_string();
            assert!(
                shown.contains(&format!("{kind} source")) && shown.contains("fdrl_rule1"),
                "{shown}"
            );
            message
        }
        other => panic!("expected a {kind} source error, got {other:?}"),
    }
}

#[test]
fn file_source_trims_and_reads_every_time() {
    let mut caps = FakeCaps::new().file("/t", &format!("  {JWT}\n"));
    let cfg = config(json!({"file": "/t"}));
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), JWT);
    caps = caps.file("/t", "rotated");
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), "rotated");
}

#[test]
fn file_source_failures_are_distinct() {
    let cfg = config(json!({"file": "/t"}));
    source_error(
        read_assertion(&FakeCaps::new(), &cfg),
        SourceKind::File,
        "/t does not exist",
    );
    source_error(
        read_assertion(&FakeCaps::new().file("/t", " \n"), &cfg),
        SourceKind::File,
        "/t is empty",
    );
    let mut dir = FakeCaps::new();
    dir.files
        .insert("/t".into(), Err(CapError::IsDirectory("/t".into())));
    source_error(
        read_assertion(&dir, &cfg),
        SourceKind::File,
        "/t is a directory",
    );
    let mut bad = FakeCaps::new();
    bad.files.insert("/t".into(), Ok(vec![0xff, 0xfe]));
    source_error(
        read_assertion(&bad, &cfg),
        SourceKind::File,
        "not valid UTF-8",
    );
}

#[test]
fn a_denied_capability_names_it() {
    let mut caps = FakeCaps::new();
    caps.files.insert(
        "/t".into(),
        Err(CapError::Denied("path /t is not granted".into())),
    );
    let err = read_assertion(&caps, &config(json!({"file": "/t"}))).unwrap_err();
    assert_eq!(
        err,
        Error::Denied {
            capability: Capability::ReadFile,
            detail: "path /t is not granted".into()
        }
    );
    assert!(err.to_string().starts_with("read-file denied"), "{err}");
}

#[test]
fn env_source() {
    let cfg = config(json!({"env": "ID_TOKEN"}));
    assert_eq!(
        read_assertion(&FakeCaps::new().env("ID_TOKEN", JWT), &cfg)
            .unwrap()
            .expose(),
        JWT
    );
    source_error(
        read_assertion(&FakeCaps::new(), &cfg),
        SourceKind::Env,
        "ID_TOKEN is not set",
    );
    source_error(
        read_assertion(&FakeCaps::new().env("ID_TOKEN", " "), &cfg),
        SourceKind::Env,
        "ID_TOKEN is empty",
    );
}

fn output(code: Option<i32>, stdout: &str, stderr: &[u8]) -> Result<CommandOutput, CapError> {
    Ok(CommandOutput {
        exit_code: code,
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.to_vec(),
    })
}

#[test]
fn command_source_runs_argv_with_the_timeout() {
    let caps = FakeCaps::new().commands(|_, _| output(Some(0), &format!("{JWT}\n"), b""));
    let cfg = config(json!({"command": ["gcloud", "auth", "print-identity-token"]}));
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), JWT);
    assert_eq!(
        caps.commands.borrow()[0],
        (
            vec![
                "gcloud".into(),
                "auth".into(),
                "print-identity-token".into()
            ],
            30_000
        )
    );
}

/// Issue 14, item 7: a failing helper run under `set -x` prints what it
/// fetched and sent; no credential-shaped string of its stderr reaches the
/// error.
#[test]
fn a_failing_command_s_stderr_is_redacted() {
    let cfg = config(json!({"command": ["get-token"]}));
    let stderr = format!(
        "+ curl -H 'Authorization: Bearer {JWT}' https://idp.example\n\
         + export ANTHROPIC_API_KEY=sk-ant-api03-secret_key-Zx9\n\
         error: audience mismatch\n"
    );
    let msg = source_error(
        read_assertion(
            &FakeCaps::new().commands(move |_, _| output(Some(1), "", stderr.as_bytes())),
            &cfg,
        ),
        SourceKind::Command,
        "exited with status 1 (stderr: + curl -H 'Authorization: Bearer [redacted]'",
    );
    assert!(msg.contains("ANTHROPIC_API_KEY=[redacted]"), "{msg}");
    assert!(msg.contains("audience mismatch"), "{msg}");
    for secret in [JWT, "eyJzdWIi", "sk-ant-api03", "secret_key-Zx9"] {
        assert!(!msg.contains(secret), "`{secret}` leaked: {msg}");
    }
}

#[test]
fn command_source_failures() {
    let cfg = config(json!({"command": ["gcloud"]}));
    let long_stderr = "é".repeat(1000).into_bytes();
    let msg = source_error(
        read_assertion(
            &FakeCaps::new().commands(move |_, _| output(Some(2), "", &long_stderr)),
            &cfg,
        ),
        SourceKind::Command,
        "exited with status 2 (stderr: éé",
    );
    assert!(
        msg.len() < 500,
        "stderr snippet is bounded: {} bytes",
        msg.len()
    );
    source_error(
        read_assertion(
            &FakeCaps::new().commands(|_, _| output(None, "", b"")),
            &cfg,
        ),
        SourceKind::Command,
        "ended by a signal",
    );
    source_error(
        read_assertion(
            &FakeCaps::new().commands(|_, _| output(Some(0), "\n", b"")),
            &cfg,
        ),
        SourceKind::Command,
        "printed nothing on stdout",
    );
    source_error(
        read_assertion(
            &FakeCaps::new().commands(|_, _| Err(CapError::Timeout("30 s".into()))),
            &cfg,
        ),
        SourceKind::Command,
        "did not finish in time",
    );
    source_error(
        read_assertion(
            &FakeCaps::new().commands(|_, _| Err(CapError::NotFound("gcloud".into()))),
            &cfg,
        ),
        SourceKind::Command,
        "`gcloud` was not found",
    );
    assert!(matches!(
        read_assertion(&FakeCaps::new(), &cfg),
        Err(Error::Denied {
            capability: Capability::RunCommand,
            ..
        })
    ));
}

const GH_URL: &str = "${REQ_URL}&audience=https://api.anthropic.com";

fn github_caps() -> FakeCaps {
    FakeCaps::new()
        .env(
            "REQ_URL",
            "http://127.0.0.1:9/token?api-version=2.0&secret-query=s3cr3t",
        )
        .env("REQ_TOKEN", "gh-request-secret")
}

#[test]
fn url_source_expands_url_and_headers_and_picks_the_field() {
    let caps = github_caps().route("http://127.0.0.1:9/", |_| {
        respond(200, &format!("{{\"value\":\"{JWT}\",\"count\":1}}"))
    });
    let cfg = config(
        json!({"url": GH_URL, "headers": {"Authorization": "bearer ${REQ_TOKEN}"}, "response_field": "value"}),
    );
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), JWT);
    let requests = caps.requests.borrow();
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].url,
        "http://127.0.0.1:9/token?api-version=2.0&secret-query=s3cr3t&audience=https://api.anthropic.com"
    );
    let auth = requests[0]
        .headers
        .iter()
        .find(|h| h.name == "Authorization")
        .unwrap();
    assert_eq!(auth.value, "bearer gh-request-secret");
}

#[test]
fn url_source_without_a_field_takes_the_trimmed_body() {
    let caps = FakeCaps::new().route("http://169.254.169.254/", |_| {
        respond(200, &format!("{JWT}\n"))
    });
    let cfg = config(
        json!({"url": "http://169.254.169.254/token", "headers": {"Metadata-Flavor": "Google"}}),
    );
    assert_eq!(read_assertion(&caps, &cfg).unwrap().expose(), JWT);
}

#[test]
fn url_source_field_errors_are_distinct() {
    let cfg = config(json!({"url": "https://idp.test/t", "response_field": "value"}));
    let with_body = |body: &'static str| {
        FakeCaps::new().route("https://idp.test/", move |_| respond(200, body))
    };
    source_error(
        read_assertion(&with_body("{}"), &cfg),
        SourceKind::Url,
        "has no field `value`",
    );
    source_error(
        read_assertion(&with_body("{\"value\":3}"), &cfg),
        SourceKind::Url,
        "is a number, not a string",
    );
    source_error(
        read_assertion(&with_body("{\"value\":\" \"}"), &cfg),
        SourceKind::Url,
        "`value` of the response of GET https://idp.test/t is empty",
    );
    source_error(
        read_assertion(&with_body("not json"), &cfg),
        SourceKind::Url,
        "did not return JSON",
    );
    source_error(
        read_assertion(&with_body("[1]"), &cfg),
        SourceKind::Url,
        "not an object",
    );
}

#[test]
fn url_source_errors_show_the_url_as_written() {
    let cfg = config(json!({"url": GH_URL, "headers": {"Authorization": "bearer ${REQ_TOKEN}"}}));
    let caps = github_caps().route("http://127.0.0.1:9/", |r| {
        let echoed = r
            .headers
            .iter()
            .map(|h| h.value.clone())
            .collect::<Vec<_>>()
            .join(",");
        respond(403, &format!("forbidden for {} with {echoed}", r.url))
    });
    let err = read_assertion(&caps, &cfg).unwrap_err();
    let msg = source_error(
        Err(err.clone()),
        SourceKind::Url,
        "GET ${REQ_URL}&audience=https://api.anthropic.com returned status 403",
    );
    assert!(msg.contains("forbidden"), "{msg}");
    assert_no_secret(&err, &["s3cr3t", "gh-request-secret", "127.0.0.1:9"]);

    let redirect = github_caps().route("http://127.0.0.1:9/", |_| respond(302, ""));
    source_error(
        read_assertion(&redirect, &cfg),
        SourceKind::Url,
        "redirects are not followed",
    );

    let failing = github_caps().route("http://127.0.0.1:9/", |_| {
        Err(CapError::Failed("connection refused".into()))
    });
    let err = read_assertion(&failing, &cfg).unwrap_err();
    source_error(Err(err.clone()), SourceKind::Url, "connection refused");
    assert_no_secret(&err, &["s3cr3t", "gh-request-secret"]);
}

#[test]
fn url_source_unset_variable_is_named() {
    let cfg = config(json!({"url": GH_URL, "headers": {"Authorization": "bearer ${REQ_TOKEN}"}}));
    let caps = FakeCaps::new().env("REQ_URL", "https://idp.test/?a=1");
    source_error(
        read_assertion(&caps, &cfg),
        SourceKind::Url,
        "REQ_TOKEN, used in the url source, is not set",
    );
    assert!(
        caps.requests.borrow().is_empty(),
        "nothing is fetched with a variable missing"
    );
}

#[test]
fn url_source_expanding_to_a_non_url_is_an_error() {
    let cfg = config(json!({"url": "${REQ_URL}"}));
    let caps = FakeCaps::new().env("REQ_URL", "file:///etc/passwd");
    source_error(
        read_assertion(&caps, &cfg),
        SourceKind::Url,
        "${REQ_URL} does not expand to an absolute http",
    );
}

#[test]
fn url_source_expanding_to_an_invalid_url_says_why_without_the_value() {
    let cfg = config(json!({"url": "https://${IDP_HOST}/t"}));
    let caps = FakeCaps::new().env("IDP_HOST", "idp secret-host");
    let message = source_error(
        read_assertion(&caps, &cfg),
        SourceKind::Url,
        "does not expand to an absolute http or https URL: it has white space",
    );
    assert!(!message.contains("secret-host"), "{message}");
}

#[test]
fn url_source_header_expanding_to_a_line_break_is_refused() {
    let cfg = config(json!({"url": "https://idp.test/t", "headers": {"X": "${V}"}}));
    let caps = FakeCaps::new().env("V", "a\r\nInjected: yes");
    source_error(
        read_assertion(&caps, &cfg),
        SourceKind::Url,
        "header X expands to a value with a line break",
    );
}

#[test]
fn an_oversized_assertion_is_refused() {
    let cfg = config(json!({"env": "BIG"}));
    let ok = "a".repeat(MAX_ASSERTION_BYTES);
    assert!(read_assertion(&FakeCaps::new().env("BIG", &ok), &cfg).is_ok());
    let big = "a".repeat(MAX_ASSERTION_BYTES + 1);
    source_error(
        read_assertion(&FakeCaps::new().env("BIG", &big), &cfg),
        SourceKind::Env,
        "16385 bytes; the limit is 16384",
    );
}

#[test]
fn an_echo_of_part_of_the_expanded_url_is_redacted() {
    let cfg = config(json!({"url": GH_URL, "headers": {"Authorization": "bearer ${REQ_TOKEN}"}}));
    let caps = github_caps().route("http://127.0.0.1:9/", |r| {
        let path = r
            .url
            .split_once("127.0.0.1:9")
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        respond(500, &format!("failed {path} token=gh-request-secret"))
    });
    let err = read_assertion(&caps, &cfg).unwrap_err();
    assert_no_secret(&err, &["s3cr3t", "gh-request-secret", "127.0.0.1:9"]);
    assert!(
        err.to_string()
            .contains("status 500: failed /token?[redacted]"),
        "{err}"
    );
}

#[test]
fn a_duplicate_field_named_after_a_secret_is_not_named() {
    // Found by the identity_response fuzz target: an endpoint echoed the
    // bearer token as a field name, twice.
    let cfg = config(
        json!({"url": GH_URL, "headers": {"Authorization": "bearer ${REQ_TOKEN}"}, "response_field": "value"}),
    );
    let caps = github_caps().route("http://127.0.0.1:9/", |_| {
        respond(
            200,
            r#"{"gh-request-secret": 1, "gh-request-secret": 2, "value": "x"}"#,
        )
    });
    let err = read_assertion(&caps, &cfg).unwrap_err();
    assert_no_secret(&err, &["gh-request-secret"]);
    assert!(
        err.to_string().contains("gives a field more than once"),
        "{err}"
    );
}
