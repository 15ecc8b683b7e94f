//! The host's deny-by-default policy: what the component may read, fetch and
//! run.
//!
//! A policy is a TOML file. Everything it does not grant is denied:
//!
//! ```toml
//! [env]
//! allow = ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
//!
//! [files]
//! allow = ["/var/run/secrets/anthropic.com/token"]   # exact files
//! allow_prefixes = ["/var/run/secrets/"]              # whole folders
//! max_bytes = 65536
//!
//! [http]
//! allow_origins = ["https://api.anthropic.com"]       # scheme://host[:port]
//! timeout_secs = 30
//! max_body_bytes = 1048576
//! ca_files = ["/etc/pki/corp-proxy-ca.pem"]           # added to the system roots
//! proxy = "env"                     # or "none", or "http://proxy.corp:3128"
//!
//! [commands]
//! allow = [["gcloud", "auth", "print-identity-token"]]   # argv prefixes
//! timeout_secs = 30
//! max_output_bytes = 1048576
//! ```
//!
//! Parsing is strict: unknown keys, relative paths, origins with a path and
//! plain-http origins off loopback are errors that say what to write.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::net::proxy::{ProxySetting, ProxyUrl};
use crate::net::tls;
pub use crate::origin::Origin;
use crate::requirements::Requirements;

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key.
    #[error("policy: {0}")]
    Syntax(String),
    /// A value is invalid; `key` is its place in the file.
    #[error("policy: {key}: {message}")]
    Invalid {
        /// The key, e.g. `http.allow_origins[0]`.
        key: String,
        /// What is wrong and what to write.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    env: RawEnv,
    #[serde(default)]
    files: RawFiles,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    commands: RawCommands,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEnv {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    allow_prefixes: Vec<String>,
    max_bytes: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    allow_origins: Vec<String>,
    timeout_secs: Option<f64>,
    max_body_bytes: Option<u64>,
    #[serde(default)]
    ca_files: Vec<String>,
    proxy: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    #[serde(default)]
    allow: Vec<Vec<String>>,
    timeout_secs: Option<f64>,
    max_output_bytes: Option<u64>,
}

/// A validated policy. [`Policy::default`] grants nothing.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Environment variable names the component may read.
    pub env: Vec<String>,
    /// Files the component may read, exactly.
    pub files: Vec<PathBuf>,
    /// Folders under which the component may read any file.
    pub file_prefixes: Vec<PathBuf>,
    /// The largest file read, in bytes.
    pub max_file_bytes: u64,
    /// Origins the component may fetch.
    pub origins: Vec<Origin>,
    /// Time limit of one HTTP request.
    pub http_timeout: Duration,
    /// The largest response body, in bytes; more is an error.
    pub max_body_bytes: u64,
    /// PEM files of CA certificates trusted in addition to the platform's
    /// roots.
    pub ca_files: Vec<PathBuf>,
    /// Which proxy requests take.
    pub proxy: ProxySetting,
    /// Argv prefixes the component may run.
    pub commands: Vec<Vec<String>>,
    /// Time limit of one command; the component may ask for less.
    pub command_timeout: Duration,
    /// The largest stdout or stderr of a command, in bytes; more is an
    /// error.
    pub max_output_bytes: u64,
}

