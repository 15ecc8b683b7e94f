//! Configuration files: a bare `auth` block, or a whole agent config with
//! `providers:` and `models:`, in YAML or JSON; or, without a file, the
//! official SDKs' environment variables.
//!
//! Precedence: a config file, when one is given, is the whole configuration
//! and the SDK variables are not read; without one, the SDK variables are
//! (see [`auth_from_sdk_env`]).
//!
//! An agent config is read as docker-agent reads it: a model's `auth` wins
//! over its provider's; a model's `provider:` names a built-in provider or a
//! key of `providers:`, and a custom provider names its underlying provider
//! with `provider:`, which must be `anthropic` for an `auth` block to be
//! accepted; a provider's `base_url` becomes the token endpoint's base when
//! the `auth` block sets none. Everything else in the file (`agents`,
//! `toolsets`, `max_tokens`, `provider_opts`, …) is not ours and is ignored.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Why a configuration file could not be turned into an `auth` block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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

/// An `auth` block and where it sits in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedAuth {
    /// The `auth` block.
    pub auth: Value,
    /// Its path in an agent config (`providers.NAME.auth`,
    /// `models.NAME.auth`); `None` for a bare `auth` block or the SDK
    /// variables, where the component's field paths need no prefix.
    pub location: Option<String>,
}

impl LocatedAuth {
    /// The JSON text of the `auth` block, as the component takes it.
    pub fn json(&self) -> String {
        self.auth.to_string()
    }

    /// `field` (a path inside the `auth` block, as the component names it)
    /// as a path in the file.
    pub fn field_in_file(&self, field: &str) -> String {
        match (&self.location, field.is_empty()) {
            (None, _) => field.to_string(),
            (Some(location), true) => location.clone(),
            (Some(location), false) => format!("{location}.{field}"),
        }
    }
}

