//! Folders and files that only the current user may read or write: the
//! compile cache and the token cache live in them.
//!
//! A folder or file that is a symlink, belongs to someone else, or is open to
//! other users is refused, so that another account can neither plant code or
//! a token for us nor read ours. Files are written atomically (a private
//! temporary file in the same folder, then a rename), so a reader never sees
//! half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a private folder or file cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The folder or file fails a safety check.
    #[error("{path}: {problem}")]
    Unsafe {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateDirError + '_ {
    move |source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The user's cache folder for this project: `$XDG_CACHE_HOME/anthropic-wif`
/// or `$HOME/.cache/anthropic-wif`.
pub fn user_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("anthropic-wif"))
}

/// Creates `dir` (mode 0700) if needed and checks that it is private.
pub fn ensure(dir: &Path) -> Result<(), PrivateDirError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(dir)(e)),
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    check(dir, true)
}

/// Checks that `path` is not a symlink, is owned by the current user, and is
/// not open to others (for a folder: not writable by them; for a file: not
/// readable or writable by them).
pub fn check(path: &Path, is_dir: bool) -> Result<(), PrivateDirError> {
    let meta = std::fs::symlink_metadata(path).map_err(io(path))?;
    let unsafe_because = |problem| PrivateDirError::Unsafe {
        path: path.to_path_buf(),
        problem,
    };
    if meta.file_type().is_symlink() {
        return Err(unsafe_because("is a symlink"));
    }
    if meta.is_dir() != is_dir {
        return Err(unsafe_because(if is_dir {
            "is not a folder"
        } else {
            "is not a regular file"
        }));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(unsafe_because("belongs to another user"));
        }
        let open_to_others = if is_dir { 0o022 } else { 0o077 };
        if meta.mode() & open_to_others != 0 {
            return Err(unsafe_because(if is_dir {
                "is writable by other users"
            } else {
                "is readable or writable by other users"
            }));
        }
    }
    Ok(())
}

/// Reads a private file whole, after the checks of [`check`].
pub fn read(path: &Path) -> Result<Vec<u8>, PrivateDirError> {
    check(path, false)?;
    std::fs::read(path).map_err(io(path))
}

/// Writes `bytes` to `path` atomically, mode 0600, in a private folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PrivateDirError> {
    let dir = path.parent().ok_or_else(|| PrivateDirError::Unsafe {
        path: path.to_path_buf(),
        problem: "has no parent folder",
    })?;
    ensure(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    file.write_all(bytes).map_err(io(path))?;
    file.as_file().sync_all().map_err(io(path))?;
    file.persist(path).map_err(|e| io(path)(e.error))?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_written_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/sub/file");
        write_atomically(&path, b"data").unwrap();
        assert_eq!(read(&path).unwrap(), b"data");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
    }

    #[test]
    fn symlinks_and_open_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        write_atomically(&path, b"data").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(
            read(&link)
                .unwrap_err()
                .to_string()
                .contains("is a symlink")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("readable or writable by other users")
        );
    }
}
