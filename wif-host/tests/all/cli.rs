//! The `wif-host` binary: `check`, `policy` and `token`, on YAML auth blocks
//! and agent configs, with its exit codes (0 ok, 3 invalid config or policy,
//! 4 denied, 5 no token) and the token on stdout only.

use std::ffi::OsStr;
use std::path::Path;

use crate::{CliRun, cli_token, run_wif_host};
use anthropic_wif_host::Policy;
use anthropic_wif_loopback::{LoopbackServer, Reply};
use anthropic_wif_test_support::*;
use serde_json::json;

/// Runs `wif-host SUBCOMMAND --config CONFIG` and more arguments.
fn wif(subcommand: &str, config: &Path, more: &[&str]) -> CliRun {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new(subcommand),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    args.extend(more.iter().map(OsStr::new));
    run_wif_host(&args, &[])
}

/// A YAML `auth` block (under `auth:`) reading the token from `file`.
fn yaml_auth(base_url: &str, file: &Path, rule: &str) -> String {
    format!(
        "auth:
  type: workload_identity_federation
  workload_identity_federation:
    federation_rule_id: {rule}
    organization_id: {ORG}
    base_url: {base_url}
    identity_token:
      file: {}
",
        file.display()
    )
}

#[test]
fn check_prints_what_a_valid_yaml_auth_block_requires() {
    let files = Files::new();
    let config = files.write(
        "auth.yaml",
        format!(
            "auth:
  type: workload_identity_federation
  workload_identity_federation:
    federation_rule_id: {RULE}
    organization_id: {ORG}
    base_url: http://127.0.0.1:8421
    identity_token:
      url: ${{WIF_IT_CHECK_URL}}&audience=https://api.anthropic.com
      headers:
        Authorization: bearer ${{WIF_IT_CHECK_TOKEN}}
      response_field: value
"
        ),
    );

    let run = wif("check", &config, &[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("config is valid"), "{}", run.stdout);
    for needed in [
        "WIF_IT_CHECK_URL",
        "WIF_IT_CHECK_TOKEN",
        "http://127.0.0.1:8421",
        "${WIF_IT_CHECK_URL}&audience=https://api.anthropic.com (origin set by a variable)",
    ] {
        assert!(run.stdout.contains(needed), "{needed}: {}", run.stdout);
    }
}

#[test]
fn check_lists_the_file_and_the_token_endpoint() {
    let files = Files::new();
    let token = files.dir().join("token");
    let config = files.write(
        "auth.yaml",
        yaml_auth("https://api.anthropic.com", &token, RULE),
    );

    let run = wif("check", &config, &[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains(&token.display().to_string()),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("https://api.anthropic.com"),
        "{}",
        run.stdout
    );
}

#[test]
fn check_exits_3_naming_the_field_of_an_invalid_block() {
    let files = Files::new();
    let cases = [
        (
            "federation_rule_id: rule_01",
            "workload_identity_federation.federation_rule_id",
        ),
        (
            "organization_id: not-a-uuid",
            "workload_identity_federation.organization_id",
        ),
        (
            "identity_token: {file: /t, env: T}",
            "workload_identity_federation.identity_token",
        ),
        (
            "identity_token: {file: /t, headers: {A: b}}",
            "workload_identity_federation.identity_token.headers",
        ),
        (
            "identity_token: {command: []}",
            "workload_identity_federation.identity_token.command",
        ),
        (
            "base_url: http://api.example.com",
            "workload_identity_federation.base_url",
        ),
        ("federation_rule: fdrl_1", "federation_rule"),
    ];
    for (line, field) in cases {
        let mut fields = vec![
            format!("federation_rule_id: {RULE}"),
            format!("organization_id: {ORG}"),
            "identity_token: {file: /t}".to_string(),
        ];
        let key = line.split(':').next().unwrap();
        match fields
            .iter()
            .position(|f| f.starts_with(&format!("{key}:")))
        {
            Some(i) => fields[i] = line.to_string(),
            None => fields.push(line.to_string()),
        }
        let body: String = fields.iter().map(|f| format!("  {f}\n")).collect();
        let config = files.write(
            "bad.yaml",
            format!("type: workload_identity_federation\nworkload_identity_federation:\n{body}"),
        );

        let run = wif("check", &config, &[]);

        assert_eq!(run.code, Some(3), "{line}: {run:?}");
        assert!(
            run.stderr.contains(&format!("{field}:")),
            "{line}: expected {field} in {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{line}");
    }
}

#[test]
fn check_names_both_sources_when_several_are_given() {
    let files = Files::new();
    let config = files.write(
        "bad.yaml",
        format!(
            "type: workload_identity_federation
workload_identity_federation:
  federation_rule_id: {RULE}
  organization_id: {ORG}
  identity_token:
    file: /t
    command: [echo, x]
"
        ),
    );

    let run = wif("check", &config, &[]);

    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains("file") && run.stderr.contains("command"),
        "{}",
        run.stderr
    );
}

#[test]
fn policy_prints_toml_that_grants_exactly_what_the_config_needs() {
    let tokens = token_server();
    let files = Files::new();
    let token = files.write("token", JWT);
    let config = files.write("auth.yaml", yaml_auth(&tokens.url(), &token, RULE));

    let run = wif("policy", &config, &[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    let policy = Policy::from_toml(&run.stdout)
        .unwrap_or_else(|e| panic!("the printed policy does not parse: {e}\n{}", run.stdout));
    assert_eq!(policy.files, std::slice::from_ref(&token));
    assert!(policy.file_prefixes.is_empty());
    assert!(policy.env.is_empty());
    assert!(policy.commands.is_empty());
    assert_eq!(
        policy
            .origins
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [tokens.url()]
    );

    // And it is enough: a token with exactly that policy.
    let policy_file = files.write("derived.toml", &run.stdout);
    let token_run = wif(
        "token",
        &config,
        &["--policy", policy_file.to_str().unwrap()],
    );
    assert_eq!(token_run.code, Some(0), "{token_run:?}");
    assert_eq!(token_run.stdout, "sk-ant-oat01-demo-1\n");
}

#[test]
fn policy_resolves_a_variable_origin_from_the_environment() {
    let files = Files::new();
    let config = files.write(
        "auth.yaml",
        format!(
            "type: workload_identity_federation
workload_identity_federation:
  federation_rule_id: {RULE}
  organization_id: {ORG}
  identity_token:
    url: ${{WIF_IT_POLICY_ID_URL}}&audience=x
"
        ),
    );
    let args = [
        OsStr::new("policy"),
        OsStr::new("--config"),
        config.as_os_str(),
    ];

    let resolved = run_wif_host(
        &args,
        &[(
            "WIF_IT_POLICY_ID_URL",
            "http://127.0.0.1:8765/token?api-version=2.0",
        )],
    );
    let unresolved = run_wif_host(&args, &[]);

    assert_eq!(resolved.code, Some(0), "{resolved:?}");
    let policy = Policy::from_toml(&resolved.stdout).expect("the printed policy parses");
    let origins: Vec<String> = policy.origins.iter().map(ToString::to_string).collect();
    assert_eq!(
        origins,
        ["https://api.anthropic.com", "http://127.0.0.1:8765"]
    );
    assert_eq!(policy.env, ["WIF_IT_POLICY_ID_URL"]);

    assert_eq!(unresolved.code, Some(0), "{unresolved:?}");
    let policy = Policy::from_toml(&unresolved.stdout).expect("the printed policy parses");
    assert_eq!(policy.origins.len(), 1);
    assert!(
        unresolved.stderr.contains("WIF_IT_POLICY_ID_URL"),
        "a note names the variable: {}",
        unresolved.stderr
    );
}

/// An agent config: the built-in `anthropic` provider (on `base_url`) with
/// its own `auth`, a model that uses it, and a model with an `auth` of its
/// own.
fn agent_config(base_url: &str, provider_token: &Path, model_token: &Path) -> String {
    format!(
        "providers:
  anthropic:
    base_url: {base_url}
    auth:
      type: workload_identity_federation
      workload_identity_federation:
        federation_rule_id: fdrl_provider01
        organization_id: {ORG}
        identity_token:
          file: {}
models:
  claude-sonnet:
    provider: anthropic
  claude-haiku:
    provider: anthropic
    auth:
      type: workload_identity_federation
      workload_identity_federation:
        federation_rule_id: fdrl_model01
        organization_id: {ORG}
        identity_token:
          file: {}
",
        provider_token.display(),
        model_token.display()
    )
}

#[test]
fn model_picks_the_auth_that_wins_in_an_agent_config() {
    let tokens = token_server();
    let files = Files::new();
    let provider_token = files.write("provider-token", "provider-identity-token");
    let model_token = files.write("model-token", "model-identity-token");
    let config = files.write(
        "agent.yaml",
        agent_config(&tokens.url(), &provider_token, &model_token),
    );
    let policy = files.write(
        "policy.toml",
        format!(
            "[files]\nallow = {}\n[http]\nallow_origins = [{}]\n",
            q_list(&[
                provider_token.display().to_string(),
                model_token.display().to_string()
            ]),
            q(tokens.url())
        ),
    );
    let policy = policy.to_str().unwrap();

    let haiku = wif(
        "token",
        &config,
        &["--model", "claude-haiku", "--policy", policy],
    );
    let sonnet = wif(
        "token",
        &config,
        &["--model", "claude-sonnet", "--policy", policy],
    );
    let ambiguous = wif("token", &config, &["--policy", policy]);

    assert_eq!(haiku.code, Some(0), "{haiku:?}");
    assert_eq!(sonnet.code, Some(0), "{sonnet:?}");
    // Both exchanges went to the provider's base_url.
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 2);
    let (first, second) = (body_json(&sent[0]), body_json(&sent[1]));
    assert_eq!(first["federation_rule_id"], "fdrl_model01");
    assert_eq!(first["assertion"], "model-identity-token");
    assert_eq!(second["federation_rule_id"], "fdrl_provider01");
    assert_eq!(second["assertion"], "provider-identity-token");
    assert_eq!(ambiguous.code, Some(3), "{ambiguous:?}");
    assert!(ambiguous.stderr.contains("--model"), "{}", ambiguous.stderr);
}

#[test]
fn a_custom_provider_needs_provider_anthropic() {
    let files = Files::new();
    let token = files.dir().join("token");
    let custom = |kind: &str| {
        format!(
            "providers:
  corp-gateway:
{kind}    base_url: https://llm-gateway.corp.example
    auth:
      type: workload_identity_federation
      workload_identity_federation:
        federation_rule_id: {RULE}
        organization_id: {ORG}
        identity_token:
          file: {}
models:
  claude-corp:
    provider: corp-gateway
",
            token.display()
        )
    };
    let untyped = files.write("untyped.yaml", custom(""));
    let typed = files.write("typed.yaml", custom("    provider: anthropic\n"));

    let refused = wif("check", &untyped, &["--model", "claude-corp"]);
    let accepted = wif("check", &typed, &["--model", "claude-corp"]);

    assert_eq!(refused.code, Some(3), "{refused:?}");
    assert!(
        refused.stderr.contains("add `provider: anthropic`"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("corp-gateway"),
        "{}",
        refused.stderr
    );
    assert_eq!(accepted.code, Some(0), "{accepted:?}");
    assert!(
        accepted.stdout.contains("https://llm-gateway.corp.example"),
        "the provider's base_url is the token endpoint: {}",
        accepted.stdout
    );
}

#[test]
fn raw_format_prints_exactly_the_token_on_stdout_and_nothing_on_stderr() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);

    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({ "file": path })),
        &format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(path.display().to_string()),
            q(tokens.url())
        ),
        "raw",
        &[],
    );

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "sk-ant-oat01-demo-1\n");
    assert!(!run.stderr.contains("sk-ant-oat01"), "{}", run.stderr);
    assert!(!run.stderr.contains(JWT), "{}", run.stderr);
}

