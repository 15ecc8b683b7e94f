//! A `user_oauth` profile without `client_id` kept fresh for the SDKs: they
//! re-read `credentials/NAME.json` on each refresh and send its
//! `access_token` as a bearer token.
//!
//! The credentials file is replaced atomically (a temporary file in the same
//! folder, mode 0600, fsync, rename, fsync of the folder), so a reader sees
//! the old token or the new one, never half a file. Folders that are
//! symlinks, belong to someone else or are writable by others are refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Origin, ProfileError, config_path, credentials_path, validate_name};
use anthropic_wif_host::AccessToken;
use anthropic_wif_host::config_file::ConfigFileError;

/// The credentials file format version the SDKs read.
pub const CREDENTIALS_VERSION: &str = "1.0";
/// The config file format version the SDKs read.
pub const CONFIG_VERSION: &str = "1.0";

/// The API the SDKs call when a profile sets no `base_url`.
const SDK_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// Writes one profile of one config folder.
#[derive(Debug, Clone)]
pub struct ProfileWriter {
    dir: PathBuf,
    name: String,
}

/// The profile settings the SDKs read from `configs/NAME.json`, taken from
/// an `auth` block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProfileSettings {
    base_url: Option<String>,
    organization_id: Option<String>,
    workspace_id: Option<String>,
}

impl ProfileWriter {
    /// A writer for the profile `name` (validated as the SDKs validate it)
    /// of the folder `dir`.
    pub fn new(dir: PathBuf, name: &str) -> Result<ProfileWriter, ProfileError> {
        validate_name(name, "--profile")?;
        Ok(ProfileWriter {
            dir,
            name: name.to_string(),
        })
    }

    /// `DIR/configs/NAME.json`.
    pub fn config_path(&self) -> PathBuf {
        config_path(&self.dir, &self.name)
    }

    /// `DIR/credentials/NAME.json`.
    pub fn credentials_path(&self) -> PathBuf {
        credentials_path(&self.dir, &self.name)
    }

    /// Refuses to sync into the profile the configuration was read from.
    pub fn refuse_as_input(&self, origin: &Origin) -> Result<(), ProfileError> {
        let ours = self.config_path();
        if let Origin::Profile(input) = origin
            && (input == &ours || same_file(input, &ours))
        {
            return Err(ProfileError::invalid(
                &ours,
                "is the profile the config is read from; sync into another --profile",
            ));
        }
        Ok(())
    }

    /// Creates the folders and, when it is missing, `configs/NAME.json`
    /// for the `auth` block `auth_json`. An existing one is left alone
    /// unless it contradicts it (another type, a `client_id`, another
    /// credentials path, base URL, organization or workspace): that is an
    /// error.
    pub fn prepare(&self, auth_json: &str) -> Result<(), ProfileError> {
        let settings = settings(auth_json)?;
        ensure_dir(&self.dir, 0o755)?;
        ensure_dir(&self.dir.join("credentials"), 0o700)?;
        ensure_dir(&self.dir.join("configs"), 0o755)?;
        let path = self.config_path();
        match std::fs::symlink_metadata(&path) {
            Ok(_) => self.check_existing_config(&path, &settings),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let document = config_document(&settings);
                let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
                bytes.push(b'\n');
                write_atomically(&path, &bytes, 0o644)
            }
            Err(source) => Err(ProfileError::Io { path, source }),
        }
    }

    fn check_existing_config(
        &self,
        path: &Path,
        settings: &ProfileSettings,
    ) -> Result<(), ProfileError> {
        let contradiction = |what: String| {
            ProfileError::invalid(
                path,
                format!(
                    "exists and {what}; wif-host sync keeps a user_oauth profile without client_id: \
                     pick another --profile, or move this file away"
                ),
            )
        };
        let mut document = super::input::read_profile_document(path, &self.name)?;
        let auth = match document.remove("authentication") {
            Some(Value::Object(auth)) => auth,
            _ => return Err(contradiction("has no `authentication` object".into())),
        };
        match auth.get("type").and_then(Value::as_str) {
            Some("user_oauth") => {}
            other => {
                return Err(contradiction(format!(
                    "its authentication.type is {}, not \"user_oauth\"",
                    other.map_or("missing".into(), |t| format!("{t:?}"))
                )));
            }
        }
        if auth
            .get("client_id")
            .is_some_and(|v| v.as_str() != Some(""))
        {
            return Err(contradiction(
                "it has an authentication.client_id (the SDKs would run refresh grants instead of \
                 reading the synced token)"
                    .into(),
            ));
        }
        if let Some(Value::String(other)) = auth.get("credentials_path")
            && !other.is_empty()
            && Path::new(other) != self.credentials_path()
        {
            return Err(contradiction(format!(
                "its authentication.credentials_path is {other:?}, not {}",
                self.credentials_path().display()
            )));
        }
        let existing = |key: &str| match document.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.trim_end_matches('/').to_string()),
            _ => None,
        };
        let base_url = settings
            .base_url
            .clone()
            .unwrap_or_else(|| SDK_DEFAULT_BASE_URL.to_string());
        let pairs = [
            ("base_url", Some(base_url)),
            ("organization_id", settings.organization_id.clone()),
            ("workspace_id", settings.workspace_id.clone()),
        ];
        for (key, ours) in pairs {
            if let (Some(theirs), Some(ours)) = (existing(key), ours)
                && theirs != ours.trim_end_matches('/')
            {
                return Err(contradiction(format!(
                    "its {key} is {theirs:?}, but the config says {ours:?}"
                )));
            }
        }
        Ok(())
    }

    /// Replaces `credentials/NAME.json` with `token`, atomically.
    pub fn write_token(&self, token: &AccessToken) -> Result<(), ProfileError> {
        let document = serde_json::json!({
            "version": CREDENTIALS_VERSION,
            "type": "oauth_token",
            "access_token": token.token.expose(),
            "expires_at": token.expires_at,
        });
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        write_atomically(&self.credentials_path(), &bytes, 0o600)
    }
}

