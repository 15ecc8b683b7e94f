//! Local input files the host reads itself (config, policy, SDK profiles):
//! regular files of bounded size only.
//!
//! A config path can name `/dev/zero`, a FIFO or a file that grows while it
//! is read; reading it whole would exhaust memory or block forever. The file
//! is opened without blocking (a FIFO with no writer would block the open),
//! checked with `fstat` on the opened handle, and read through a limit one
//! byte over the cap, so that a file growing after the check is refused too.

use std::fs::File;
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The largest local input file the host reads: 1 MiB, far above any real
/// config or policy.
pub const MAX_LOCAL_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a regular UTF-8 text file of at most [`MAX_LOCAL_FILE_BYTES`].
///
/// The error's message says what is wrong (not a regular file and what it
/// is instead, over the cap, not UTF-8); callers prefix it with the path.
pub fn read_text(path: &Path) -> Result<String, Error> {
    read_text_capped(path, MAX_LOCAL_FILE_BYTES)
}

/// [`read_text`] with another cap.
pub fn read_text_capped(path: &Path, cap: u64) -> Result<String, Error> {
    String::from_utf8(read_bytes(path, cap)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "it is not valid UTF-8 text"))
}

/// Reads a regular file of at most `cap` bytes.
pub fn read_bytes(path: &Path, cap: u64) -> Result<Vec<u8>, Error> {
    let file = open_nonblocking(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "it is {}, not a regular file",
                describe(&metadata.file_type())
            ),
        ));
    }
    let too_large = || {
        Error::new(
            ErrorKind::InvalidData,
            format!("it is larger than the {} cap for this file", size(cap)),
        )
    };
    if metadata.len() > cap {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(bytes)
}

fn open_nonblocking(path: &Path) -> Result<File, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

/// What a non-regular file is, in words.
fn describe(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        return "a FIFO (named pipe)";
    }
    if kind.is_char_device() {
        return "a character device";
    }
    if kind.is_block_device() {
        return "a block device";
    }
    if kind.is_socket() {
        return "a socket";
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// A cap in words (`1 MiB`, `512 bytes`).
fn size(cap: u64) -> String {
    if cap >= 1024 * 1024 && cap.is_multiple_of(1024 * 1024) {
        format!("{} MiB", cap / (1024 * 1024))
    } else {
        format!("{cap} bytes")
    }
}

#[cfg(test)]
mod tests;
