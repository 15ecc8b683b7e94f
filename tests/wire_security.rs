//! Issue 14, items 2, 3, 6 and 7 (leaks), end to end through the real
//! component in the real host: a token that would inject shell code, a
//! `Host` header from a config, a URL the two parsers would read
//! differently, and a failing command that prints a granted variable.

#![deny(unsafe_code)]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};

use anthropic_wif_host::Error;
use anthropic_wif_host::loopback::{LoopbackServer, Reply};
use common::*;
use serde_json::json;

/// A token endpoint on loopback that issues `token`.
fn issuing(token: &str) -> LoopbackServer {
    let token = token.to_string();
    LoopbackServer::start(move |_| {
        Reply::json(
            200,
            &json!({"access_token": token, "expires_in": 3600, "token_type": "Bearer"}),
        )
    })
    .expect("the token server starts")
}

/// A policy granting the identity token file and the token endpoint.
fn file_and_origin(path: &Path, origin: &str) -> String {
    format!(
        "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
        q(path.display().to_string()),
        q(origin)
    )
}

/// Runs `eval "$(wif-host token --format env …)"` in `sh`, in `dir`, and
/// returns what `$ANTHROPIC_AUTH_TOKEN` holds afterwards (`<unset>` when
/// nothing was exported).
fn eval_in_shell(dir: &Path, config: &Path, policy: &Path) -> String {
    let cache = tempfile::tempdir().expect("a cache folder");
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"eval "$("$@")"; printf %s "${ANTHROPIC_AUTH_TOKEN-<unset>}""#)
        .arg("sh")
        .arg(wif_host())
        .args(["token", "--format", "env", "--no-cache", "--config"])
        .arg(config)
        .arg("--policy")
        .arg(policy)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("running sh");
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn a_token_that_would_inject_shell_code_is_never_printed() {
    let files = Files::new();
    let jwt = files.write("jwt", JWT);
    let marker = files.dir().join("INJECTED");
    let injections = [
        format!("sk-ant-x'; touch {}; echo '", marker.display()),
        format!("sk-ant-x\ntouch {}", marker.display()),
        format!("sk-ant-x$(touch {})", marker.display()),
    ];
    for token in &injections {
        let server = issuing(token);
        let auth = auth(&server.url(), json!({"file": jwt}));
        let policy = file_and_origin(&jwt, &server.url());
        for format in ["env", "raw", "json"] {
            let run = cli_token(&files, &auth, &policy, format, &[]);
            assert_eq!(run.code, Some(5), "{token:?} --format {format}: {run:?}");
            assert_eq!(run.stdout, "", "{token:?} --format {format}");
            assert!(run.stderr.contains("RFC 6750"), "{}", run.stderr);
            assert!(!run.stderr.contains("touch"), "{}", run.stderr);
        }
        let config = files.write("config.json", auth.to_string());
        let policy = files.write("policy.toml", &policy);
        assert_eq!(
            eval_in_shell(&files.dir(), &config, &policy),
            "<unset>",
            "{token:?}"
        );
        assert!(!marker.exists(), "{token:?} ran in the shell");
    }
}

#[test]
fn a_valid_token_round_trips_through_eval_exactly() {
    let files = Files::new();
    let jwt = files.write("jwt", JWT);
    let token = "sk-ant-oat01-A+b/c~d.e_f-0==";
    let server = issuing(token);
    let config = files.write(
        "config.json",
        auth(&server.url(), json!({"file": jwt})).to_string(),
    );
    let policy = files.write("policy.toml", file_and_origin(&jwt, &server.url()));
    assert_eq!(eval_in_shell(&files.dir(), &config, &policy), token);
    let run = cli_token(
        &files,
        &auth(&server.url(), json!({"file": jwt})),
        &file_and_origin(&jwt, &server.url()),
        "raw",
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, format!("{token}\n"));
}

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

#[test]
fn a_url_the_parsers_read_differently_is_refused_naming_the_field() {
    let files = Files::new();
    let jwt = files.write("jwt", JWT);
    for (field, auth) in [
        (
            "workload_identity_federation.base_url",
            auth(
                "https://evil.example\\.api.anthropic.com",
                json!({"file": jwt}),
            ),
        ),
        (
            "workload_identity_federation.identity_token.url",
            auth(
                "https://api.anthropic.com",
                json!({"url": "https://idp.example\\@evil.example/t"}),
            ),
        ),
        (
            "workload_identity_federation.identity_token.url",
            auth(
                "https://api.anthropic.com",
                json!({"url": "https://idp.exam\tple/t"}),
            ),
        ),
    ] {
        let config = files.write("config.json", auth.to_string());
        let run = run_wif_host(
            &[
                OsStr::new("check"),
                OsStr::new("--config"),
                config.as_os_str(),
            ],
            &[],
        );
        assert_eq!(run.code, Some(3), "{run:?}");
        assert!(run.stderr.contains(field), "{}", run.stderr);
        assert!(!run.stderr.contains("evil.example\\"), "{}", run.stderr);
    }
}

#[test]
fn a_failing_command_s_stderr_hides_granted_variables_and_credentials() {
    let files = Files::new();
    let tokens = token_server();
    let var = "WIF_IT_WIRE_GRANTED_SECRET";
    let secret = "granted-secret-value-5e1d";
    let script = format!(
        "echo \"+ curl -u me:${var} -H 'Authorization: Bearer {JWT}'\" >&2; \
         echo 'error: audience mismatch' >&2; exit 3"
    );
    let argv = ["sh", "-c", script.as_str()];
    let policy = format!(
        "[env]\nallow = [{}]\n[commands]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
        q(var),
        q_list(&argv),
        q(tokens.url())
    );
    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({"command": argv})),
        &policy,
        "raw",
        &[(var, secret)],
    );
    assert_eq!(run.code, Some(5), "{run:?}");
    assert!(run.stderr.contains("audience mismatch"), "{}", run.stderr);
    assert!(run.stderr.contains("me:[redacted]"), "{}", run.stderr);
    assert!(run.stderr.contains("Bearer [redacted]"), "{}", run.stderr);
    assert!(!run.stderr.contains(secret), "{}", run.stderr);
    assert!(!run.stderr.contains("eyJ"), "{}", run.stderr);
}
