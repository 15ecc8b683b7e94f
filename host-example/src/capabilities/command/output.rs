//! Reading a child's stdout and stderr against one deadline: both pipes and
//! the child's exit are polled together on the calling thread (no reader
//! threads), reads are non-blocking, and each stream is capped.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Instant;

/// How the collection ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// The child exited and both pipes reached end of file.
    Finished,
    /// A stream passed the cap.
    TooLarge,
    /// The deadline passed. `exited`: the child itself had exited, and
    /// something it started still held a pipe open.
    TimedOut {
        /// Whether the child had exited.
        exited: bool,
    },
    /// Polling or reading failed.
    Failed(io::ErrorKind),
}

/// What the child printed, at most `cap + 1` bytes of each stream.
#[derive(Debug, Default)]
pub(super) struct Printed {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// The limits of one collection.
pub(super) struct Limits {
    /// When to give up.
    pub deadline: Instant,
    /// The largest stream allowed, in bytes.
    pub cap: u64,
}

/// Reads `stdout` and `stderr` until the child has exited (`exit` readable)
/// and both pipes are at end of file, until a stream passes the cap, or
/// until the deadline — whichever comes first. `on_exit` runs once, as soon
/// as the child has exited. The pipes are closed on return.
pub(super) fn collect(
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    exit: BorrowedFd<'_>,
    mut on_exit: impl FnMut(),
    limits: &Limits,
) -> (Ending, Printed) {
    let mut streams = [Stream::open(stdout), Stream::open(stderr)];
    let ending = collect_into(&mut streams, exit, &mut on_exit, limits);
    let [stdout, stderr] = streams.map(|stream| stream.bytes);
    (ending, Printed { stdout, stderr })
}

fn collect_into(
    streams: &mut [Stream; 2],
    exit: BorrowedFd<'_>,
    on_exit: &mut dyn FnMut(),
    limits: &Limits,
) -> Ending {
    for stream in streams.iter() {
        if let Some(pipe) = &stream.pipe
            && let Err(error) = set_nonblocking(pipe.as_fd())
        {
            return Ending::Failed(error.kind());
        }
    }
    let mut exited = false;
    loop {
        if exited && streams.iter().all(|s| s.pipe.is_none()) {
            return Ending::Finished;
        }
        let now = Instant::now();
        if now >= limits.deadline {
            return Ending::TimedOut { exited };
        }
        let mut polled: Vec<libc::pollfd> = streams
            .iter()
            .filter_map(|s| s.pipe.as_ref())
            .map(|pipe| pollfd(pipe.as_fd()))
            .collect();
        if !exited {
            polled.push(pollfd(exit));
        }
        let wait = limits.deadline - now;
        let wait_ms = i32::try_from(wait.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX);
        // SAFETY: `polled` is a live array of `polled.len()` pollfd structs,
        // which poll(2) reads and whose `revents` it writes.
        let ready =
            unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, wait_ms) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Ending::Failed(error.kind());
        }
        if !exited && polled.last().is_some_and(|p| p.revents != 0) {
            exited = true;
            on_exit();
        }
        for stream in streams.iter_mut() {
            let is_ready = stream.pipe.as_ref().is_some_and(|pipe| {
                polled
                    .iter()
                    .any(|p| p.fd == pipe.as_raw_fd() && p.revents != 0)
            });
            if !is_ready {
                continue;
            }
            match stream.read_available(limits.cap) {
                Ok(()) if stream.bytes.len() as u64 > limits.cap => return Ending::TooLarge,
                Ok(()) => {}
                Err(error) => return Ending::Failed(error.kind()),
            }
        }
    }
}

/// One output pipe and what was read from it.
struct Stream {
    /// The pipe, until end of file.
    pipe: Option<File>,
    /// The bytes read so far.
    bytes: Vec<u8>,
}

impl Stream {
    fn open(pipe: Option<OwnedFd>) -> Stream {
        Stream {
            pipe: pipe.map(File::from),
            bytes: Vec::new(),
        }
    }

    /// Reads what the pipe holds now, keeping at most `cap + 1` bytes in
    /// all; closes the pipe at end of file.
    fn read_available(&mut self, cap: u64) -> io::Result<()> {
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(());
        };
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => {
                    self.pipe = None;
                    return Ok(());
                }
                Ok(read) => {
                    let room = (cap + 1).saturating_sub(self.bytes.len() as u64);
                    let keep = read.min(usize::try_from(room).unwrap_or(usize::MAX));
                    self.bytes.extend_from_slice(&buffer[..keep]);
                    if self.bytes.len() as u64 > cap {
                        return Ok(());
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }
}

fn pollfd(fd: BorrowedFd<'_>) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl F_GETFL/F_SETFL on a descriptor this function borrows;
    // no memory is passed.
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
