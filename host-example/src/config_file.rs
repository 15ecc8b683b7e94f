//! Configuration files: a bare `auth` block, or a whole agent config with
//! `providers:` and `models:`, in YAML or JSON.
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

/// Reads `path` and returns the JSON text of the `auth` block to use.
pub fn load_auth(path: &Path, model: Option<&str>) -> Result<String, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let document: Value = serde_yaml_ng::from_str(&text).map_err(|e| ConfigFileError::Syntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    auth_block(&document, model).map(|auth| auth.to_string())
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