/// The `auth` block to use: from `config` when a file is given (the SDK
/// variables are then ignored), else from the SDK variables read through
/// `env`.
pub fn resolve(
    config: Option<&Path>,
    model: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LocatedAuth, ConfigFileError> {
    match config {
        Some(path) => locate_auth(&read_document(path)?, model),
        None if model.is_some() => Err(ConfigFileError::Shape(
            "--model needs an agent config given with --config".into(),
        )),
        None => auth_from_sdk_env(env)?.map(|auth| LocatedAuth { auth, location: None }).ok_or_else(|| {
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
    locate_auth(document, model).map(|located| located.auth)
}

/// The `auth` block of a parsed document and where it sits.
pub fn locate_auth(document: &Value, model: Option<&str>) -> Result<LocatedAuth, ConfigFileError> {
    let shape = |m: String| ConfigFileError::Shape(m);
    let Some(top) = document.as_object() else {
        return Err(shape(
            "the config must be a map: an `auth` block or an agent config with `providers:`".into(),
        ));
    };
    if ["providers", "models", "agents"]
        .iter()
        .any(|key| top.contains_key(*key))
    {
        return agent_auth(top, model);
    }
    if model.is_some() {
        return Err(shape(
            "--model needs an agent config with `models:`; this file is a bare `auth` block".into(),
        ));
    }
    let auth = match top.get("auth") {
        Some(auth) if top.len() == 1 => auth.clone(),
        _ => document.clone(),
    };
    Ok(LocatedAuth {
        auth,
        location: None,
    })
}

fn agent_auth(
    top: &Map<String, Value>,
    model: Option<&str>,
) -> Result<LocatedAuth, ConfigFileError> {
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
    let (provider_name, auth, location) = match model {
        Some(name) => {
            let model = models.iter().find(|m| m.name == name).ok_or_else(|| {
                let known: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                shape(format!(
                    "model `{name}` is not in `models` (known: {})",
                    list(&known)
                ))
            })?;
            let provider = match model.settings.get("provider") {
                Some(Value::String(p)) => p.clone(),
                None => "anthropic".to_string(),
                Some(_) => {
                    return Err(shape(format!(
                        "{}.provider must be a provider name",
                        model.path
                    )));
                }
            };
            let (auth, location) = match model.settings.get("auth") {
                Some(auth) => (auth.clone(), format!("{}.auth", model.path)),
                None => {
                    let auth = provider_auth(providers, &provider)?.ok_or_else(|| {
                        shape(format!(
                            "neither model `{name}` nor its provider `{provider}` has an `auth` block"
                        ))
                    })?;
                    (auth, format!("providers.{provider}.auth"))
                }
            };
            (provider, auth, location)
        }
        None => {
            let with_auth: Vec<&String> = providers
                .iter()
                .filter(|(_, p)| p.get("auth").is_some())
                .map(|(n, _)| n)
                .collect();
            let models_with_auth: Vec<&str> = models
                .iter()
                .filter(|m| m.settings.get("auth").is_some())
                .map(|m| m.name.as_str())
                .collect();
            match (with_auth.as_slice(), models_with_auth.is_empty()) {
                ([only], true) => {
                    let auth = provider_auth(providers, only)?.unwrap_or_default();
                    ((*only).clone(), auth, format!("providers.{only}.auth"))
                }
                ([], true) => {
                    return Err(shape(
                        "no provider or model in this config has an `auth` block".into(),
                    ));
                }
                _ => {
                    let choices: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
                    return Err(shape(format!(
                        "several providers or models define `auth`; pick a model with --model (one of: {})",
                        list(&choices)
                    )));
                }
            }
        }
    };
    check_underlying_provider(providers, &provider_name)?;
    Ok(LocatedAuth {
        auth: with_provider_base_url(auth, providers.get(&provider_name)),
        location: Some(location),
    })
}

/// A model of `models`.
struct NamedModel<'a> {
    /// Its name.
    name: String,
    /// Its path in the file: `models.NAME`, or `models[i]` in a list.
    path: String,
    /// Its settings.
    settings: &'a Map<String, Value>,
}

/// `models`, from a map or a list of `{name: …}`.
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
                    .map(|settings| NamedModel {
                        name: name.clone(),
                        path: format!("models.{name}"),
                        settings,
                    })
                    .ok_or_else(|| not_a_model(name))
            })
            .collect(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let settings = entry
                    .as_object()
                    .ok_or_else(|| not_a_model(&i.to_string()))?;
                match settings.get("name") {
                    Some(Value::String(name)) => Ok(NamedModel {
                        name: name.clone(),
                        path: format!("models[{i}]"),
                        settings,
                    }),
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

/// Refuses an `auth` block whose provider is not Anthropic, as docker-agent
/// does: the underlying provider is the `provider:` of the entry of
/// `providers:` that `name` names, else `name` itself (a built-in provider).
fn check_underlying_provider(
    providers: &Map<String, Value>,
    name: &str,
) -> Result<(), ConfigFileError> {
    const ONLY_ANTHROPIC: &str = "an `auth` block of type workload_identity_federation works only with the \
                                  anthropic provider (this tool mints Anthropic tokens only)";
    let shape = ConfigFileError::Shape;
    let Some(entry) = providers.get(name) else {
        return if name == "anthropic" {
            Ok(())
        } else {
            Err(shape(format!(
                "provider `{name}` is neither the built-in `anthropic` nor a key of `providers`: {ONLY_ANTHROPIC}"
            )))
        };
    };
    let Some(entry) = entry.as_object() else {
        return Err(shape(format!("providers.{name} must be a map of settings")));
    };
    if entry.contains_key("type") {
        return Err(shape(format!(
            "providers.{name}.type: docker-agent names the underlying provider with `provider:`; write \
             `provider: anthropic`"
        )));
    }
    match entry.get("provider") {
        Some(Value::String(underlying)) if underlying == "anthropic" => Ok(()),
        None if name == "anthropic" => Ok(()),
        None => Err(shape(format!(
            "provider `{name}` does not name its underlying provider: add `provider: anthropic` to \
             providers.{name}; {ONLY_ANTHROPIC}"
        ))),
        Some(Value::String(underlying)) => Err(shape(format!(
            "providers.{name}.provider is `{underlying}`: {ONLY_ANTHROPIC}"
        ))),
        Some(_) => Err(shape(format!(
            "providers.{name}.provider must be a provider name, e.g. `provider: anthropic`"
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