/// Default time limit of an HTTP request.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of a response body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
/// Default time limit of a command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of a command's stdout and of its stderr: 1 MiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 1024 * 1024;
/// Default cap of a file read: 1 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            env: Vec::new(),
            files: Vec::new(),
            file_prefixes: Vec::new(),
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            origins: Vec::new(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            ca_files: Vec::new(),
            proxy: ProxySetting::Env,
            commands: Vec::new(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl Policy {
    /// Reads and validates a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = crate::local_file::read_text(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::from_toml(&text)
    }

    /// Parses and validates the TOML text of a policy.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy =
            toml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        let defaults = Policy::default();
        Ok(Policy {
            env: raw
                .env
                .allow
                .into_iter()
                .enumerate()
                .map(|(i, name)| env_name(name, &format!("env.allow[{i}]")))
                .collect::<Result<_, _>>()?,
            files: paths(raw.files.allow, "files.allow")?,
            file_prefixes: paths(raw.files.allow_prefixes, "files.allow_prefixes")?,
            max_file_bytes: positive(
                raw.files.max_bytes,
                defaults.max_file_bytes,
                "files.max_bytes",
            )?,
            origins: raw
                .http
                .allow_origins
                .iter()
                .enumerate()
                .map(|(i, origin)| parse_origin(origin, &format!("http.allow_origins[{i}]")))
                .collect::<Result<_, _>>()?,
            http_timeout: seconds(
                raw.http.timeout_secs,
                defaults.http_timeout,
                "http.timeout_secs",
            )?,
            max_body_bytes: positive(
                raw.http.max_body_bytes,
                defaults.max_body_bytes,
                "http.max_body_bytes",
            )?,
            ca_files: ca_files(raw.http.ca_files)?,
            proxy: proxy_setting(raw.http.proxy.as_deref())?,
            commands: raw
                .commands
                .allow
                .into_iter()
                .enumerate()
                .map(|(i, argv)| argv_prefix(argv, &format!("commands.allow[{i}]")))
                .collect::<Result<_, _>>()?,
            command_timeout: seconds(
                raw.commands.timeout_secs,
                defaults.command_timeout,
                "commands.timeout_secs",
            )?,
            max_output_bytes: positive(
                raw.commands.max_output_bytes,
                defaults.max_output_bytes,
                "commands.max_output_bytes",
            )?,
        })
    }

    /// Whether `name` may be read.
    pub fn allows_env(&self, name: &str) -> bool {
        self.env.iter().any(|granted| granted == name)
    }

    /// Whether the canonical path `real` may be read.
    pub fn allows_file(&self, real: &Path) -> bool {
        self.files
            .iter()
            .any(|granted| canonical_or_self(granted) == real)
            || self
                .file_prefixes
                .iter()
                .any(|prefix| real.starts_with(canonical_or_self(prefix)))
    }

    /// Whether the path is granted as written, before symlinks are resolved.
    /// Used only to tell "not found" from "denied" for paths that do not
    /// exist; a path with `..` is never granted this way.
    pub fn allows_file_lexically(&self, path: &Path) -> bool {
        !path.components().any(|c| matches!(c, Component::ParentDir))
            && (self.files.iter().any(|granted| granted == path)
                || self
                    .file_prefixes
                    .iter()
                    .any(|prefix| path.starts_with(prefix)))
    }

    /// Whether `origin` may be fetched.
    pub fn allows_origin(&self, origin: &Origin) -> bool {
        self.origins.iter().any(|granted| granted == origin)
    }

    /// Whether `argv` starts with a granted prefix.
    pub fn allows_command(&self, argv: &[String]) -> bool {
        self.commands.iter().any(|prefix| argv.starts_with(prefix))
    }
}

/// The least a config needs, derived from its requirements, as a policy and
/// as the TOML text of that policy.
#[derive(Debug, Clone)]
pub struct MinimalPolicy {
    /// The policy.
    pub policy: Policy,
    /// The policy as TOML, ready to save and review.
    pub toml: String,
    /// What could not be derived (an origin decided by an unset variable),
    /// for the user to add by hand.
    pub notes: Vec<String>,
}

