//! A token cache on disk for processes that run once per request (credential
//! helpers such as `wif-host token`): a still-valid token is reused across
//! processes.
//!
//! A token is served only for what it was minted under: the config text,
//! the policy in effect, and the values of the variables the config reads
//! (its `Requirements.env`). The file name is the SHA-256 of the config and
//! the policy; the file holds the variables' names, a random salt and the
//! SHA-256 of all three with the variables' values (the values are hashed,
//! never stored), so a tightened policy or a changed `${VAR}` misses the
//! cache. Files live in a private folder (see [`crate::private_dir`]):
//! created 0600, written atomically, opened and checked on the open handle
//! (a symlink, another user's file or one open to others is refused). A
//! corrupt or truncated file counts as absent and is replaced; one whose
//! token is not an RFC 6750 `b64token` is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache_lock::{self, EntryLock};
use crate::policy::Policy;
use crate::private_dir::{self, PrivateDir, PrivateDirError, hex};
use crate::token::{AccessToken, AssertionFingerprint, Secret, is_b64token};

/// The largest token file read.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;
const KEY_TAG: &[u8] = b"anthropic-wif token cache v2\0";

/// Token files in one folder.
#[derive(Debug, Clone)]
pub struct TokenCache {
    dir: PathBuf,
}

/// The policy a token is minted under, as the cache key sees it: a
/// [`PolicyOrigin`] together with the policy itself when the user gave it.
/// Built where the policy is at hand (the provider, the CLI before it has
/// one); see [`PolicyOrigin::in_effect`].
#[derive(Debug, Clone, Copy)]
pub enum PolicyInEffect<'a> {
    /// The minimal policy this version of the host derives from the config:
    /// a function of the config and of the variables it reads, both in the
    /// key already.
    Derived,
    /// A policy the user gave; its every grant and limit is keyed.
    Given(&'a Policy),
}

impl PolicyInEffect<'_> {
    /// Where this policy came from, without the policy.
    pub fn origin(self) -> PolicyOrigin {
        match self {
            PolicyInEffect::Derived => PolicyOrigin::Derived,
            PolicyInEffect::Given(_) => PolicyOrigin::Given,
        }
    }
}

/// Where the policy of a provider that shares a token cache comes from,
/// said before the policy itself is known
/// ([`crate::ProviderBuilder::token_cache`]: the policy is set later, and
/// may be replaced). It holds no policy; [`PolicyOrigin::in_effect`] pairs
/// it with the provider's policy to key the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyOrigin {
    /// Derived from the config by this host: keyed as
    /// [`PolicyInEffect::Derived`].
    Derived,
    /// Given by the user: the provider's own policy is keyed.
    Given,
}

impl PolicyOrigin {
    /// The policy in effect when `policy` is the provider's policy: for
    /// [`PolicyOrigin::Given`] that policy, else the derived one.
    pub fn in_effect(self, policy: &Policy) -> PolicyInEffect<'_> {
        match self {
            PolicyOrigin::Derived => PolicyInEffect::Derived,
            PolicyOrigin::Given => PolicyInEffect::Given(policy),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// The variables the config reads (names only).
    variables: Vec<String>,
    /// A random salt for `binding`, hex.
    salt: String,
    /// SHA-256 of the key, the salt and the variables' values, hex.
    binding: String,
    access_token: String,
    expires_at: u64,
    refresh_after: u64,
    refresh_by: u64,
    issued_at: u64,
    /// The SHA-256 of the assertion behind the token (never the assertion).
    assertion_sha256: String,
}

/// Feeds `bytes` with its length first, so that no two sequences of fields
/// feed the same bytes.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_be_bytes());
    hash.update(bytes);
}

fn fields<'a>(hash: &mut Sha256, items: impl ExactSizeIterator<Item = &'a [u8]>) {
    hash.update((items.len() as u64).to_be_bytes());
    for item in items {
        field(hash, item);
    }
}

/// Feeds every grant and limit of `policy` (a new field of [`Policy`] fails
/// to compile here until it is keyed too).
fn feed_policy(hash: &mut Sha256, policy: PolicyInEffect) {
    let Policy {
        env,
        files,
        file_prefixes,
        max_file_bytes,
        origins,
        http_timeout,
        max_body_bytes,
        ca_files,
        proxy,
        commands,
        command_timeout,
        max_output_bytes,
    } = match policy {
        PolicyInEffect::Derived => {
            hash.update(b"derived");
            field(hash, env!("CARGO_PKG_VERSION").as_bytes());
            return;
        }
        PolicyInEffect::Given(policy) => policy,
    };
    hash.update(b"given");
    fields(hash, env.iter().map(|name| name.as_bytes()));
    for paths in [files, file_prefixes, ca_files] {
        fields(hash, paths.iter().map(|p| p.as_os_str().as_encoded_bytes()));
    }
    let origins: Vec<String> = origins.iter().map(ToString::to_string).collect();
    fields(hash, origins.iter().map(|o| o.as_bytes()));
    // The proxy's Debug form names it without its credentials.
    field(hash, format!("{proxy:?}").as_bytes());
    hash.update((commands.len() as u64).to_be_bytes());
    for argv in commands {
        fields(hash, argv.iter().map(|arg| arg.as_bytes()));
    }
    for limit in [
        *max_file_bytes,
        *max_body_bytes,
        *max_output_bytes,
        http_timeout.as_millis() as u64,
        command_timeout.as_millis() as u64,
    ] {
        hash.update(limit.to_be_bytes());
    }
}

