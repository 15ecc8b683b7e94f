//! What another local user does to a cache, for the tests of the private
//! folders and of the caches kept in them.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The user id of `nobody`, the other user when the tests run as root.
pub(crate) const OTHER_UID: u32 = 65534;

/// Whether the tests run as root, and so can hand files to another user.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Hands `path` (not following a symlink) to [`OTHER_UID`] when the tests
/// run as root; otherwise leaves it the user's. Either way the caller makes
/// it writable by others, which the user's own folder must never be.
pub(crate) fn give_to_other_user(path: &Path) {
    if is_root() {
        std::os::unix::fs::lchown(path, Some(OTHER_UID), Some(OTHER_UID)).unwrap();
    }
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
            let a = CString::new(a.as_os_str().as_bytes()).unwrap();
            let b = CString::new(b.as_os_str().as_bytes()).unwrap();
            let mut swaps = 0;
            while !stopped.load(Ordering::Relaxed) && swaps < 5_000_000 {
                // SAFETY: both paths are NUL-terminated; the call only
                // renames.
                let done = unsafe {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(done, 0, "{}", std::io::Error::last_os_error());
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