impl Policy {
    /// The minimal policy for `needs`. Identity URLs whose origin a
    /// `${NAME}` or `${env.NAME}` reference decides are resolved with `env`;
    /// when that fails a note says what to add. URLs and files used only
    /// when their variables are set are granted when `env` sets them, and
    /// skipped without a note otherwise.
    pub fn minimal(needs: &Requirements, env: impl Fn(&str) -> Option<String>) -> MinimalPolicy {
        let mut notes = Vec::new();
        let mut origins: Vec<String> = Vec::new();
        let mut add_origin =
            |origin: String, notes: &mut Vec<String>| match parse_origin(&origin, "origin") {
                Ok(parsed) if !origins.contains(&parsed.to_string()) => {
                    origins.push(parsed.to_string())
                }
                Ok(_) => {}
                Err(e) => notes.push(format!("origin {origin} cannot be granted: {e}")),
            };
        for origin in &needs.origins {
            add_origin(origin.clone(), &mut notes);
        }
        // An empty variable counts as unset, as the AWS SDKs read them.
        let set = |name: &str| env(name).filter(|value| !value.is_empty());
        for (template, origin) in &needs.when_set_urls {
            let Some(url) = expand_with(template, &set) else {
                continue;
            };
            match origin {
                Some(origin) => add_origin(origin.clone(), &mut notes),
                None => match url::Url::parse(&url).ok().as_ref().and_then(Origin::of) {
                    Some(origin) => add_origin(origin.to_string(), &mut notes),
                    None => notes.push(format!(
                        "{template} does not expand to an http or https URL here; fix the variable or add the origin to http.allow_origins"
                    )),
                },
            }
        }
        for (template, origin) in &needs.urls {
            if origin.is_some() {
                continue;
            }
            match expand_with(template, &env).and_then(|url| url::Url::parse(&url).ok()).as_ref().and_then(Origin::of) {
                Some(origin) => add_origin(origin.to_string(), &mut notes),
                None => notes.push(format!(
                    "the origin of {template} depends on variables that are not set here; add it to http.allow_origins"
                )),
            }
        }
        let mut env_names = needs.env.clone();
        env_names.extend(
            needs
                .optional_env
                .iter()
                .filter(|name| !needs.env.contains(name))
                .cloned(),
        );
        let policy = Policy {
            env: env_names,
            files: needs
                .files
                .iter()
                .filter_map(|file| Requirements::file_path(file, &env))
                .map(PathBuf::from)
                .collect(),
            origins: origins
                .iter()
                .filter_map(|o| parse_origin(o, "origin").ok())
                .collect(),
            commands: needs.commands.clone(),
            ..Policy::default()
        };
        let toml = policy_toml(&policy);
        MinimalPolicy {
            policy,
            toml,
            notes,
        }
    }
}

/// Expands `${NAME}` and `${env.NAME}` references with `env`; `None` when
/// one is unset. (The component has already refused any other form.)
fn expand_with(template: &str, env: &impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let reference = &rest[start + 2..end];
        out.push_str(&env(reference.strip_prefix("env.").unwrap_or(reference))?);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn policy_toml(policy: &Policy) -> String {
    let quoted = |items: &mut dyn Iterator<Item = String>| {
        items
            .map(|s| toml::Value::String(s).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::new();
    out.push_str(&format!(
        "[env]\nallow = [{}]\n\n",
        quoted(&mut policy.env.iter().cloned())
    ));
    out.push_str(&format!(
        "[files]\nallow = [{}]\n\n",
        quoted(
            &mut policy
                .files
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
        )
    ));
    out.push_str(&format!(
        "[http]\nallow_origins = [{}]\n\n",
        quoted(&mut policy.origins.iter().map(Origin::to_string))
    ));
    let commands: Vec<String> = policy
        .commands
        .iter()
        .map(|argv| format!("[{}]", quoted(&mut argv.iter().cloned())))
        .collect();
    out.push_str(&format!("[commands]\nallow = [{}]\n", commands.join(", ")));
    out
}

/// The canonical form of a granted path, or the path itself while it does
/// not exist.
fn canonical_or_self(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn env_name(name: String, key: &str) -> Result<String, PolicyError> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return Err(invalid(
            key,
            "must be a variable name, without `=` or NUL; write e.g. `\"MY_TOKEN\"`",
        ));
    }
    Ok(name)
}

fn paths(entries: Vec<String>, key: &str) -> Result<Vec<PathBuf>, PolicyError> {
    entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let path = PathBuf::from(&entry);
            let key = format!("{key}[{i}]");
            if !path.is_absolute() {
                return Err(invalid(
                    key,
                    format!("`{entry}` is relative; write an absolute path like `/{entry}`"),
                ));
            }
            if path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(invalid(
                    key,
                    format!("`{entry}` contains `..`; write the path without it"),
                ));
            }
            Ok(path)
        })
        .collect()
}

