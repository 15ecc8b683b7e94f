//! docker-agent's own configs work as written, through the `wif-host`
//! binary: a custom provider that names its underlying provider with
//! `provider: anthropic`, `${env.NAME}` references in the identity URL and
//! its headers, and a whole agent config whose other fields are ignored
//! while the `auth` block is validated. Tokens are minted against loopback
//! stand-ins; variables are set only in the child's environment.

#![deny(unsafe_code)]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use anthropic_wif_host::Policy;
use anthropic_wif_host::loopback::{LoopbackServer, identity_endpoint};
use common::*;

/// Runs `wif-host SUBCOMMAND --config CONFIG`, more arguments, and extra
/// environment variables for the child only.
fn wif(subcommand: &str, config: &Path, more: &[&str], env: &[(&str, &str)]) -> CliRun {
    let mut args: Vec<&OsStr> = vec![
        OsStr::new(subcommand),
        OsStr::new("--config"),
        config.as_os_str(),
    ];
    args.extend(more.iter().map(OsStr::new));
    run_wif_host(&args, env)
}

/// docker-agent's custom-provider example (its Anthropic provider page and
/// the issue), the `auth` block written inline: `provider: anthropic` on
/// the custom provider, the model pointing at it. `base_url_line` is
/// inserted under the provider (empty for the example as written).
fn custom_provider_example(base_url_line: &str, token_file: &str) -> String {
    format!(
        "providers:
  anthropic-wif:
    provider: anthropic
{base_url_line}    auth: {{ type: workload_identity_federation, workload_identity_federation: {{ federation_rule_id: {RULE}, organization_id: {ORG}, identity_token: {{ file: {token_file} }} }} }}
models:
  claude:
    provider: anthropic-wif
    model: claude-sonnet-5
"
    )
}

#[test]
fn the_custom_provider_example_passes_check_as_written() {
    let files = Files::new();
    let config = files.write(
        "agent.yaml",
        custom_provider_example("", "/var/run/secrets/anthropic.com/token"),
    );

    let any_model = wif("check", &config, &[], &[]);
    let claude = wif("check", &config, &["--model", "claude"], &[]);

    for run in [&any_model, &claude] {
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(run.stdout.contains("config is valid"), "{}", run.stdout);
        for needed in [
            "/var/run/secrets/anthropic.com/token",
            "https://api.anthropic.com",
        ] {
            assert!(run.stdout.contains(needed), "{needed}: {}", run.stdout);
        }
    }
}

#[test]
fn the_custom_provider_example_mints_a_token_at_its_base_url() {
    let tokens = token_server();
    let files = Files::new();
    let identity = files.write("identity-token", JWT);
    let config = files.write(
        "agent.yaml",
        custom_provider_example(
            &format!("    base_url: {}\n", tokens.url()),
            &identity.display().to_string(),
        ),
    );
    let policy = files.write(
        "policy.toml",
        format!(
            "[files]\nallow = [{}]\n[http]\nallow_origins = [{}]\n",
            q(identity.display().to_string()),
            q(tokens.url())
        ),
    );

    let run = wif(
        "token",
        &config,
        &["--model", "claude", "--policy", policy.to_str().unwrap()],
        &[],
    );

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "sk-ant-oat01-demo-1\n");
    let sent = exchanges(&tokens);
    assert_eq!(
        sent.len(),
        1,
        "the provider's base_url is the token endpoint"
    );
    assert_eq!(assertion_of(&sent[0]), JWT);
    assert_eq!(body_json(&sent[0])["federation_rule_id"], RULE);
}

/// A bare `auth` block for GitHub Actions in docker-agent's documented
/// `${env.NAME}` form, in the URL and in a header.
fn env_form_config(base_url: &str) -> String {
    format!(
        "auth:
  type: workload_identity_federation
  workload_identity_federation:
    federation_rule_id: {RULE}
    organization_id: {ORG}
    base_url: {base_url}
    identity_token:
      url: ${{env.ACTIONS_ID_TOKEN_REQUEST_URL}}&audience=https://api.anthropic.com
      headers:
        Authorization: bearer ${{env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}}
      response_field: value
"
    )
}

