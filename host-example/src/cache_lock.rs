//! Cross-process single flight on the persistent token cache: an advisory
//! lock per config entry, held around read → decide → exchange → write.
//!
//! The lock is the OS's advisory file lock (`flock` on Unix, `LockFileEx` on
//! Windows, through [`std::fs::File::try_lock`]) on an empty file beside the
//! entry (`<fingerprint>.lock`). The OS drops it when its holder exits or
//! crashes, so a dead process never blocks anyone; it works between
//! containers that share the cache folder on one filesystem (one kernel).
//! A waiter polls for a bounded time, then goes on without the lock.
//!
//! The lock file holds nothing; it is created 0600 in the private cache
//! folder, never through a symlink, and refused when it belongs to someone
//! else or is open to other users. It is never deleted: deleting a lock file
//! while another process waits on it would let two holders in.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::private_dir::{self, PrivateDirError};
use crate::token_cache::TokenCache;

/// The first pause between two tries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// The lock on one cache entry, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct EntryLock {
    file: File,
}

impl Drop for EntryLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the
        // release independent of other handles to the same file.
        let _ = self.file.unlock();
    }
}

/// The lock file of `config_json`'s entry in `cache`.
pub fn lock_path(cache: &TokenCache, config_json: &str) -> PathBuf {
    cache.path_for(config_json).with_extension("lock")
}

/// Takes the lock on `config_json`'s entry, waiting at most `wait` for
/// another process to release it: `Ok(None)` when it did not in time.
pub fn acquire(
    cache: &TokenCache,
    config_json: &str,
    wait: Duration,
) -> Result<Option<EntryLock>, PrivateDirError> {
    private_dir::ensure(cache.dir())?;
    let path = lock_path(cache, config_json);
    let file = open_private(&path)?;
    let deadline = Instant::now() + wait;
    let mut pause = FIRST_PAUSE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(EntryLock { file })),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => return Err(PrivateDirError::Io { path, source }),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Opens (creating it 0600 if needed) the lock file, refusing a symlink, a
/// file of another user, or one open to others.
fn open_private(path: &Path) -> Result<File, PrivateDirError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(path).map_err(|source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let unsafe_because = |problem| PrivateDirError::Unsafe {
        path: path.to_path_buf(),
        problem,
    };
    let meta = file.metadata().map_err(|source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(unsafe_because("is not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions and cannot fail.
        if meta.uid() != unsafe { libc::geteuid() } {
            return Err(unsafe_because("belongs to another user"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(unsafe_because("is readable or writable by other users"));
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests;
