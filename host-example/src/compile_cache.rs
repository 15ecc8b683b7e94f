//! The precompiled component, kept on disk so that a process does not
//! compile it again on every start.
//!
//! The artifact file is named after the component's SHA-256 and the engine's
//! compatibility hash (wasmtime version and configuration), so a new
//! component or a new wasmtime never loads a stale artifact. It lives in a
//! private folder (see [`crate::private_dir`]) and starts with the SHA-256 of
//! the artifact, checked before loading: a corrupt or truncated file is
//! compiled anew and replaced, never loaded.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::private_dir;

const DIGEST_LEN: usize = 32;

/// The component, from `dir` when a valid artifact is there, else compiled
/// (and the artifact written for next time).
pub(crate) fn load_or_compile(
    engine: &Engine,
    bytes: &[u8],
    dir: &Path,
) -> wasmtime::Result<Component> {
    let path = artifact_path(engine, bytes, dir);
    match load(engine, &path) {
        Ok(component) => return Ok(component),
        Err(reason) if path.exists() => {
            tracing::warn!(path = %path.display(), %reason, "ignoring the cached compiled component");
        }
        Err(_) => {}
    }
    let component = Component::new(engine, bytes)?;
    let artifact = component.serialize()?;
    let mut file = Sha256::digest(&artifact).to_vec();
    file.extend_from_slice(&artifact);
    if let Err(reason) = private_dir::write_atomically(&path, &file) {
        tracing::warn!(%reason, "cannot save the compiled component");
    }
    Ok(component)
}

fn artifact_path(engine: &Engine, bytes: &[u8], dir: &Path) -> PathBuf {
    let mut engine_hash = std::hash::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let component: String = Sha256::digest(bytes)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    dir.join(format!(
        "component-{component}-{:016x}.cwasm",
        engine_hash.finish()
    ))
}

fn load(engine: &Engine, path: &Path) -> Result<Component, String> {
    let file = private_dir::read(path).map_err(|e| e.to_string())?;
    let (digest, artifact) = file
        .split_at_checked(DIGEST_LEN)
        .ok_or("the file is truncated")?;
    if Sha256::digest(artifact).as_slice() != digest {
        return Err("the file is corrupt (checksum mismatch)".into());
    }
    // SAFETY: the artifact was produced by `Component::serialize` for an
    // engine with this compatibility hash (the file name says so), its
    // checksum matches, and it sits in a folder only this user can write.
    unsafe { Component::deserialize(engine, artifact) }.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::EMBEDDED_COMPONENT;

    #[test]
    fn an_artifact_is_written_reused_and_replaced_when_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("compiled");
        let engine = Engine::default();
        load_or_compile(&engine, EMBEDDED_COMPONENT, &cache).unwrap();
        let path = artifact_path(&engine, EMBEDDED_COMPONENT, &cache);
        let written = std::fs::read(&path).unwrap();
        assert!(load(&engine, &path).is_ok());

        std::fs::write(&path, &written[..written.len() / 2]).unwrap();
        assert!(load(&engine, &path).unwrap_err().contains("corrupt"));
        load_or_compile(&engine, EMBEDDED_COMPONENT, &cache).unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            written,
            "replaced by a good artifact"
        );
        std::fs::write(&path, b"short").unwrap();
        assert!(load(&engine, &path).unwrap_err().contains("truncated"));
    }
}
