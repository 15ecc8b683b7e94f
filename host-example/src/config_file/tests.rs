use serde_json::json;

use super::*;

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

const WIF: &str = "
type: workload_identity_federation
workload_identity_federation:
  federation_rule_id: fdrl_1
  organization_id: 00000000-0000-4000-8000-000000000000
  identity_token:
    file: /token
";

#[test]
fn a_bare_auth_block_or_one_under_auth() {
    let bare = auth_block(&yaml(WIF), None).unwrap();
    assert_eq!(bare["type"], "workload_identity_federation");
    let wrapped = format!(
        "auth:\n{}",
        WIF.lines().map(|l| format!("  {l}\n")).collect::<String>()
    );
    assert_eq!(auth_block(&yaml(&wrapped), None).unwrap(), bare);
    let err = auth_block(&yaml(WIF), Some("m")).unwrap_err().to_string();
    assert!(err.contains("--model needs an agent config"), "{err}");
}

fn agent() -> Value {
    json!({
        "providers": {
            "anthropic": {"base_url": "https://gateway.example", "auth": {"type": "workload_identity_federation", "workload_identity_federation": {"federation_rule_id": "fdrl_provider", "identity_token": {"file": "/p"}}}},
            "corp": {"provider": "anthropic", "auth": {"type": "workload_identity_federation", "workload_identity_federation": {"federation_rule_id": "fdrl_corp", "identity_token": {"file": "/c"}}}},
            "custom": {"auth": {"type": "workload_identity_federation"}},
            "other": {"provider": "openai", "auth": {"type": "workload_identity_federation"}},
            "typed": {"type": "anthropic", "auth": {"type": "workload_identity_federation"}},
            "odd": {"provider": 7, "auth": {"type": "workload_identity_federation"}}
        },
        "models": {
            "sonnet": {"provider": "anthropic"},
            "haiku": {"provider": "anthropic", "auth": {"type": "workload_identity_federation", "workload_identity_federation": {"federation_rule_id": "fdrl_model", "identity_token": {"env": "T"}}}},
            "corp-model": {"provider": "corp"},
            "custom-model": {"provider": "custom"},
            "other-model": {"provider": "other"},
            "typed-model": {"provider": "typed"},
            "odd-model": {"provider": "odd"},
            "openai-model": {"provider": "openai", "auth": {"type": "workload_identity_federation"}}
        }
    })
}

#[test]
fn a_models_auth_wins_over_its_providers() {
    let auth = auth_block(&agent(), Some("haiku")).unwrap();
    assert_eq!(
        auth["workload_identity_federation"]["federation_rule_id"],
        "fdrl_model"
    );
    assert_eq!(
        auth["workload_identity_federation"]["base_url"],
        "https://gateway.example"
    );
    let auth = auth_block(&agent(), Some("sonnet")).unwrap();
    assert_eq!(
        auth["workload_identity_federation"]["federation_rule_id"],
        "fdrl_provider"
    );
    let auth = auth_block(&agent(), Some("corp-model")).unwrap();
    assert_eq!(
        auth["workload_identity_federation"]["federation_rule_id"],
        "fdrl_corp"
    );
    assert!(
        auth["workload_identity_federation"]
            .get("base_url")
            .is_none()
    );
}

#[test]
fn a_custom_provider_names_anthropic_with_provider() {
    let refused = |model: &str| auth_block(&agent(), Some(model)).unwrap_err().to_string();
    let err = refused("custom-model");
    assert!(
        err.contains(
            "provider `custom` does not name its underlying provider: add `provider: anthropic`"
        ),
        "{err}"
    );
    let err = refused("other-model");
    assert!(
        err.contains("providers.other.provider is `openai`")
            && err.contains("works only with the anthropic provider"),
        "{err}"
    );
    let err = refused("typed-model");
    assert_eq!(
        err,
        "providers.typed.type: docker-agent names the underlying provider with `provider:`; write \
         `provider: anthropic`"
    );
    let err = refused("odd-model");
    assert!(
        err.contains("providers.odd.provider must be a provider name"),
        "{err}"
    );
    let err = refused("openai-model");
    assert!(
        err.contains(
            "provider `openai` is neither the built-in `anthropic` nor a key of `providers`"
        ),
        "a model's own auth on a built-in provider other than anthropic: {err}"
    );
}

