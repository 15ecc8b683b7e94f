//! Cross-process single flight on the persistent token cache: an advisory
//! lock per entry, held around read → decide → exchange → write.
//!
//! The lock is the OS's advisory file lock (`flock`, through
//! [`std::fs::File::try_lock`]) on an empty file beside the entry
//! (`<entry>.lock`). The OS drops it when its holder exits or crashes, so a
//! dead process never blocks anyone; it works between containers that share
//! the cache folder on one filesystem (one kernel). A waiter polls for a
//! bounded time, then goes on without the lock.
//!
//! The lock file holds nothing; it is opened through the checked cache
//! folder ([`PrivateDir::open_lock_file`]): created 0600, never through a
//! symlink, refused when it belongs to someone else or is open to other
//! users. It is never deleted: deleting a lock file while another process
//! waits on it would let two holders in.

use std::fs::{File, TryLockError};
use std::time::{Duration, Instant};

use crate::private_dir::{PrivateDir, PrivateDirError};

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

/// Takes the lock held in the file `name` of `dir`, waiting at most `wait`
/// for another process to release it: `Ok(None)` when it did not in time.
pub fn acquire(
    dir: &PrivateDir,
    name: &str,
    wait: Duration,
) -> Result<Option<EntryLock>, PrivateDirError> {
    let file = dir.open_lock_file(name)?;
    let deadline = Instant::now() + wait;
    let mut pause = FIRST_PAUSE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(EntryLock { file })),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => {
                return Err(PrivateDirError::Io {
                    path: dir.path().join(name),
                    source,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests;
