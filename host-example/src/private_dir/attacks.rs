//! What another local user does to a cache, for the tests of the private
//! folders and of the caches kept in them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use rustix::fs::{CWD, RenameFlags, renameat_with};

/// The user id of `nobody`, the other user when the tests run as root.
pub(crate) const OTHER_UID: u32 = 65534;

/// Whether the tests run as root, and so can hand files to another user.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Hands `path` (not following a symlink) to [`OTHER_UID`] when the tests
/// run as root; otherwise leaves it the user's. Either way the caller makes
/// it writable by others, which the user's own folder must never be.
pub(crate) fn give_to_other_user(path: &Path) {
    if is_root() {
        std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    }
}

/// Makes a FIFO (named pipe) at `path`, with the POSIX `mkfifo` utility
/// (rustix has no `mkfifo` on every Unix).
pub(crate) fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}: {status}", path.display());
}

/// Sets the mode of `path`.
pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A thread swapping two names with `renameat2(RENAME_EXCHANGE)` in a loop
/// (a bounded number of times, or until stopped), as an attacker racing a
/// victim's checks does.
pub(crate) struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Swapper {
    /// Starts swapping `a` and `b`.
    pub(crate) fn start(a: PathBuf, b: PathBuf) -> Swapper {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut swaps = 0;
            while !stopped.load(Ordering::Relaxed) && swaps < 5_000_000 {
                renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).unwrap();
                swaps += 1;
            }
            swaps
        });
        Swapper {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops swapping; the number of swaps made.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