#[test]
fn the_auth_block_is_located_in_the_file() {
    let located = |model: &str| locate_auth(&agent(), Some(model)).unwrap().location;
    assert_eq!(located("haiku").as_deref(), Some("models.haiku.auth"));
    assert_eq!(
        located("sonnet").as_deref(),
        Some("providers.anthropic.auth")
    );
    assert_eq!(
        located("corp-model").as_deref(),
        Some("providers.corp.auth")
    );
    let listed =
        json!({"models": [{"name": "a", "auth": {"type": "workload_identity_federation"}}]});
    let auth = locate_auth(&listed, Some("a")).unwrap();
    assert_eq!(auth.location.as_deref(), Some("models[0].auth"));
    assert_eq!(
        auth.field_in_file("workload_identity_federation.x"),
        "models[0].auth.workload_identity_federation.x"
    );
    assert_eq!(auth.field_in_file(""), "models[0].auth");
    let bare = locate_auth(&yaml(WIF), None).unwrap();
    assert_eq!(bare.location, None);
    assert_eq!(bare.field_in_file("type"), "type");
}

#[test]
fn an_ambiguous_agent_config_asks_for_a_model() {
    let err = auth_block(&agent(), None).unwrap_err().to_string();
    assert!(
        err.contains("pick a model with --model") && err.contains("haiku"),
        "{err}"
    );
    let err = auth_block(&agent(), Some("opus")).unwrap_err().to_string();
    assert!(err.contains("model `opus` is not in `models`"), "{err}");
}

#[test]
fn an_agent_config_without_auth_says_so() {
    let agents_only = yaml("agents:\n  root:\n    model: anthropic/claude-sonnet-4-5\n");
    let err = auth_block(&agents_only, None).unwrap_err().to_string();
    assert_eq!(
        err,
        "no provider or model in this config has an `auth` block"
    );
}

#[test]
fn a_single_provider_with_auth_needs_no_model() {
    let config = json!({"providers": {"anthropic": {"auth": {"type": "workload_identity_federation"}}}, "models": [{"name": "a", "provider": "anthropic"}]});
    assert_eq!(
        auth_block(&config, None).unwrap()["type"],
        "workload_identity_federation"
    );
    assert_eq!(
        auth_block(&config, Some("a")).unwrap()["type"],
        "workload_identity_federation"
    );
}

/// The JSON text of the `auth` block of the file at `path`, read as the
/// CLI reads it.
fn load_auth(path: &Path, model: Option<&str>) -> Result<String, ConfigFileError> {
    resolve(Some(path), model, |_| None).map(|located| located.json())
}

#[test]
fn a_config_file_is_read_as_yaml_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let yaml_path = dir.path().join("auth.yaml");
    std::fs::write(&yaml_path, WIF).unwrap();
    let json_path = dir.path().join("auth.json");
    std::fs::write(&json_path, yaml(WIF).to_string()).unwrap();
    assert_eq!(
        load_auth(&yaml_path, None).unwrap(),
        load_auth(&json_path, None).unwrap()
    );
    let missing = load_auth(&dir.path().join("nope.yaml"), None)
        .unwrap_err()
        .to_string();
    assert!(missing.contains("nope.yaml"), "{missing}");
    std::fs::write(&yaml_path, "a: [").unwrap();
    assert!(matches!(
        load_auth(&yaml_path, None),
        Err(ConfigFileError::Syntax { .. })
    ));
}

fn sdk_env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }
}

