//! The checked-in JSON Schema matches the Rust types, agrees with the
//! validator on a matrix of documents, and accepts every example.

use std::path::PathBuf;

use anthropic_wif::Config;
use anthropic_wif::schema::auth_schema;
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&auth_schema()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn the_checked_in_schema_is_generated_from_the_types() {
    let path = root().join("docs/auth.schema.json");
    let generated = auth_schema();
    if std::env::var_os("WIF_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/auth.schema.json is out of date; regenerate it with `WIF_UPDATE_SCHEMA=1 cargo test --test schema`"
    );
}

#[test]
fn the_schema_has_one_of_six_sources_id_patterns_and_no_extra_fields() {
    let schema: Value = serde_json::from_str(&auth_schema()).unwrap();
    let text = schema.to_string();
    assert_eq!(schema["additionalProperties"], false);
    let source = &schema["$defs"]["IdentityToken"];
    assert_eq!(
        source["oneOf"].as_array().map(Vec::len),
        Some(6),
        "{source}"
    );
    for pattern in ["^fdrl_", "^svac_", "wrkspc_"] {
        assert!(text.contains(pattern), "{pattern}");
    }
}

fn auth(wif: Value) -> Value {
    json!({"type": "workload_identity_federation", "workload_identity_federation": wif})
}

fn wif(source: Value) -> Value {
    json!({
        "federation_rule_id": "fdrl_1",
        "organization_id": "12345678-9abc-def0-1234-56789abcdef0",
        "identity_token": source,
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut w = wif(json!({"file": "/t"}));
    w[field] = value;
    auth(w)
}

#[test]
fn schema_and_validator_agree() {
    let cases = [
        auth(wif(json!({"file": "/t"}))),
        auth(wif(json!({"env": "TOKEN"}))),
        auth(wif(json!({"command": ["gcloud", "auth"]}))),
        auth(wif(
            json!({"url": "https://idp/t", "headers": {"A": "b ${X}"}, "response_field": "value"}),
        )),
        auth(wif(json!({"url": "${URL}&aud=x"}))),
        with("service_account_id", json!("svac_1")),
        with("workspace_id", json!("default")),
        with("workspace_id", json!("wrkspc_9")),
        with("base_url", json!("http://127.0.0.1:8080")),
        with("base_url", json!("https://gw.example.com/anthropic")),
        auth(wif(json!({"aws": {}}))),
        auth(wif(
            json!({"aws": {"region": "us-east-1", "audience": "https://api.anthropic.com", "signing_algorithm": "ES384", "duration_seconds": 60}}),
        )),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "https://idp.example/token", "client_id": "c", "private_key_file": "/k.pem", "key_id": "k1", "scope": "s"}}),
        )),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "http://127.0.0.1:9/token", "client_id": "c", "client_secret_env": "SECRET"}}),
        )),
        // invalid
        json!({"type": "api_key"}),
        auth(
            json!({"organization_id": "12345678-9abc-def0-1234-56789abcdef0", "identity_token": {"file": "/t"}}),
        ),
        with("federation_rule_id", json!("rule_1")),
        with("organization_id", json!("not-a-uuid")),
        with("service_account_id", json!("sa_1")),
        with("workspace_id", json!("ws")),
        with("base_url", json!("http://api.anthropic.com")),
        with("extra", json!(1)),
        auth(wif(json!({}))),
        auth(wif(json!({"file": "/t", "env": "X"}))),
        auth(wif(json!({"file": "/t", "headers": {"A": "b"}}))),
        auth(wif(json!({"env": "X", "response_field": "value"}))),
        auth(wif(json!({"command": []}))),
        auth(wif(json!({"command": ["a", ""]}))),
        auth(wif(json!({"file": ""}))),
        auth(wif(json!({"url": "ftp://x"}))),
        auth(wif(json!({"file": "/t", "other": 1}))),
        auth(wif(json!({"aws": {"region": "US"}}))),
        auth(wif(json!({"aws": {"signing_algorithm": "HS256"}}))),
        auth(wif(json!({"aws": {"duration_seconds": 3601}}))),
        auth(wif(json!({"aws": {"duration_seconds": 59}}))),
        auth(wif(json!({"aws": {"zone": "a"}}))),
        auth(wif(json!({"aws": "us-east-1"}))),
        auth(wif(json!({"aws": {}, "file": "/t"}))),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "https://idp.example/token", "client_id": "c"}}),
        )),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "https://idp.example/token", "client_id": "c", "private_key_file": "/k", "client_secret_env": "S"}}),
        )),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "https://idp.example/token", "client_id": "c", "client_secret_env": "S", "key_id": "k"}}),
        )),
        auth(wif(
            json!({"oauth_client_credentials": {"token_url": "http://idp.example/token", "client_id": "c", "client_secret_env": "S"}}),
        )),
    ];
    let validator = validator();
    for case in cases {
        let by_schema = validator.is_valid(&case);
        let by_parser = Config::from_value(&case).is_ok();
        assert_eq!(
            by_schema, by_parser,
            "schema and validator disagree on {case}"
        );
    }
}

/// Every `auth` block under `examples/`: each folder's `auth.yaml` and each
/// model of each agent config.
fn example_auth_blocks() -> Vec<(String, Value)> {
    let examples = root().join("examples");
    let mut blocks = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.push(path.join("auth.yaml"));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    for file in files {
        let document = anthropic_wif_host::config_file::read_document(&file).unwrap();
        let models: Vec<String> = match document.get("models") {
            Some(Value::Object(models)) => models.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if models.is_empty() {
            let block = anthropic_wif_host::config_file::auth_block(&document, None).unwrap();
            blocks.push((file.display().to_string(), block));
        }
        for model in models {
            let block =
                anthropic_wif_host::config_file::auth_block(&document, Some(&model)).unwrap();
            blocks.push((format!("{} --model {model}", file.display()), block));
        }
    }
    blocks
}

#[test]
fn every_example_matches_the_schema_and_the_validator() {
    let validator = validator();
    let blocks = example_auth_blocks();
    assert!(blocks.len() >= 6, "{} blocks", blocks.len());
    for (name, block) in blocks {
        let errors: Vec<String> = validator
            .iter_errors(&block)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
        Config::from_value(&block).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
