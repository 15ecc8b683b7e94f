//! Configuration files: a bare `auth` block, or a whole agent config with
//! `providers:` and `models:`, in YAML or JSON; or, without a file, the
//! official SDKs' environment variables.
//!
//! Precedence: a config file, when one is given, is the whole configuration
//! and the SDK variables are not read; without one, the SDK variables are
//! (see [`auth_from_sdk_env`]).
//!
//! In an agent config a model's `auth` wins over its provider's, a provider's
//! `base_url` becomes the token endpoint's base when the `auth` block sets
//! none, and a provider other than the built-in `anthropic` must say
//! `type: anthropic` for its `auth` to be accepted.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Why a configuration file could not be turned into an `auth` block.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Neither valid YAML nor JSON.
    #[error("config file {path} is not valid YAML or JSON: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The document does not hold a usable `auth` block.
    #[error("{0}")]
    Shape(String),
}

/// The official SDKs' variables, in the order they are read.
pub const SDK_VARIABLES: [&str; 7] = [
    "ANTHROPIC_FEDERATION_RULE_ID",
    "ANTHROPIC_ORGANIZATION_ID",
    "ANTHROPIC_SERVICE_ACCOUNT_ID",
    "ANTHROPIC_WORKSPACE_ID",
    "ANTHROPIC_IDENTITY_TOKEN_FILE",
    "ANTHROPIC_IDENTITY_TOKEN",
    "ANTHROPIC_BASE_URL",
];

/// The JSON text of the `auth` block to use: from `config` when a file is
/// given (the SDK variables are then ignored), else from the SDK variables
/// read through `env`.
pub fn resolve(
    config: Option<&Path>,
    model: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigFileError> {
    match config {
        Some(path) => load_auth(path, model),
        None if model.is_some() => Err(ConfigFileError::Shape(
            "--model needs an agent config given with --config".into(),
        )),
        None => auth_from_sdk_env(env)?.map(|auth| auth.to_string()).ok_or_else(|| {
            ConfigFileError::Shape(
                "no --config given and ANTHROPIC_FEDERATION_RULE_ID is not set: pass --config FILE or set the SDK \
                 variables (ANTHROPIC_FEDERATION_RULE_ID, ANTHROPIC_ORGANIZATION_ID, ANTHROPIC_IDENTITY_TOKEN_FILE or \
                 ANTHROPIC_IDENTITY_TOKEN, …)"
                    .into(),
            )
        }),
    }
}

/// The `auth` block the official SDKs' environment variables describe;
/// `None` when `ANTHROPIC_FEDERATION_RULE_ID` is unset. An empty variable
/// counts as unset. `ANTHROPIC_IDENTITY_TOKEN_FILE` wins over
/// `ANTHROPIC_IDENTITY_TOKEN`, which is then read by the component through
/// `get-env` like any `env` source.
pub fn auth_from_sdk_env(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Value>, ConfigFileError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let Some(rule) = var("ANTHROPIC_FEDERATION_RULE_ID") else {
        return Ok(None);
    };
    let organization = var("ANTHROPIC_ORGANIZATION_ID").ok_or_else(|| {
        ConfigFileError::Shape(
            "ANTHROPIC_FEDERATION_RULE_ID is set but ANTHROPIC_ORGANIZATION_ID is not".into(),
        )
    })?;
    let identity_token = match (
        var("ANTHROPIC_IDENTITY_TOKEN_FILE"),
        var("ANTHROPIC_IDENTITY_TOKEN"),
    ) {
        (Some(file), _) => serde_json::json!({"file": file}),
        (None, Some(_)) => serde_json::json!({"env": "ANTHROPIC_IDENTITY_TOKEN"}),
        (None, None) => {
            return Err(ConfigFileError::Shape(
                "ANTHROPIC_FEDERATION_RULE_ID is set but neither ANTHROPIC_IDENTITY_TOKEN_FILE nor \
                 ANTHROPIC_IDENTITY_TOKEN is"
                    .into(),
            ));
        }
    };
    let mut wif = Map::new();
    wif.insert("federation_rule_id".into(), Value::String(rule));
    wif.insert("organization_id".into(), Value::String(organization));
    for (name, field) in [
        ("ANTHROPIC_SERVICE_ACCOUNT_ID", "service_account_id"),
        ("ANTHROPIC_WORKSPACE_ID", "workspace_id"),
        ("ANTHROPIC_BASE_URL", "base_url"),
    ] {
        if let Some(value) = var(name) {
            wif.insert(field.into(), Value::String(value));
        }
    }
    wif.insert("identity_token".into(), identity_token);
    Ok(Some(
        serde_json::json!({"type": "workload_identity_federation", "workload_identity_federation": wif}),
    ))
}

/// Reads `path` and returns the JSON text of the `auth` block to use.
pub fn load_auth(path: &Path, model: Option<&str>) -> Result<String, ConfigFileError> {
    auth_block(&read_document(path)?, model).map(|auth| auth.to_string())
}

/// Reads a YAML or JSON file as a JSON value.
pub fn read_document(path: &Path) -> Result<Value, ConfigFileError> {
    let text = crate::local_file::read_text(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_yaml_ng::from_str(&text).map_err(|e| ConfigFileError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The `auth` block of a parsed document.
pub fn auth_block(document: &Value, model: Option<&str>) -> Result<Value, ConfigFileError> {
    let shape = |m: String| ConfigFileError::Shape(m);
    let Some(top) = document.as_object() else {
        return Err(shape(
            "the config must be a map: an `auth` block or an agent config with `providers:`".into(),
        ));
    };
    if top.contains_key("providers") || top.contains_key("models") {
        return agent_auth(top, model);
    }
    if model.is_some() {
        return Err(shape(
            "--model needs an agent config with `models:`; this file is a bare `auth` block".into(),
        ));
    }
    match top.get("auth") {
        Some(auth) if top.len() == 1 => Ok(auth.clone()),
        _ => Ok(document.clone()),
    }
}

fn agent_auth(top: &Map<String, Value>, model: Option<&str>) -> Result<Value, ConfigFileError> {
    let shape = ConfigFileError::Shape;
    let empty = Map::new();
    let providers = match top.get("providers") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            return Err(shape(
                "`providers` must be a map of provider names to settings".into(),
            ));
        }
    };
    let models = models(top.get("models"))?;
    let (provider_name, auth) = match model {
        Some(name) => {
            let entry = models
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, e)| *e)
                .ok_or_else(|| {
                    let known: Vec<&str> = models.iter().map(|(n, _)| n.as_str()).collect();
                    shape(format!(
                        "model `{name}` is not in `models` (known: {})",
                        list(&known)
                    ))
                })?;
            let provider = match entry.get("provider") {
                Some(Value::String(p)) => p.clone(),
                None => "anthropic".to_string(),
                Some(_) => {
                    return Err(shape(format!(
                        "models.{name}.provider must be a provider name"
                    )));
                }
            };
            let auth = match entry.get("auth") {
                Some(auth) => auth.clone(),
                None => provider_auth(providers, &provider)?.ok_or_else(|| {
                    shape(format!(
                        "neither model `{name}` nor its provider `{provider}` has an `auth` block"
                    ))
                })?,
            };
            (provider, auth)
        }
        None => {
            let with_auth: Vec<&String> = providers
                .iter()
                .filter(|(_, p)| p.get("auth").is_some())
                .map(|(n, _)| n)
                .collect();
            let models_with_auth: Vec<&str> = models
                .iter()
                .filter(|(_, e)| e.get("auth").is_some())
                .map(|(n, _)| n.as_str())
                .collect();
            match (with_auth.as_slice(), models_with_auth.is_empty()) {
                ([only], true) => {
                    let auth = provider_auth(providers, only)?.unwrap_or_default();
                    ((*only).clone(), auth)
                }
                ([], true) => {
                    return Err(shape(
                        "no provider or model in this config has an `auth` block".into(),
                    ));
                }
                _ => {
                    let choices: Vec<&str> = models.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(shape(format!(
                        "several providers or models define `auth`; pick a model with --model (one of: {})",
                        list(&choices)
                    )));
                }
            }
        }
    };
    check_provider_type(providers, &provider_name)?;
    Ok(with_provider_base_url(auth, providers.get(&provider_name)))
}