#[test]
fn the_env_form_passes_check_and_requires_the_bare_variable_names() {
    let files = Files::new();
    let config = files.write("auth.yaml", env_form_config("https://api.anthropic.com"));

    let run = wif("check", &config, &[], &[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    let variables: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|line| line.trim() != "environment variables:")
        .skip(1)
        .take_while(|line| line.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(
        variables,
        [
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "${env.ACTIONS_ID_TOKEN_REQUEST_URL}&audience=https://api.anthropic.com (origin set by a variable)"
        ),
        "the URL is shown as written: {}",
        run.stdout
    );
}

#[test]
fn the_env_form_mints_a_token_through_a_loopback_identity_endpoint() {
    let tokens = token_server();
    let idp = LoopbackServer::start(identity_endpoint(JWT, REQUEST_TOKEN))
        .expect("the identity server starts");
    let files = Files::new();
    let config = files.write("auth.yaml", env_form_config(&tokens.url()));
    let request_url = format!("{}/token?api-version=2.0", idp.url());
    let env = [
        ("ACTIONS_ID_TOKEN_REQUEST_URL", request_url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN),
    ];

    // The minimal policy resolves the `${env.…}` origin from the child's
    // environment, and is enough for the token.
    let derived = wif("policy", &config, &[], &env);
    let token = wif("token", &config, &[], &env);

    assert_eq!(derived.code, Some(0), "{derived:?}");
    let policy = Policy::from_toml(&derived.stdout).expect("the printed policy parses");
    let origins: Vec<String> = policy.origins.iter().map(ToString::to_string).collect();
    assert_eq!(origins, [tokens.url(), idp.url()]);
    assert_eq!(
        policy.env,
        [
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
        ]
    );
    assert_eq!(token.code, Some(0), "{token:?}");
    assert_eq!(token.stdout, "sk-ant-oat01-demo-1\n");
    let fetched = idp.requests();
    assert_eq!(fetched.len(), 1);
    assert_eq!(
        fetched[0].path,
        "/token?api-version=2.0&audience=https://api.anthropic.com"
    );
    assert_eq!(
        fetched[0].header("authorization"),
        Some(format!("bearer {REQUEST_TOKEN}").as_str())
    );
    let sent = exchanges(&tokens);
    assert_eq!(sent.len(), 1);
    assert_eq!(assertion_of(&sent[0]), JWT);
}

#[test]
fn an_unknown_reference_form_names_the_accepted_ones() {
    let files = Files::new();
    let config = files.write(
        "auth.yaml",
        env_form_config("https://api.anthropic.com").replace(
            "${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}",
            "${secret.REQUEST_TOKEN}",
        ),
    );

    let run = wif("check", &config, &[], &[]);

    assert_eq!(run.code, Some(3), "{run:?}");
    for said in [
        "workload_identity_federation.identity_token.headers.Authorization",
        "`${secret.REQUEST_TOKEN}` is not a valid reference",
        "`${NAME}` or `${env.NAME}`",
    ] {
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
    }
}

/// A whole docker-agent config: agents with instructions, models and
/// toolsets, reusable toolsets, model settings and provider options around
/// one custom provider's `auth` block. `wif_extra` is added to the
/// `workload_identity_federation` block; `provider_key` is the custom
/// provider's line naming its underlying provider.
fn whole_agent_config(provider_key: &str, wif_extra: &str) -> String {
    format!(
        "version: \"5\"
metadata:
  author: platform-team
agents:
  root:
    model: claude
    description: Reviews pull requests
    instruction: |
      You review pull requests. Delegate lookups to the researcher.
    sub_agents: [researcher]
    toolsets:
      - type: filesystem
      - type: shell
      - type: mcp
        ref: docker:duckduckgo
  researcher:
    model: anthropic/claude-haiku-4-5
    instruction: Find things out and report them.
    toolsets:
      - type: think
toolsets:
  fetcher:
    type: fetch
providers:
  anthropic-wif:
    {provider_key}
    base_url: https://llm-gateway.example.com
    max_tokens: 32000
    provider_opts:
      interleaved_thinking: true
    auth:
      type: workload_identity_federation
      workload_identity_federation:
        federation_rule_id: {RULE}
        organization_id: {ORG}
        service_account_id: svac_01reviewer
{wif_extra}        identity_token:
          file: /var/run/secrets/anthropic.com/token
models:
  claude:
    provider: anthropic-wif
    model: claude-sonnet-4-5
    max_tokens: 64000
    thinking_budget: 8192
    temperature: 0.2
    provider_opts:
      top_k: 40
"
    )
}

#[test]
fn a_whole_agent_config_ignores_what_is_not_ours() {
    let files = Files::new();
    let config = files.write("agent.yaml", whole_agent_config("provider: anthropic", ""));

    let run = wif("check", &config, &["--model", "claude"], &[]);
    let any_model = wif("check", &config, &[], &[]);

    assert_eq!(run.code, Some(0), "{run:?}");
    for needed in [
        "/var/run/secrets/anthropic.com/token",
        "https://llm-gateway.example.com",
    ] {
        assert!(run.stdout.contains(needed), "{needed}: {}", run.stdout);
    }
    assert_eq!(any_model.code, Some(0), "{any_model:?}");
    assert_eq!(any_model.stdout, run.stdout);
}

#[test]
fn a_whole_agent_config_still_validates_what_is_ours() {
    let files = Files::new();
    let typo = files.write(
        "typo.yaml",
        whole_agent_config("provider: anthropic", "        workspace: default\n"),
    );
    let typed = files.write("typed.yaml", whole_agent_config("type: anthropic", ""));
    let openai = files.write("openai.yaml", whole_agent_config("provider: openai", ""));
    let unnamed = files.write("unnamed.yaml", whole_agent_config("token_key: X", ""));

    let typo = wif("check", &typo, &["--model", "claude"], &[]);
    let typed = wif("check", &typed, &["--model", "claude"], &[]);
    let openai = wif("check", &openai, &["--model", "claude"], &[]);
    let unnamed = wif("check", &unnamed, &["--model", "claude"], &[]);

    for run in [&typo, &typed, &openai, &unnamed] {
        assert_eq!(run.code, Some(3), "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
    }
    for (run, said) in [
        (
            &typo,
            "providers.anthropic-wif.auth.workload_identity_federation.workspace: is not a known field",
        ),
        (
            &typed,
            "providers.anthropic-wif.type: docker-agent names the underlying provider with `provider:`; \
             write `provider: anthropic`",
        ),
        (&openai, "providers.anthropic-wif.provider is `openai`"),
        (
            &unnamed,
            "add `provider: anthropic` to providers.anthropic-wif",
        ),
    ] {
        assert!(run.stderr.contains(said), "{said}: {}", run.stderr);
    }
}
