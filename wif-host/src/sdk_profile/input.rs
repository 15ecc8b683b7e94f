//! Choosing and reading the configuration: a config file, an SDK profile, or
//! the SDK variables, in the official SDKs' order; and an `oidc_federation`
//! profile read into the same `auth` block a config file gives.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{
    DEFAULT_PROFILE, ENV_CONFIG_DIR, ENV_PROFILE, ProfileError, active_config, config_dir,
    config_path, validate_name,
};
use anthropic_wif_host::config_file::{self, ConfigFileError, LocatedAuth};

/// The `auth` block to use and where it came from.
#[derive(Debug, Clone)]
pub struct Input {
    /// The `auth` block, with its place in an agent config (for messages).
    pub auth: LocatedAuth,
    /// Where it came from.
    pub origin: Origin,
}

/// Where an `auth` block came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file given with `--config`.
    ConfigFile(PathBuf),
    /// An SDK profile: its `configs/NAME.json`.
    Profile(PathBuf),
    /// The SDK variables (`ANTHROPIC_FEDERATION_RULE_ID`, …).
    Environment,
}

/// The `auth` block to use, chosen as the official SDKs choose their
/// credentials (environment read through `env`):
///
/// 1. `config`, when given, is the whole configuration;
/// 2. else the profile `profile` (`--profile`), when given;
/// 3. else the profile `ANTHROPIC_PROFILE` names;
/// 4. else the SDK variables, when `ANTHROPIC_FEDERATION_RULE_ID` is set;
/// 5. else the active profile (the one the `active_config` file names, or
///    `default`), when its file exists, `ANTHROPIC_CONFIG_DIR` is set or
///    `active_config` exists.
///
/// A profile's problems are errors, never a silent fall-through.
pub fn resolve_input(
    config: Option<&Path>,
    model: Option<&str>,
    profile: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Input, ProfileError> {
    if let Some(path) = config {
        let auth = config_file::resolve(Some(path), model, &env)?;
        return Ok(Input {
            auth,
            origin: Origin::ConfigFile(path.to_path_buf()),
        });
    }
    if model.is_some() {
        return Err(ConfigFileError::Shape(
            "--model needs an agent config given with --config".into(),
        )
        .into());
    }
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let named = match (profile, var(ENV_PROFILE)) {
        (Some(name), _) => Some((name.to_string(), "--profile")),
        (None, Some(name)) => Some((name, ENV_PROFILE)),
        (None, None) => None,
    };
    if let Some((name, origin)) = named {
        validate_name(&name, origin)?;
        return read_profile(&config_dir(&env)?, &name, &env);
    }
    if let Some(auth) = config_file::auth_from_sdk_env(&env)? {
        return Ok(Input {
            auth: LocatedAuth {
                auth,
                location: None,
            },
            origin: Origin::Environment,
        });
    }
    let Ok(dir) = config_dir(&env) else {
        return Err(no_config());
    };
    let pointed = active_config(&dir)?;
    let user_configured = var(ENV_CONFIG_DIR).is_some() || pointed.is_some();
    let name = pointed.unwrap_or_else(|| DEFAULT_PROFILE.to_string());
    if user_configured || config_path(&dir, &name).is_file() {
        return read_profile(&dir, &name, &env);
    }
    Err(no_config())
}

fn no_config() -> ProfileError {
    ConfigFileError::Shape(
        "no --config given, no SDK profile selected or found, and ANTHROPIC_FEDERATION_RULE_ID is not set: \
         pass --config FILE or --profile NAME, or set the SDK variables (ANTHROPIC_FEDERATION_RULE_ID, \
         ANTHROPIC_ORGANIZATION_ID, ANTHROPIC_IDENTITY_TOKEN_FILE or ANTHROPIC_IDENTITY_TOKEN, …)"
            .into(),
    )
    .into()
}

/// Reads the profile `name` of the folder `dir` as an `auth` block.
pub fn read_profile(
    dir: &Path,
    name: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Input, ProfileError> {
    let path = config_path(dir, name);
    let document = read_profile_document(&path, name)?;
    let auth = profile_auth(&path, name, document, env)?;
    Ok(Input {
        auth: LocatedAuth {
            auth,
            location: None,
        },
        origin: Origin::Profile(path),
    })
}

/// Reads `configs/NAME.json`: a JSON object, trusted only when nobody but
/// the user (or root) can change it or the folders that lead to it (see
/// [`super::read_trusted`]; the SDKs refuse a profile others can write too).
pub(super) fn read_profile_document(
    path: &Path,
    name: &str,
) -> Result<Map<String, Value>, ProfileError> {
    let (folder, file) = match (path.parent(), path.file_name().and_then(|f| f.to_str())) {
        (Some(folder), Some(file)) => (folder, file),
        _ => return Err(ProfileError::invalid(path, "is not a file path")),
    };
    let Some(text) = super::read_trusted(
        folder,
        file,
        anthropic_wif_host::local_file::MAX_LOCAL_FILE_BYTES,
    )?
    else {
        return Err(ProfileError::invalid(
            path,
            format!(
                "profile {name:?} does not exist (set {ENV_PROFILE} or --profile to pick another, or \
                 {ENV_CONFIG_DIR} to look in another folder)"
            ),
        ));
    };
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| ProfileError::invalid(path, format!("is not valid JSON: {e}")))?;
    match document {
        Value::Object(map) => Ok(map),
        _ => Err(ProfileError::invalid(path, "must hold a JSON object")),
    }
}

/// The `auth` block of a profile document. Empty fields are filled from
/// the `ANTHROPIC_*` variables as the SDKs fill them.
fn profile_auth(
    path: &Path,
    name: &str,
    mut config: Map<String, Value>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Value, ProfileError> {
    let Some(Value::Object(mut auth)) = config.remove("authentication") else {
        return Err(ProfileError::invalid(
            path,
            "has no `authentication` object (expected {\"authentication\": {\"type\": \"oidc_federation\", …}, …})",
        ));
    };
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    let fill = |target: &mut Map<String, Value>, key: &str, variable: &str| {
        if is_unset(target.get(key))
            && let Some(value) = var(variable)
        {
            target.insert(key.into(), Value::String(value));
        }
    };
    fill(&mut config, "base_url", "ANTHROPIC_BASE_URL");
    fill(&mut config, "organization_id", "ANTHROPIC_ORGANIZATION_ID");
    fill(&mut config, "workspace_id", "ANTHROPIC_WORKSPACE_ID");
    match auth.get("type").and_then(Value::as_str) {
        Some("oidc_federation") => {}
        Some("user_oauth") => {
            return Err(ProfileError::invalid(
                path,
                format!(
                    "profile {name:?} is a user_oauth profile: it is the output of a sidecar (such as \
                     `wif-host sync`) or of an interactive login, not an input; point wif-host at the \
                     config the sidecar reads, or at an oidc_federation profile"
                ),
            ));
        }
        Some(other) => {
            return Err(ProfileError::invalid(
                path,
                format!(
                    "authentication.type {other:?} is not supported (expected \"oidc_federation\")"
                ),
            ));
        }
        None => {
            return Err(ProfileError::invalid(
                path,
                "authentication.type must be \"oidc_federation\"",
            ));
        }
    }
    fill(
        &mut auth,
        "federation_rule_id",
        "ANTHROPIC_FEDERATION_RULE_ID",
    );
    fill(
        &mut auth,
        "service_account_id",
        "ANTHROPIC_SERVICE_ACCOUNT_ID",
    );
    fill(&mut auth, "scope", "ANTHROPIC_SCOPE");
    if is_unset(auth.get("identity_token"))
        && let Some(file) = var("ANTHROPIC_IDENTITY_TOKEN_FILE")
    {
        auth.insert(
            "identity_token".into(),
            serde_json::json!({"source": "file", "path": file}),
        );
    }
    let text = |map: &Map<String, Value>, key: &str, field: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProfileError::invalid(
            path,
            format!("{field} must be a string"),
        )),
    };
    if text(&auth, "scope", "authentication.scope")?.is_some() {
        return Err(ProfileError::invalid(
            path,
            "authentication.scope (or ANTHROPIC_SCOPE) is set, but wif-host's exchange sends no scope; \
             remove it rather than get a token broader than asked for",
        ));
    }
    let required = |value: Option<String>, field: &str, variable: &str| {
        value.ok_or_else(|| {
            ProfileError::invalid(
                path,
                format!("{field} is missing (and {variable} is not set)"),
            )
        })
    };
    let mut wif = Map::new();
    wif.insert(
        "federation_rule_id".into(),
        Value::String(required(
            text(
                &auth,
                "federation_rule_id",
                "authentication.federation_rule_id",
            )?,
            "authentication.federation_rule_id",
            "ANTHROPIC_FEDERATION_RULE_ID",
        )?),
    );
    wif.insert(
        "organization_id".into(),
        Value::String(required(
            text(&config, "organization_id", "organization_id")?,
            "organization_id",
            "ANTHROPIC_ORGANIZATION_ID",
        )?),
    );
    if let Some(account) = text(
        &auth,
        "service_account_id",
        "authentication.service_account_id",
    )? {
        wif.insert("service_account_id".into(), Value::String(account));
    }
    if let Some(workspace) = text(&config, "workspace_id", "workspace_id")? {
        wif.insert("workspace_id".into(), Value::String(workspace));
    }
    if let Some(base_url) = text(&config, "base_url", "base_url")? {
        wif.insert(
            "base_url".into(),
            Value::String(base_url.trim_end_matches('/').to_string()),
        );
    }
    wif.insert(
        "identity_token".into(),
        identity_file(path, auth.get("identity_token"))?,
    );
    Ok(
        serde_json::json!({"type": "workload_identity_federation", "workload_identity_federation": wif}),
    )
}

/// `{"source": "file", "path": P}` as our `{"file": P}`; the SDKs know no
/// other source.
fn identity_file(path: &Path, identity_token: Option<&Value>) -> Result<Value, ProfileError> {
    let invalid = |problem: &str| ProfileError::invalid(path, problem);
    let Some(Value::Object(source)) = identity_token.filter(|v| !is_unset(Some(v))) else {
        return Err(match identity_token {
            Some(v) if !is_unset(Some(v)) => {
                invalid("authentication.identity_token must be an object")
            }
            _ => invalid(
                "authentication.identity_token is missing (and ANTHROPIC_IDENTITY_TOKEN_FILE is not set)",
            ),
        });
    };
    match source.get("source").and_then(Value::as_str) {
        Some("file") => {}
        _ => {
            return Err(invalid(
                "authentication.identity_token.source must be \"file\" (the only source the SDKs define)",
            ));
        }
    }
    match source.get("path") {
        Some(Value::String(file)) if !file.is_empty() => Ok(serde_json::json!({"file": file})),
        _ => Err(invalid(
            "authentication.identity_token.path must be a non-empty string",
        )),
    }
}

/// Unset as the SDKs see it: absent, null, or an empty (falsy) value.
fn is_unset(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => !b,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
    }
}