#[test]
fn env_format_prints_an_export_line() {
    let tokens = token_server();
    let files = Files::new();
    let path = files.write("token", JWT);

    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({ "file": path })),
        &format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(path.display().to_string()),
            q(tokens.url())
        ),
        "env",
        &[],
    );

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout,
        "export ANTHROPIC_AUTH_TOKEN='sk-ant-oat01-demo-1'\n"
    );
    assert!(!run.stderr.contains("sk-ant-oat01"), "{}", run.stderr);
}

#[test]
fn a_rejected_exchange_exits_5_with_the_reason_on_stderr() {
    let tokens = LoopbackServer::start(|_| {
        Reply::json(
            401,
            &json!({"error": "invalid_grant", "error_description": "issuer not trusted"}),
        )
        .header("request-id", "req_01cli")
    })
    .unwrap();
    let files = Files::new();
    let path = files.write("token", JWT);

    let run = cli_token(
        &files,
        &auth(&tokens.url(), json!({ "file": path })),
        &format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(path.display().to_string()),
            q(tokens.url())
        ),
        "raw",
        &[],
    );

    assert_eq!(run.code, Some(5), "{run:?}");
    assert_eq!(run.stdout, "");
    for part in ["401", "invalid_grant", "issuer not trusted", "req_01cli"] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    assert!(!run.stderr.contains(JWT), "{}", run.stderr);
}