/// Whether two existing paths name the same file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The settings of an `auth` block that go into the profile.
fn settings(auth_json: &str) -> Result<ProfileSettings, ProfileError> {
    let auth: Value = serde_json::from_str(auth_json)
        .map_err(|e| ConfigFileError::Shape(format!("the auth block is not JSON: {e}")))?;
    let wif = auth.get("workload_identity_federation");
    let field = |key: &str| {
        wif.and_then(|w| w.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(ProfileSettings {
        base_url: field("base_url").map(|u| u.trim_end_matches('/').to_string()),
        organization_id: field("organization_id"),
        workspace_id: field("workspace_id"),
    })
}

/// `configs/NAME.json` for a sidecar-rotated profile.
fn config_document(settings: &ProfileSettings) -> Value {
    let mut document = Map::new();
    document.insert("version".into(), Value::String(CONFIG_VERSION.into()));
    document.insert(
        "authentication".into(),
        serde_json::json!({"type": "user_oauth"}),
    );
    for (key, value) in [
        ("base_url", &settings.base_url),
        ("organization_id", &settings.organization_id),
        ("workspace_id", &settings.workspace_id),
    ] {
        if let Some(value) = value {
            document.insert(key.into(), Value::String(value.clone()));
        }
    }
    Value::Object(document)
}

/// Creates `dir` with `mode` if it is missing, then checks that it is a
/// real folder (not a symlink) of the current user that others cannot
/// write to.
fn ensure_dir(dir: &Path, mode: u32) -> Result<(), ProfileError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => return Err(ProfileError::io(dir)(source)),
    }
    // Checked from `/` down, each folder on its handle (see `private_dir`).
    let absolute = std::path::absolute(dir).map_err(ProfileError::io(dir))?;
    anthropic_wif_host::private_dir::PrivateDir::open(&absolute)
        .map(drop)
        .map_err(|e| ProfileError::refused(e, "refusing to write there"))
}

/// Replaces `path` with `bytes` atomically: a temporary file of mode `mode`
/// in the same folder, fsync, rename over `path`, fsync of the folder.
/// `path` itself must not be a symlink or anything but a regular file.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ProfileError> {
    let dir = path
        .parent()
        .ok_or_else(|| ProfileError::invalid(path, "has no parent folder"))?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(ProfileError::invalid(
                path,
                "is a symlink; refusing to write through it",
            ));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(ProfileError::invalid(
                path,
                "exists and is not a regular file",
            ));
        }
        _ => {}
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(ProfileError::io(dir))?;
    use std::os::unix::fs::PermissionsExt;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(ProfileError::io(path))?;
    file.write_all(bytes).map_err(ProfileError::io(path))?;
    file.as_file().sync_all().map_err(ProfileError::io(path))?;
    file.persist(path)
        .map_err(|e| ProfileError::io(path)(e.error))?;
    sync_dir(dir)
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), ProfileError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ProfileError::io(dir))?;
    Ok(())
}
