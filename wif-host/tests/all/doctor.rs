//! `wif-host doctor` reads the identity token as the component would send
//! it and shows its header and claims, never the token: each problem an
//! exchange would refuse (expired, not yet valid, another audience, not a
//! JWT), a long lifetime, and with `--exchange` the exchange and, after a
//! 401, where its reason is visible. Against real files and loopback
//! stand-ins, with the policy the binary derives itself.

use std::time::{SystemTime, UNIX_EPOCH};

use anthropic_wif_loopback::{LoopbackServer, Reply};
use anthropic_wif_test_support::{CliRun, Files, auth, exchanges, token_server};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::run_wif_host;

const SIGNATURE: &str = "c2lnbmF0dXJlLW9mLXRoZS1pZGVudGl0eS10b2tlbg";
const JTI: &str = "jti-value-7f3a9c";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWT of `claims`, alg RS256 and kid `key-2026`.
fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.{SIGNATURE}",
        URL_SAFE_NO_PAD
            .encode(json!({"alg": "RS256", "kid": "key-2026", "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// Runs `wif-host doctor [extra]` on a config whose identity token is the
/// file holding `token` and whose token endpoint is `base_url`.
fn doctor(files: &Files, base_url: &str, token: &str, extra: &[&str]) -> CliRun {
    let token_file = files.write("identity-token", token);
    let config = files.write(
        "auth.json",
        auth(base_url, json!({"file": token_file})).to_string(),
    );
    let mut args = vec!["doctor", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_wif_host(&args, &[])
}

/// Neither the token nor any of its three parts, nor the `jti` value,
/// reached stdout or stderr.
fn assert_token_not_shown(run: &CliRun, token: &str) {
    let all = format!("{}{}", run.stdout, run.stderr);
    for part in token.split('.').chain([token, JTI]) {
        assert!(!all.contains(part), "`{part}` was printed:\n{all}");
    }
}

#[test]
fn doctor_shows_the_claims_of_the_identity_token_and_never_the_token() {
    let tokens = token_server();
    let files = Files::new();
    let now = now();
    let token = jwt(&json!({
        "iss": "https://oidc.eks.test/id/ABC",
        "sub": "system:serviceaccount:agents:runner",
        "aud": "https://api.anthropic.com",
        // Minutes away from a unit boundary: the run may take a while.
        "iat": now - 650,
        "exp": now + 3050,
        "jti": JTI,
        "kubernetes.io": {"namespace": "agents"},
    }));

    let run = doctor(&files, &tokens.url(), &token, &[]);

    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "identity token (read by the component as for an exchange; never shown)",
        "a JWT (its signature is not verified here)",
        "header: alg RS256, kid key-2026",
        "iss: https://oidc.eks.test/id/ABC",
        "sub: system:serviceaccount:agents:runner",
        "aud: https://api.anthropic.com",
        "iat: ",
        "(10 min ago)",
        "nbf: absent",
        "(in 50 min; lifetime 61 min)",
        "jti: present (not shown)",
        "other claims (values not shown): kubernetes.io",
        "exchange: not tried",
    ] {
        assert!(
            run.stdout.contains(expected),
            "`{expected}` not in:\n{}",
            run.stdout
        );
    }
    assert!(!run.stdout.contains("PROBLEM") && !run.stdout.contains("warning"));
    assert!(
        !run.stdout.contains("agents\""),
        "a claim value not listed was shown"
    );
    assert_token_not_shown(&run, &token);
    assert!(
        exchanges(&tokens).is_empty(),
        "doctor exchanged without --exchange"
    );
}

#[test]
fn doctor_names_each_problem_of_the_identity_token() {
    let tokens = token_server();
    let base = tokens.url();
    let now = now();
    let cases = [
        (
            json!({"iss": "https://i", "sub": "s", "aud": "https://api.anthropic.com",
                "iat": now - 7200, "exp": now - 3600}),
            "PROBLEM: the token expired 60 min ago",
        ),
        (
            json!({"iss": "https://i", "sub": "s", "aud": "https://api.anthropic.com",
                "nbf": now + 650, "exp": now + 1200}),
            "PROBLEM: the token is not valid yet (nbf is 10 min ahead)",
        ),
        (
            json!({"iss": "https://i", "sub": "s", "aud": base, "exp": now + 600}),
            "PROBLEM: aud is not https://api.anthropic.com (it is the config's base_url",
        ),
        (
            json!({"iss": "https://i", "sub": "s", "aud": "sts.amazonaws.com", "exp": now + 600}),
            "Anthropic validates aud against that fixed value",
        ),
    ];
    for (claims, expected) in cases {
        let files = Files::new();
        let token = jwt(&claims);
        let run = doctor(&files, &base, &token, &[]);
        assert_eq!(run.code, Some(5), "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(expected),
            "`{expected}` not in:\n{}",
            run.stdout
        );
        assert!(
            run.stderr.contains("unreachable or failing"),
            "{}",
            run.stderr
        );
        assert_token_not_shown(&run, &token);
    }

    let files = Files::new();
    let long = jwt(
        &json!({"iss": "https://i", "sub": "s", "aud": "https://api.anthropic.com",
        "iat": now - 60, "exp": now + 3 * 86_400}),
    );
    let run = doctor(&files, &base, &long, &[]);
    assert_eq!(
        run.code,
        Some(0),
        "a long lifetime is a warning:\n{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "warning: the token lives 3 days, longer than identity providers usually allow"
        ),
        "{}",
        run.stdout
    );
    assert_token_not_shown(&run, &long);
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn an_opaque_identity_token_gets_a_note_and_is_not_shown() {
    let tokens = token_server();
    let files = Files::new();
    let opaque = "2YotnFZFEjr1zCsicMWpAA-opaque-access-token";

    let run = doctor(&files, &tokens.url(), opaque, &[]);

    assert_eq!(run.code, Some(5), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!(
            "PROBLEM: the identity token is not a JWT ({} bytes",
            opaque.len()
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("opaque token"), "{}", run.stdout);
    assert_token_not_shown(&run, opaque);
}

#[test]
fn doctor_exchange_reports_an_accepted_exchange_and_explains_a_401() {
    let tokens = token_server();
    let files = Files::new();
    let now = now();
    let token = jwt(
        &json!({"iss": "https://i", "sub": "s", "aud": "https://api.anthropic.com",
        "iat": now - 10, "exp": now + 600, "jti": JTI}),
    );

    let run = doctor(&files, &tokens.url(), &token, &["--exchange"]);

    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("accepted: an access token was issued (not shown)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("it was issued for the identity token read above"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("sk-ant-oat01-demo"),
        "the access token was printed"
    );
    assert_token_not_shown(&run, &token);
    assert_eq!(exchanges(&tokens).len(), 1);

    let refusing = LoopbackServer::start(|_| {
        Reply::json(401, &json!({"error": "invalid_grant"})).header("request-id", "req_refused")
    })
    .unwrap();
    let files = Files::new();
    let run = doctor(&files, &refusing.url(), &token, &["--exchange"]);

    assert_eq!(run.code, Some(5), "{}\n{}", run.stdout, run.stderr);
    for expected in [
        "REFUSED: token endpoint rejected the exchange with status 401",
        "req_refused",
        "the Claude Console does: the authentication history of federation rule fdrl_01integrationtest",
        "the token's iss, sub or aud do not match the federation rule",
        "expired before the exchange",
        "already exchanged (reason jti_reused)",
        "the config sets no workspace_id",
    ] {
        assert!(
            run.stdout.contains(expected),
            "`{expected}` not in:\n{}",
            run.stdout
        );
    }
    assert_token_not_shown(&run, &token);
}
