//! A token cache on disk for processes that run once per request (credential
//! helpers such as `wif-host token`): a still-valid token is reused across
//! processes.
//!
//! One file per config fingerprint (SHA-256 of the config text), in a private
//! folder (see [`crate::private_dir`]): created 0600, written atomically,
//! refused when it is a symlink, belongs to someone else or is open to other
//! users. A corrupt or truncated file counts as absent and is replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::private_dir::{self, PrivateDirError};
use crate::token::{AccessToken, AssertionFingerprint, Secret};

/// Token files in one folder.
#[derive(Debug, Clone)]
pub struct TokenCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    access_token: String,
    expires_at: u64,
    refresh_after: u64,
    refresh_by: u64,
    issued_at: u64,
    /// The SHA-256 of the assertion behind the token (never the assertion).
    assertion_sha256: String,
}

impl TokenCache {
    /// A cache in `dir`.
    pub fn new(dir: PathBuf) -> TokenCache {
        TokenCache { dir }
    }

    /// The user's token cache: `tokens/` in [`private_dir::user_cache_dir`].
    pub fn user() -> Option<TokenCache> {
        private_dir::user_cache_dir().map(|dir| TokenCache::new(dir.join("tokens")))
    }

    /// The file that holds the token for `config_json`.
    pub fn path_for(&self, config_json: &str) -> PathBuf {
        let fingerprint: String = Sha256::digest(config_json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.join(format!("{fingerprint}.json"))
    }

    /// The cached token for `config_json`: `Ok(None)` when there is none or
    /// the file is corrupt, an error when the file or folder is unsafe.
    pub fn load(&self, config_json: &str) -> Result<Option<AccessToken>, PrivateDirError> {
        let path = self.path_for(config_json);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        private_dir::check(&self.dir, true)?;
        let bytes = private_dir::read(&path)?;
        Ok(serde_json::from_slice::<Stored>(&bytes)
            .ok()
            .and_then(|stored| {
                Some(AccessToken {
                    token: Secret::new(&stored.access_token),
                    token_type: "Bearer",
                    expires_at: stored.expires_at,
                    refresh_after: stored.refresh_after,
                    refresh_by: stored.refresh_by,
                    issued_at: stored.issued_at,
                    assertion: AssertionFingerprint::from_hex(&stored.assertion_sha256)?,
                })
            }))
    }

    /// Saves `token` for `config_json`, replacing any earlier file.
    pub fn store(&self, config_json: &str, token: &AccessToken) -> Result<(), PrivateDirError> {
        let stored = Stored {
            access_token: token.token.expose().to_string(),
            expires_at: token.expires_at,
            refresh_after: token.refresh_after,
            refresh_by: token.refresh_by,
            issued_at: token.issued_at,
            assertion_sha256: token.assertion.to_string(),
        };
        let bytes = serde_json::to_vec(&stored).unwrap_or_default();
        private_dir::write_atomically(&self.path_for(config_json), &bytes)
    }

    /// Removes the file for `config_json`, if there is one.
    pub fn remove(&self, config_json: &str) -> Result<(), PrivateDirError> {
        let path = self.path_for(config_json);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(PrivateDirError::Io { path, source: e })
            }
            _ => Ok(()),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(secret: &str) -> AccessToken {
        AccessToken {
            token: Secret::new(secret),
            token_type: "Bearer",
            expires_at: 2_000,
            refresh_after: 1_880,
            refresh_by: 1_970,
            issued_at: 1_000,
            assertion: AssertionFingerprint::from_hex(&"0f".repeat(32)).unwrap(),
        }
    }

    #[test]
    fn a_token_round_trips_per_config() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path().join("tokens"));
        assert_eq!(cache.load("{\"a\":1}").unwrap(), None);
        cache
            .store("{\"a\":1}", &token("sk-ant-oat01-one"))
            .unwrap();
        cache
            .store("{\"a\":2}", &token("sk-ant-oat01-two"))
            .unwrap();
        assert_eq!(
            cache.load("{\"a\":1}").unwrap(),
            Some(token("sk-ant-oat01-one"))
        );
        assert_eq!(
            cache.load("{\"a\":2}").unwrap(),
            Some(token("sk-ant-oat01-two"))
        );
    }

    #[test]
    fn a_corrupt_file_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache::new(dir.path().join("tokens"));
        cache.store("c", &token("sk-ant-oat01-x")).unwrap();
        let path = cache.path_for("c");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(cache.load("c").unwrap(), None);
        cache.store("c", &token("sk-ant-oat01-y")).unwrap();
        assert_eq!(cache.load("c").unwrap(), Some(token("sk-ant-oat01-y")));
    }
}
