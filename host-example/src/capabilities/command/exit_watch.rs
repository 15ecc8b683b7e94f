//! Noticing that a child has exited without reaping it, and without any
//! process-wide signal handler: a library must not touch the disposition of
//! `SIGCHLD`, which belongs to the program that embeds it.
//!
//! On Linux 5.3 and later a pidfd (`pidfd_open`) becomes readable when the
//! child exits. Where that is unavailable (older kernels, seccomp filters
//! that refuse it, other Unix systems), a waiter thread blocks in
//! `waitid(WEXITED | WNOWAIT)` and then closes the write end of a pipe.
//! Either way the caller gets a descriptor to `poll` next to the output
//! pipes, and the child stays a zombie — its process id, and so its process
//! group id, cannot be reused — until the caller reaps it, after it has
//! killed the group.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// A descriptor that becomes readable once a child has exited.
pub(super) enum ExitWatch {
    /// A pidfd of the child.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Pidfd(OwnedFd),
    /// The read end of a pipe whose write end a waiter thread closes when
    /// the child has exited.
    Waiter {
        /// Reaches end of file when the child has exited.
        exited: OwnedFd,
        /// The waiter thread; always joined by [`ExitWatch::finish`].
        thread: JoinHandle<()>,
    },
}

impl ExitWatch {
    /// Watches the child `pid` with a pidfd, or with a waiter thread where
    /// pidfds are unavailable.
    pub(super) fn start(pid: Pid) -> io::Result<ExitWatch> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(pidfd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
            return Ok(ExitWatch::Pidfd(pidfd));
        }
        ExitWatch::waiter(pid)
    }

    /// Watches the child `pid` with a waiter thread.
    pub(super) fn waiter(pid: Pid) -> io::Result<ExitWatch> {
        let (reader, writer) = io::pipe()?;
        let thread = std::thread::Builder::new()
            .name("wif-command-exit".into())
            .spawn(move || {
                wait_without_reaping(pid);
                drop(writer);
            })?;
        Ok(ExitWatch::Waiter {
            exited: reader.into(),
            thread,
        })
    }

    /// The descriptor to poll for readability.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ExitWatch::Pidfd(pidfd) => pidfd.as_fd(),
            ExitWatch::Waiter { exited, .. } => exited.as_fd(),
        }
    }

    /// Releases the watch; with a waiter thread, blocks until the child has
    /// exited (call it after killing the child) and joins the thread.
    pub(super) fn finish(self) {
        match self {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            ExitWatch::Pidfd(_) => {}
            ExitWatch::Waiter { thread, .. } => {
                // The thread runs no code that can panic.
                let _ = thread.join();
            }
        }
    }
}

/// Blocks until the child `pid` has exited, leaving it to be reaped. Returns
/// at once when `pid` is not (or no longer) a child to wait for, for example
/// when the system discarded it because `SIGCHLD` is ignored.
fn wait_without_reaping(pid: Pid) {
    let _ = rustix::io::retry_on_intr(|| {
        rustix::process::waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        )
    });
}

/// Whether this process has `SIGCHLD` ignored (`SIG_IGN`) or set with
/// `SA_NOCLDWAIT`: then the system reaps children itself and discards their
/// exit status, so a command's success cannot be known. Reading the
/// disposition changes nothing.
pub(super) fn exit_status_discarded() -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction only writes the current one
    // into `current`, which is all zeros before: a valid value of this
    // plain C struct either way. (rustix has no safe `sigaction`.)
    #[allow(unsafe_code)]
    let (result, current) = unsafe {
        let result = libc::sigaction(libc::SIGCHLD, std::ptr::null(), current.as_mut_ptr());
        (result, current.assume_init())
    };
    result == 0
        && (current.sa_sigaction == libc::SIG_IGN || current.sa_flags & libc::SA_NOCLDWAIT != 0)
}

/// Sends `SIGKILL` to the process group `pgid` (a child started as the
/// group's leader and not yet reaped, so the id is still its own).
pub(super) fn kill_group(pgid: Pid) {
    let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
}
