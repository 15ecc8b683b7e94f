//! `read-file`: granted paths only, symlinks resolved before the check.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use super::printable;
use crate::bindings::anthropic_wif::federation::capabilities::CapError;
use crate::policy::Policy;

/// Reads a granted file whole, up to the policy's size cap.
pub(super) fn read(policy: &Policy, path: &str) -> Result<Vec<u8>, CapError> {
    let shown = printable(path);
    let requested = Path::new(path);
    if !requested.is_absolute() {
        return Err(CapError::Denied(format!(
            "path {shown} is relative; only absolute paths are granted"
        )));
    }
    let real = match std::fs::canonicalize(requested) {
        Ok(real) => real,
        Err(e) if e.kind() == ErrorKind::NotFound && policy.allows_file_lexically(requested) => {
            return Err(CapError::NotFound(format!("{shown} does not exist")));
        }
        Err(_) => return Err(CapError::Denied(format!("path {shown} is not granted"))),
    };
    // The path as given, never where it resolves: a denial must not tell a
    // component what lies behind a symlink it is not granted.
    if !policy.allows_file(&real) {
        return Err(CapError::Denied(format!("path {shown} is not granted")));
    }
    let file = open_no_follow(&real).map_err(|e| failure(&shown, &e))?;
    verify_opened(&file, &real, &shown)?;
    let meta = file.metadata().map_err(|e| failure(&shown, &e))?;
    if meta.is_dir() {
        return Err(CapError::IsDirectory(format!("{shown} is a directory")));
    }
    if !meta.is_file() {
        return Err(CapError::Failed(format!("{shown} is not a regular file")));
    }
    let mut bytes = Vec::new();
    file.take(policy.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failure(&shown, &e))?;
    if bytes.len() as u64 > policy.max_file_bytes {
        return Err(CapError::TooLarge(format!(
            "{shown} is larger than {} bytes",
            policy.max_file_bytes
        )));
    }
    Ok(bytes)
}

fn failure(shown: &str, e: &std::io::Error) -> CapError {
    match e.kind() {
        ErrorKind::NotFound => CapError::NotFound(format!("{shown} does not exist")),
        ErrorKind::IsADirectory => CapError::IsDirectory(format!("{shown} is a directory")),
        kind => CapError::Failed(format!("reading {shown} failed: {kind}")),
    }
}

fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use rustix::fs::OFlags;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK).bits() as i32)
        .open(path)
}

/// On Linux, checks that the file actually opened is the one checked: a path
/// swapped for a symlink between the check and the open is refused.
#[cfg(target_os = "linux")]
fn verify_opened(file: &File, real: &Path, shown: &str) -> Result<(), CapError> {
    use std::os::fd::AsRawFd;
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()));
    judge_opened(opened, || Path::new("/proc/self/fd").is_dir(), real, shown)
}

/// The verdict on the path `/proc/self/fd` gives for the opened file. The
/// check is skipped only when `/proc` is not mounted (`proc_mounted` says
/// so); any other failure to read the link fails closed.
#[cfg(target_os = "linux")]
fn judge_opened(
    opened: std::io::Result<std::path::PathBuf>,
    proc_mounted: impl FnOnce() -> bool,
    real: &Path,
    shown: &str,
) -> Result<(), CapError> {
    match opened {
        Ok(opened) if opened == real => Ok(()),
        Ok(_) => Err(CapError::Denied(format!(
            "path {shown} changed while it was being opened"
        ))),
        Err(_) if !proc_mounted() => Ok(()),
        Err(e) => Err(CapError::Failed(format!(
            "reading {shown} failed: the opened file cannot be checked ({})",
            e.kind()
        ))),
    }
}

#[cfg(not(target_os = "linux"))]
fn verify_opened(_file: &File, _real: &Path, _shown: &str) -> Result<(), CapError> {
    Ok(())
}

#[cfg(test)]
mod tests;
