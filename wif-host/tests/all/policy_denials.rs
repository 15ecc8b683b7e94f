//! The `wif-host` binary side of `tests/all/policy_denials.rs`: the same checks
//! through the command line (exit codes, stdout and stderr).

use crate::cli_token;
use anthropic_wif_test_support::*;
use serde_json::json;

#[test]
fn env_var_not_granted_is_denied_as_get_env_and_the_cli_exits_4() {
    let tokens = token_server();
    let files = Files::new();
    let (var, granted) = ("WIF_IT_DENIED_ENV_TOKEN", "WIF_IT_DENIED_ENV_OTHER");
    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({ "env": var })),
        &format!(
            "[env]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(granted),
            q(tokens.url())
        ),
        "raw",
        &[(var, JWT), (granted, JWT)],
    );

    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(
        run.stderr.contains("get-env denied by the host's policy"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(var), "{}", run.stderr);
    assert!(!run.stderr.contains(JWT), "{}", run.stderr);
    assert_eq!(run.stdout, "");
    assert!(exchanges(&tokens).is_empty());
}

#[test]
fn each_denial_exits_4_from_the_cli() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);
    let cases = [
        (
            "read-file",
            json!({ "file": path }),
            format!("[http]\nallow_origins = [{}]\n", q(tokens.url())),
        ),
        (
            "http-fetch",
            json!({ "file": path }),
            format!("[files]\nallow = [{}]\n", q(path.display().to_string())),
        ),
        (
            "run-command",
            json!({ "command": ["echo", JWT] }),
            format!("[http]\nallow_origins = [{}]\n", q(tokens.url())),
        ),
    ];
    for (capability, source, policy) in cases {
        let run = cli_token(&files, &auth(&tokens.url(), source), &policy, "raw", &[]);
        assert_eq!(run.code, Some(4), "{capability}: {run:?}");
        assert!(
            run.stderr
                .contains(&format!("{capability} denied by the host's policy")),
            "{capability}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{capability}");
    }
    assert!(tokens.requests().is_empty());
}
