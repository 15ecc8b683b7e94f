//! The precompiled component, kept on disk so that a process does not
//! compile it again on every start.
//!
//! Loading an artifact runs its machine code, so an artifact is loaded only
//! when this user's key authenticates it. The folder is opened through safe
//! folders only (see [`crate::private_dir`]); in it, `artifact-key` holds 32
//! random bytes (0600, created once with `O_EXCL`), and each artifact file
//! starts with an HMAC-SHA256, under that key, of a header (the component's
//! SHA-256 and the engine's compatibility hash: wasmtime version and
//! configuration) and the artifact. The MAC is checked in constant time on
//! the bytes read from the checked file handle, before
//! `Component::deserialize` sees them. An artifact that fails the check
//! (corrupt, truncated, for another component or engine, or written by
//! anyone without the key) is compiled anew and replaced, with a warning.

use std::hash::{Hash, Hasher};
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::private_dir::{self, PrivateDir, PrivateDirError, hex};

type HmacSha256 = Hmac<Sha256>;

const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;
const KEY_FILE: &str = "artifact-key";
/// The largest key file read (a malformed one is replaced).
const MAX_KEY_FILE_BYTES: u64 = 1024;
/// The largest artifact file read back; a compiled component is a few MiB.
const MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;
const HEADER_TAG: &[u8] = b"anthropic-wif compiled component v2\0";

/// The component, from `dir` when an authentic artifact is there, else
/// compiled (and the artifact written for next time). An unsafe folder is
/// not used, with a warning.
pub(crate) fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    dir: &Path,
) -> wasmtime::Result<Component> {
    let cache = match CompileCache::open(dir) {
        Ok(cache) => cache,
        Err(problem) => {
            tracing::warn!(%problem, "compile cache not used");
            return Component::new(engine, bytes);
        }
    };
    let id = ArtifactId::of(engine, bytes);
    match cache.load(engine, &id) {
        Ok(Some(component)) => return Ok(component),
        Ok(None) => {}
        Err(reason) => {
            tracing::warn!(%reason, "ignoring the cached compiled component; compiling anew");
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(problem) = cache.store(&id, &component.serialize()?) {
        tracing::warn!(%problem, "cannot save the compiled component");
    }
    Ok(component)
}

/// The artifact file of one component for one engine.
struct ArtifactId {
    /// The file name.
    name: String,
    /// What the MAC binds the artifact to.
    header: Vec<u8>,
}

/// Feeds what `Hash` writes into a SHA-256, for a digest that stays the
/// same across Rust versions (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

impl ArtifactId {
    fn of(engine: &Engine, bytes: &[u8]) -> ArtifactId {
        let mut engine_hash = Sha256Hasher(Sha256::new());
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let engine_digest = engine_hash.0.finalize();
        let component_digest = Sha256::digest(bytes);
        let name = format!(
            "component-v2-{}-{}.cwasm",
            hex(&component_digest[..16]),
            hex(&engine_digest[..8])
        );
        let mut header = HEADER_TAG.to_vec();
        header.extend_from_slice(&component_digest);
        header.extend_from_slice(&engine_digest);
        ArtifactId { name, header }
    }
}

/// An opened compile-cache folder and its key.
struct CompileCache {
    dir: PrivateDir,
    key: [u8; KEY_LEN],
}

impl CompileCache {
    fn open(dir: &Path) -> Result<CompileCache, PrivateDirError> {
        let dir = PrivateDir::open(dir)?;
        let key = artifact_key(&dir)?;
        Ok(CompileCache { dir, key })
    }

    /// HMAC-SHA256 (RFC 2104) of the header and the artifact under the key.
    fn mac(&self, id: &ArtifactId, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(&id.header);
        mac.update(artifact);
        mac
    }

    /// The component from its artifact: `Ok(None)` when there is none, an
    /// error when the file is unsafe or not authentic.
    fn load(&self, engine: &Engine, id: &ArtifactId) -> Result<Option<Component>, String> {
        let Some(file) = self
            .dir
            .read(&id.name, MAX_ARTIFACT_BYTES)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let place = self.dir.path().join(&id.name);
        let (tag, artifact) = file
            .split_at_checked(MAC_LEN)
            .ok_or_else(|| format!("{}: the file is truncated", place.display()))?;
        // `verify_slice` compares in constant time.
        if self.mac(id, artifact).verify_slice(tag).is_err() {
            return Err(format!(
                "{}: not authenticated by this user's key (corrupt, or written by someone else)",
                place.display()
            ));
        }
        // SAFETY: the bytes were read from a file of this user's, open to
        // nobody else, in a folder reached through safe folders only, and
        // they carry a valid MAC under a key only this user can read, over
        // the artifact and a header naming this component and this engine's
        // compatibility hash: they are what `Component::serialize` produced
        // for this engine.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, artifact) };
        component
            .map(Some)
            .map_err(|e| format!("{}: {e:#}", place.display()))
    }

    fn store(&self, id: &ArtifactId, artifact: &[u8]) -> Result<(), PrivateDirError> {
        let mut file = self.mac(id, artifact).finalize().into_bytes().to_vec();
        file.extend_from_slice(artifact);
        self.dir.write_atomically(&id.name, &file)
    }
}

/// The key in `dir`, made of random bytes on first use; a key file of the
/// wrong length is replaced (the artifacts it authenticated then fail their
/// check and are compiled anew).
fn artifact_key(dir: &PrivateDir) -> Result<[u8; KEY_LEN], PrivateDirError> {
    let fresh = || {
        private_dir::random_bytes::<KEY_LEN>().map_err(|source| PrivateDirError::Io {
            path: dir.path().join(KEY_FILE),
            source,
        })
    };
    let existing = match dir.read(KEY_FILE, MAX_KEY_FILE_BYTES)? {
        Some(bytes) => bytes,
        None => {
            let key = fresh()?;
            if dir.create_new(KEY_FILE, &key)? {
                return Ok(key);
            }
            // Another process made it first: use theirs.
            dir.read(KEY_FILE, MAX_KEY_FILE_BYTES)?.unwrap_or_default()
        }
    };
    if let Ok(key) = <[u8; KEY_LEN]>::try_from(existing.as_slice()) {
        return Ok(key);
    }
    tracing::warn!(file = %dir.path().join(KEY_FILE).display(), "replacing a malformed compile-cache key");
    let key = fresh()?;
    dir.write_atomically(KEY_FILE, &key)?;
    Ok(key)
}

#[cfg(test)]
mod tests;