/// `models` as (name, entry) pairs, from a map or a list of `{name: …}`.
/// A model's name and its settings.
type NamedModel<'a> = (String, &'a Map<String, Value>);

fn models(value: Option<&Value>) -> Result<Vec<NamedModel<'_>>, ConfigFileError> {
    let not_a_model =
        |what: &str| ConfigFileError::Shape(format!("`models` entry {what} must be a map"));
    match value {
        None => Ok(Vec::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, entry)| {
                entry
                    .as_object()
                    .map(|e| (name.clone(), e))
                    .ok_or_else(|| not_a_model(name))
            })
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let entry = entry
                    .as_object()
                    .ok_or_else(|| not_a_model(&i.to_string()))?;
                match entry.get("name") {
                    Some(Value::String(name)) => Ok((name.clone(), entry)),
                    _ => Err(ConfigFileError::Shape(format!(
                        "`models` entry {i} has no `name`"
                    ))),
                }
            })
            .collect(),
        Some(_) => Err(ConfigFileError::Shape(
            "`models` must be a map or a list".into(),
        )),
    }
}

fn provider_auth(
    providers: &Map<String, Value>,
    name: &str,
) -> Result<Option<Value>, ConfigFileError> {
    match providers.get(name) {
        Some(provider) => Ok(provider.get("auth").cloned()),
        None if name == "anthropic" => Ok(None),
        None => Err(ConfigFileError::Shape(format!(
            "provider `{name}` is not in `providers`"
        ))),
    }
}

fn check_provider_type(providers: &Map<String, Value>, name: &str) -> Result<(), ConfigFileError> {
    let kind = providers.get(name).and_then(|p| p.get("type"));
    match kind {
        Some(Value::String(t)) if t == "anthropic" => Ok(()),
        None if name == "anthropic" => Ok(()),
        None => Err(ConfigFileError::Shape(format!(
            "provider `{name}` is a custom provider: add `type: anthropic` to it, since an `auth` block of type \
             workload_identity_federation is only accepted for Anthropic providers"
        ))),
        Some(other) => Err(ConfigFileError::Shape(format!(
            "provider `{name}` has type {other}; an `auth` block of type workload_identity_federation is only \
             accepted for providers of type `anthropic`"
        ))),
    }
}

fn with_provider_base_url(mut auth: Value, provider: Option<&Value>) -> Value {
    let base_url = provider.and_then(|p| p.get("base_url")).cloned();
    if let (Some(base_url), Some(wif)) = (
        base_url,
        auth.get_mut("workload_identity_federation")
            .and_then(Value::as_object_mut),
    ) {
        wif.entry("base_url").or_insert(base_url);
    }
    auth
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests;
