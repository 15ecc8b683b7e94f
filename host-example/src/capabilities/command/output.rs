//! Reading a child's stdout and stderr against one deadline: both pipes and
//! the child's exit are polled together on the calling thread (no reader
//! threads), reads are non-blocking, and each stream is capped.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::OFlags;

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
        let mut polled: Vec<PollFd<'_>> = streams
            .iter()
            .filter_map(|s| s.pipe.as_ref())
            .map(|pipe| PollFd::from_borrowed_fd(pipe.as_fd(), PollFlags::IN))
            .collect();
        if !exited {
            polled.push(PollFd::from_borrowed_fd(exit, PollFlags::IN));
        }
        // A wait too long for a timespec is as good as no timeout.
        let timeout = Timespec::try_from(limits.deadline - now).ok();
        match rustix::event::poll(&mut polled, timeout.as_ref()) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return Ending::Failed(io::Error::from(error).kind()),
        }
        let ready: Vec<bool> = polled.iter().map(|p| !p.revents().is_empty()).collect();
        drop(polled);
        if !exited && ready.last() == Some(&true) {
            exited = true;
            on_exit();
        }
        let mut ready = ready.into_iter();
        for stream in streams.iter_mut() {
            let is_ready = stream.pipe.is_some() && ready.next() == Some(true);
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

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK)?;
    Ok(())
}