#[test]
fn the_sdk_variables_describe_an_auth_block() {
    let auth = auth_from_sdk_env(sdk_env(&[
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_env"),
        (
            "ANTHROPIC_ORGANIZATION_ID",
            "00000000-0000-4000-8000-000000000000",
        ),
        ("ANTHROPIC_SERVICE_ACCOUNT_ID", "svac_env"),
        ("ANTHROPIC_WORKSPACE_ID", ""),
        ("ANTHROPIC_IDENTITY_TOKEN_FILE", "/token"),
        ("ANTHROPIC_IDENTITY_TOKEN", "eyJ.ignored"),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
    ]))
    .unwrap()
    .unwrap();
    let wif = &auth["workload_identity_federation"];
    assert_eq!(wif["federation_rule_id"], "fdrl_env");
    assert_eq!(wif["service_account_id"], "svac_env");
    assert!(wif.get("workspace_id").is_none(), "empty means unset");
    assert_eq!(
        wif["identity_token"],
        json!({"file": "/token"}),
        "the file wins"
    );
    assert_eq!(wif["base_url"], "http://127.0.0.1:9");
    assert!(
        !auth.to_string().contains("eyJ.ignored"),
        "the token itself is never copied into the config"
    );
}

#[test]
fn the_sdk_token_variable_becomes_an_env_source() {
    let auth = auth_from_sdk_env(sdk_env(&[
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_env"),
        (
            "ANTHROPIC_ORGANIZATION_ID",
            "00000000-0000-4000-8000-000000000000",
        ),
        ("ANTHROPIC_IDENTITY_TOKEN_FILE", ""),
        ("ANTHROPIC_IDENTITY_TOKEN", "eyJ.secret"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(
        auth["workload_identity_federation"]["identity_token"],
        json!({"env": "ANTHROPIC_IDENTITY_TOKEN"})
    );
    assert!(!auth.to_string().contains("eyJ.secret"));
}

#[test]
fn incomplete_sdk_variables_are_errors_and_no_rule_means_none() {
    assert!(
        auth_from_sdk_env(sdk_env(&[("ANTHROPIC_ORGANIZATION_ID", "x")]))
            .unwrap()
            .is_none()
    );
    assert!(
        auth_from_sdk_env(sdk_env(&[("ANTHROPIC_FEDERATION_RULE_ID", "")]))
            .unwrap()
            .is_none()
    );
    let no_org =
        auth_from_sdk_env(sdk_env(&[("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_1")])).unwrap_err();
    assert!(
        no_org
            .to_string()
            .contains("ANTHROPIC_ORGANIZATION_ID is not"),
        "{no_org}"
    );
    let no_token = auth_from_sdk_env(sdk_env(&[
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_1"),
        ("ANTHROPIC_ORGANIZATION_ID", "o"),
    ]))
    .unwrap_err();
    assert!(
        no_token
            .to_string()
            .contains("neither ANTHROPIC_IDENTITY_TOKEN_FILE"),
        "{no_token}"
    );
}

#[test]
fn a_config_file_wins_over_the_sdk_variables() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.yaml");
    std::fs::write(&path, WIF).unwrap();
    let env = sdk_env(&[
        ("ANTHROPIC_FEDERATION_RULE_ID", "fdrl_env"),
        (
            "ANTHROPIC_ORGANIZATION_ID",
            "00000000-0000-4000-8000-000000000000",
        ),
        ("ANTHROPIC_IDENTITY_TOKEN", "t"),
    ]);
    let from_file = resolve(Some(&path), None, &env).unwrap().json();
    assert!(
        from_file.contains("fdrl_1") && !from_file.contains("fdrl_env"),
        "{from_file}"
    );
    let from_env = resolve(None, None, &env).unwrap().json();
    assert!(from_env.contains("fdrl_env"), "{from_env}");
    let neither = resolve(None, None, sdk_env(&[])).unwrap_err().to_string();
    assert!(neither.contains("pass --config FILE"), "{neither}");
    assert!(resolve(None, Some("m"), &env).is_err());
}
