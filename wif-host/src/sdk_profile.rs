//! The official SDKs' profile folder: where it is, which profile is active,
//! reading an `oidc_federation` profile as input ([`input`]) and keeping a
//! `user_oauth` profile fresh for them ([`output`]).
//!
//! The folder is `ANTHROPIC_CONFIG_DIR`, else `%APPDATA%\Anthropic` on
//! Windows and `~/.config/anthropic` elsewhere. A profile `NAME` is the pair
//! `configs/NAME.json` (settings, not secret) and `credentials/NAME.json`
//! (the token, mode 0600). The rules are those of the official Python SDK
//! (`anthropic` 2.10.0, `lib/credentials/_constants.py`).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anthropic_wif_host::private_dir::{PrivateDirError, TrustedDir};

pub mod input;
pub mod output;

pub use input::{Origin, resolve_input};
pub use output::ProfileWriter;

/// Selects the config folder instead of the platform default.
pub const ENV_CONFIG_DIR: &str = "ANTHROPIC_CONFIG_DIR";
/// Names the profile to use.
pub const ENV_PROFILE: &str = "ANTHROPIC_PROFILE";
/// The profile used when neither `ANTHROPIC_PROFILE` nor the
/// `active_config` file names one.
pub const DEFAULT_PROFILE: &str = "default";
/// The file in the config folder that names the active profile.
pub const ACTIVE_CONFIG_FILE: &str = "active_config";

/// Why a profile cannot be used, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A profile name the SDKs would refuse.
    #[error("{origin} {name:?} is not a valid profile name: it {problem}")]
    BadName {
        /// Where the name came from (`--profile`, `ANTHROPIC_PROFILE`, …).
        origin: String,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Neither `ANTHROPIC_CONFIG_DIR` nor a home folder is known.
    #[error(
        "cannot locate the SDKs' config folder: set ANTHROPIC_CONFIG_DIR (or HOME{windows})",
        windows = if cfg!(windows) { ", APPDATA" } else { "" }
    )]
    NoConfigDir,
    /// A profile file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A profile file or folder fails a check (its shape, its permissions,
    /// a contradiction).
    #[error("{path}: {problem}")]
    Invalid {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The config file or SDK variables could not be read.
    #[error(transparent)]
    Config(#[from] anthropic_wif_host::config_file::ConfigFileError),
}

impl ProfileError {
    fn invalid(path: &Path, problem: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// A private or trusted folder's refusal, saying what follows from it
    /// (`consequence`: "refusing to read it", …).
    fn refused(error: PrivateDirError, consequence: &str) -> ProfileError {
        match error {
            PrivateDirError::Io { path, source } => ProfileError::Io { path, source },
            PrivateDirError::Unsafe { path, problem } => {
                ProfileError::invalid(&path, format!("{problem}; {consequence}"))
            }
            other => ProfileError::Invalid {
                path: PathBuf::new(),
                problem: format!("{other}; {consequence}"),
            },
        }
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProfileError + '_ {
        move |source| ProfileError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The SDKs' config folder, as they compute it from `env`.
pub fn config_dir(env: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, ProfileError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(dir) = var(ENV_CONFIG_DIR) {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(windows) {
        let base = match var("APPDATA") {
            Some(appdata) => PathBuf::from(appdata),
            None => home(&var)?.join("AppData").join("Roaming"),
        };
        return Ok(base.join("Anthropic"));
    }
    Ok(home(&var)?.join(".config").join("anthropic"))
}

fn home(var: &impl Fn(&str) -> Option<String>) -> Result<PathBuf, ProfileError> {
    let name = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
    var(name)
        .map(PathBuf::from)
        .ok_or(ProfileError::NoConfigDir)
}

/// Refuses the names the SDKs refuse: empty, with leading or trailing
/// whitespace, starting with `.`, holding `/`, `\` or NUL. `origin` says
/// where the name came from, for the message.
pub fn validate_name(name: &str, origin: &str) -> Result<(), ProfileError> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name.trim() != name {
        Some("has leading or trailing whitespace")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if name.contains(['/', '\\']) {
        Some("holds a path separator (profiles are file names in the config folder)")
    } else if name.contains('\0') {
        Some("holds a NUL byte")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ProfileError::BadName {
            origin: origin.to_string(),
            name: name.to_string(),
            problem,
        }),
        None => Ok(()),
    }
}

/// `DIR/configs/NAME.json`.
pub fn config_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("configs").join(format!("{name}.json"))
}

/// `DIR/credentials/NAME.json`.
pub fn credentials_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("credentials").join(format!("{name}.json"))
}

/// The profile named by `DIR/active_config` (trimmed), if that file exists
/// and is not empty. The file and its folders are trusted only when nobody
/// but the user (or root) can change them ([`read_trusted`]).
pub fn active_config(dir: &Path) -> Result<Option<String>, ProfileError> {
    let path = dir.join(ACTIVE_CONFIG_FILE);
    let Some(text) = read_trusted(dir, ACTIVE_CONFIG_FILE, 4096)? else {
        return Ok(None);
    };
    let name = text.trim();
    if name.is_empty() {
        return Ok(None);
    }
    validate_name(name, &format!("the active_config file {}", path.display()))?;
    Ok(Some(name.to_string()))
}

/// The text of the file `name` in `folder`, read only when another user
/// could not have written it or what leads to it: the folder and each one
/// above it owned by the user or root and writable by nobody else, the
/// file a regular file of the user's or root's, writable by nobody else,
/// none of them a symlink (see [`TrustedDir`]), at most `max_bytes`.
/// `Ok(None)` when the folder or the file does not exist.
pub fn read_trusted(
    folder: &Path,
    name: &str,
    max_bytes: u64,
) -> Result<Option<String>, ProfileError> {
    let absolute = std::path::absolute(folder).map_err(ProfileError::io(folder))?;
    let dir = match TrustedDir::open(&absolute) {
        Ok(dir) => dir,
        Err(PrivateDirError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(ProfileError::refused(e, "refusing to read it")),
    };
    let Some(bytes) = dir
        .read(name, max_bytes)
        .map_err(|e| ProfileError::refused(e, "refusing to read it"))?
    else {
        return Ok(None);
    };
    let path = dir.path().join(name);
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| ProfileError::invalid(&path, "is not UTF-8 text"))
}

#[cfg(test)]
mod tests;