/// The digest a token file is named after: the config and the policy.
fn entry_digest(config_json: &str, policy: PolicyInEffect) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(KEY_TAG);
    field(&mut hash, config_json.as_bytes());
    feed_policy(&mut hash, policy);
    hash.finalize().into()
}

/// What binds a stored token to the values of the variables it was minted
/// with.
fn binding(
    entry: &[u8; 32],
    salt: &str,
    variables: &[String],
    env: &impl Fn(&str) -> Option<String>,
) -> String {
    let mut hash = Sha256::new();
    hash.update(entry);
    field(&mut hash, salt.as_bytes());
    hash.update((variables.len() as u64).to_be_bytes());
    for name in variables {
        field(&mut hash, name.as_bytes());
        match env(name) {
            Some(value) => {
                hash.update([1]);
                field(&mut hash, value.as_bytes());
            }
            None => hash.update([0]),
        }
    }
    hex(&hash.finalize())
}

impl TokenCache {
    /// A cache in `dir`.
    pub fn new(dir: PathBuf) -> TokenCache {
        TokenCache { dir }
    }

    fn file_name(config_json: &str, policy: PolicyInEffect) -> String {
        entry_file_name(&entry_digest(config_json, policy))
    }

    /// The file that holds the token for `config_json` under `policy`.
    pub fn path_for(&self, config_json: &str, policy: PolicyInEffect) -> PathBuf {
        self.dir.join(Self::file_name(config_json, policy))
    }

    /// The entry for `config_json` under `policy`: its folder opened (and
    /// checked) once and its name computed once, for a lock, a read and a
    /// write in a row.
    pub fn entry(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
    ) -> Result<Entry, PrivateDirError> {
        let digest = entry_digest(config_json, policy);
        Ok(Entry {
            dir: PrivateDir::open(&self.dir)?,
            name: entry_file_name(&digest),
            digest,
        })
    }

    /// [`Entry::load`] of the entry for `config_json` under `policy`.
    pub fn load(
        &self,
        config_json: &str,
        policy: PolicyInEffect,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AccessToken>, PrivateDirError> {
        self.entry(config_json, policy)?.load(env)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The name of the file of the entry with `digest`.
fn entry_file_name(digest: &[u8; 32]) -> String {
    format!("{}.json", hex(digest))
}

/// One entry of a [`TokenCache`], in its opened folder.
#[derive(Debug)]
pub struct Entry {
    dir: PrivateDir,
    digest: [u8; 32],
    /// `<digest>.json`.
    name: String,
}

impl Entry {
    /// The cached token, when it was minted with the same values of the
    /// variables the config reads (`env` gives them now): `Ok(None)` when
    /// there is none, it was minted with other values, or the file is
    /// corrupt; an error when the file is unsafe, or the token is not a
    /// bearer token.
    pub fn load(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AccessToken>, PrivateDirError> {
        let Some(bytes) = self.dir.read(&self.name, MAX_ENTRY_BYTES)? else {
            return Ok(None);
        };
        let Ok(stored) = serde_json::from_slice::<Stored>(&bytes) else {
            return Ok(None);
        };
        if !is_b64token(&stored.access_token) {
            return Err(PrivateDirError::Unsafe {
                path: self.dir.path().join(&self.name),
                problem: "holds an access token that is not an RFC 6750 bearer token".into(),
            });
        }
        if binding(&self.digest, &stored.salt, &stored.variables, &env) != stored.binding {
            tracing::debug!(
                "the cached token was minted with other values of the config's variables"
            );
            return Ok(None);
        }
        let Some(assertion) = AssertionFingerprint::from_hex(&stored.assertion_sha256) else {
            return Ok(None);
        };
        // Times out of order are a corrupt entry, never served.
        if !(stored.refresh_after <= stored.refresh_by && stored.refresh_by <= stored.expires_at) {
            return Ok(None);
        }
        Ok(Some(AccessToken {
            token: Secret::new(&stored.access_token),
            token_type: "Bearer",
            expires_at: stored.expires_at,
            refresh_after: stored.refresh_after,
            refresh_by: stored.refresh_by,
            issued_at: stored.issued_at,
            assertion,
        }))
    }

    /// Saves `token`, bound to the values `env` gives the config's
    /// `variables`, replacing any earlier file.
    pub fn store(
        &self,
        variables: &[String],
        env: impl Fn(&str) -> Option<String>,
        token: &AccessToken,
    ) -> Result<(), PrivateDirError> {
        let io = |source| PrivateDirError::Io {
            path: self.dir.path().join(&self.name),
            source,
        };
        let salt = hex(&private_dir::random_bytes::<16>().map_err(io)?);
        let mut variables = variables.to_vec();
        variables.sort();
        variables.dedup();
        let stored = Stored {
            binding: binding(&self.digest, &salt, &variables, &env),
            variables,
            salt,
            access_token: token.token.expose().to_string(),
            expires_at: token.expires_at,
            refresh_after: token.refresh_after,
            refresh_by: token.refresh_by,
            issued_at: token.issued_at,
            assertion_sha256: token.assertion.to_string(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| io(e.into()))?;
        self.dir.write_atomically(&self.name, &bytes)
    }

    /// Removes the token, if there is one.
    pub fn remove(&self) -> Result<(), PrivateDirError> {
        self.dir.remove(&self.name)
    }

    /// Takes the entry's lock (see [`crate::cache_lock`]), waiting at most
    /// `wait` for another process to release it: `Ok(None)` when it did not
    /// in time.
    pub fn lock(&self, wait: std::time::Duration) -> Result<Option<EntryLock>, PrivateDirError> {
        cache_lock::acquire(&self.dir, &format!("{}.lock", hex(&self.digest)), wait)
    }
}

#[cfg(test)]
mod tests;