/// Parses a granted origin, with an error that says what to write.
pub fn parse_origin(text: &str, key: &str) -> Result<Origin, PolicyError> {
    if !text.contains("://") {
        return Err(invalid(
            key,
            format!("`{text}` has no scheme; write `https://{text}`"),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|e| invalid(key, format!("`{text}` is not a valid origin ({e})")))?;
    let origin = Origin::of(&url).ok_or_else(|| {
        invalid(
            key,
            format!("`{text}` must be an http or https origin, e.g. `https://api.anthropic.com`"),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            key,
            format!("`{text}` contains user information; write `{origin}`"),
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            key,
            format!("`{text}` has a path, query or fragment; an origin is `{origin}`"),
        ));
    }
    if origin.scheme == "http" && !origin.allows_plain_http() {
        return Err(invalid(
            key,
            format!(
                "`{text}` uses plain http; write `https://{}` (http is only granted for loopback and link-local addresses)",
                origin.host
            ),
        ));
    }
    Ok(origin)
}

fn ca_files(entries: Vec<String>) -> Result<Vec<PathBuf>, PolicyError> {
    let files = paths(entries, "http.ca_files")?;
    for (i, file) in files.iter().enumerate() {
        tls::load_ca_file(file).map_err(|problem| {
            invalid(
                format!("http.ca_files[{i}]"),
                format!("{problem}; list PEM files of CA certificates"),
            )
        })?;
    }
    Ok(files)
}

fn proxy_setting(value: Option<&str>) -> Result<ProxySetting, PolicyError> {
    const WHAT: &str = "write `\"env\"` (the proxy variables decide), `\"none\"` or a proxy URL such as `\"http://proxy.example.com:3128\"`";
    match value {
        None | Some("env") => Ok(ProxySetting::Env),
        Some("none") => Ok(ProxySetting::None),
        Some(url) if url.contains("://") => ProxyUrl::parse(url)
            .map(ProxySetting::Pinned)
            .map_err(|problem| invalid("http.proxy", format!("the value {problem}; {WHAT}"))),
        Some(_) => Err(invalid("http.proxy", format!("unknown value; {WHAT}"))),
    }
}

fn argv_prefix(argv: Vec<String>, key: &str) -> Result<Vec<String>, PolicyError> {
    if argv.is_empty() {
        return Err(invalid(
            key,
            "must name at least the program, e.g. `[\"gcloud\", \"auth\", \"print-identity-token\"]`",
        ));
    }
    if let Some(i) = argv.iter().position(|a| a.is_empty() || a.contains('\0')) {
        return Err(invalid(
            format!("{key}[{i}]"),
            "must be a non-empty argument without NUL",
        ));
    }
    Ok(argv)
}

fn seconds(value: Option<f64>, default: Duration, key: &str) -> Result<Duration, PolicyError> {
    match value {
        None => Ok(default),
        Some(secs) if secs.is_finite() && (0.001..=3600.0).contains(&secs) => {
            Ok(Duration::from_secs_f64(secs))
        }
        Some(_) => Err(invalid(
            key,
            "must be a number of seconds from 0.001 to 3600, e.g. `30`",
        )),
    }
}

fn positive(value: Option<u64>, default: u64, key: &str) -> Result<u64, PolicyError> {
    match value {
        None => Ok(default),
        Some(0) => Err(invalid(key, "must be above 0")),
        Some(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests;
