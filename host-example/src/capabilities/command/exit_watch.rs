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
    pub(super) fn start(pid: libc::pid_t) -> io::Result<ExitWatch> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Ok(pidfd) = pidfd_open(pid) {
            return Ok(ExitWatch::Pidfd(pidfd));
        }
        ExitWatch::waiter(pid)
    }

    /// Watches the child `pid` with a waiter thread.
    pub(super) fn waiter(pid: libc::pid_t) -> io::Result<ExitWatch> {
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

/// `pidfd_open(2)`: a descriptor of the process `pid` (close-on-exec).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; it reads and writes no memory of this process.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    // SAFETY: the kernel just returned this descriptor, and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks until the child `pid` has exited, leaving it to be reaped. Returns
/// at once when `pid` is not (or no longer) a child to wait for, for example
/// when the system discarded it because `SIGCHLD` is ignored.
fn wait_without_reaping(pid: libc::pid_t) {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C
        // struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid writes only into `info`, which lives across the
        // call.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if result == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Whether this process has `SIGCHLD` ignored (`SIG_IGN`) or set with
/// `SA_NOCLDWAIT`: then the system reaps children itself and discards their
/// exit status, so a command's success cannot be known. Reading the
/// disposition changes nothing.
pub(super) fn exit_status_discarded() -> bool {
    // SAFETY: an all-zero sigaction is a valid value of this plain C struct.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: with a null new action, sigaction only writes the current one
    // into `current`.
    let result = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut current) };
    result == 0
        && (current.sa_sigaction == libc::SIG_IGN || current.sa_flags & libc::SA_NOCLDWAIT != 0)
}

/// Sends `SIGKILL` to the process group `pgid` (a child started as the
/// group's leader and not yet reaped, so the id is still its own).
pub(super) fn kill_group(pgid: libc::pid_t) {
    // SAFETY: kill(2) with a negative pid signals a process group; it
    // touches no memory of this process.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