#[test]
fn an_invalid_policy_file_exits_3_naming_the_key() {
    let files = Files::new();
    let path = files.write("token", JWT);

    let config = files.write(
        "config.json",
        auth("https://api.anthropic.com", json!({ "file": path })).to_string(),
    );
    let policy = files.write(
        "policy.toml",
        "[http]\nallow_origins = [\"http://api.example.com\"]\n",
    );
    let run = wif("token", &config, &["--policy", policy.to_str().unwrap()]);

    assert_eq!(run.code, Some(3), "{run:?}");
    assert!(
        run.stderr.contains("http.allow_origins[0]"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn version_names_the_embedded_component_by_its_sha256() {
    let run = run_wif_host(&["--version"], &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let digest = anthropic_wif_host::EMBEDDED_COMPONENT_SHA256;
    assert_eq!(digest.len(), 64, "{digest}");
    assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()), "{digest}");
    assert_eq!(
        run.stdout.trim(),
        format!(
            "wif-host {} (component sha256 {digest})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// `wif-host check --config PATH` (or `token --config ok --policy PATH`)
/// refuses a local input that is not a small regular file before reading it
/// whole, naming the file and why.
#[test]
fn config_and_policy_files_must_be_small_regular_files() {
    let files = Files::new();
    let token = files.write("token", "eyJ.identity.token");
    let config = files.write("ok.yaml", yaml_auth("http://127.0.0.1:9", &token, RULE));
    let big = files.write("big.yaml", "#".repeat(1024 * 1024 + 1));
    let fifo = files.dir().join("fifo.yaml");
    mkfifo(&fifo);
    let directory = files.dir();

    let cases: [(&Path, &str); 4] = [
        (
            Path::new("/dev/zero"),
            "it is a character device, not a regular file",
        ),
        (&fifo, "it is a FIFO (named pipe), not a regular file"),
        (&big, "it is larger than the 1 MiB cap for this file"),
        (&directory, "it is a directory, not a regular file"),
    ];
    for (path, why) in cases {
        let run = wif("check", path, &[]);
        assert_eq!(run.code, Some(3), "{}: {run:?}", path.display());
        assert!(
            run.stderr.contains(&format!(
                "cannot read config file {}: {why}",
                path.display()
            )),
            "{}: {}",
            path.display(),
            run.stderr
        );

        let run = wif("token", &config, &["--policy", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(3), "{}: {run:?}", path.display());
        assert!(
            run.stderr.contains(&format!(
                "cannot read policy file {}: {why}",
                path.display()
            )),
            "{}: {}",
            path.display(),
            run.stderr
        );
    }
}
