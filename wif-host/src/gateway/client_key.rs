//! The gateway's client key: what a client must present (as `x-api-key`
//! or `Authorization: Bearer`) for the gateway to forward its request.
//!
//! A key is drawn from the system's random source (32 bytes, written as
//! `wif-gw-` and base64url), kept in a file that only its owner can read,
//! and compared in constant time (SHA-256 digests of both sides, compared
//! with `subtle`). Its `Debug` never shows it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anthropic_wif_host::private_dir::{self, PrivateDir, PrivateDirError};
use base64::Engine;
use hyper::header::{AUTHORIZATION, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every generated key starts with.
pub const KEY_PREFIX: &str = "wif-gw-";
/// Random bytes in a generated key.
pub const KEY_BYTES: usize = 32;
/// The shortest key a key file may hold, in characters.
pub const MIN_KEY_CHARS: usize = 32;
/// The largest key file read, in bytes.
const MAX_KEY_FILE_BYTES: u64 = 4096;
/// The key file's name in the default folder.
pub const DEFAULT_KEY_FILE: &str = "gateway.key";
/// The header the SDKs send `ANTHROPIC_API_KEY` in.
const API_KEY_HEADER: &str = "x-api-key";

/// The key clients must present. `Debug` shows no part of it.
pub struct ClientKey {
    text: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientKey(redacted)")
    }
}

/// Why a client key cannot be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientKeyError {
    /// The key file fails a check; `problem` says which.
    #[error("client key file {}: {problem}", path.display())]
    Refused {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Reading or creating the key file failed.
    #[error("client key file {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The private folder for the default key file is unsafe or unusable.
    #[error("the folder of the gateway's client key: {0}")]
    Folder(#[from] PrivateDirError),
    /// Neither `XDG_RUNTIME_DIR` nor `HOME` names a folder for the key.
    #[error(
        "no folder for the gateway's client key: set XDG_RUNTIME_DIR or HOME, or pass --client-key-file"
    )]
    NoFolder,
    /// The system's random source failed.
    #[error("cannot draw a client key from the system's random source: {0}")]
    Random(io::Error),
}

impl ClientKey {
    /// A fresh key: [`KEY_PREFIX`] and [`KEY_BYTES`] random bytes from the
    /// operating system, base64url without padding.
    pub fn generate() -> Result<ClientKey, ClientKeyError> {
        let mut bytes = [0u8; KEY_BYTES];
        let mut filled = 0;
        while filled < KEY_BYTES {
            match rustix::rand::getrandom(
                &mut bytes[filled..],
                rustix::rand::GetRandomFlags::empty(),
            ) {
                Ok(read) => filled += read,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ClientKeyError::Random(e.into())),
            }
        }
        let text = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        Ok(ClientKey::from_text(text))
    }

    fn from_text(text: String) -> ClientKey {
        let digest = Sha256::digest(text.as_bytes()).into();
        ClientKey { text, digest }
    }

    /// A key as a file holds it: surrounding whitespace dropped; at least
    /// [`MIN_KEY_CHARS`] visible ASCII characters (it travels in a header).
    fn parse(bytes: &[u8]) -> Result<ClientKey, &'static str> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| "holds characters other than visible ASCII")?
            .trim();
        if text.is_empty() {
            return Err("is empty");
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("holds characters other than visible ASCII");
        }
        if text.len() < MIN_KEY_CHARS {
            return Err("holds a key shorter than 32 characters");
        }
        Ok(ClientKey::from_text(text.to_string()))
    }

    /// The key's text, for a client's environment (`ANTHROPIC_API_KEY`).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// Whether `headers` carry this key, as `x-api-key: KEY` or
    /// `Authorization: Bearer KEY`. Each presented value is compared in
    /// constant time (its SHA-256 digest against the key's).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let api_keys = headers
            .get_all(API_KEY_HEADER)
            .iter()
            .map(|value| value.as_bytes());
        let bearers = headers
            .get_all(AUTHORIZATION)
            .iter()
            .filter_map(|value| bearer_token(value.as_bytes()));
        let mut admitted = subtle::Choice::from(0);
        for presented in api_keys.chain(bearers) {
            let digest: [u8; 32] = Sha256::digest(presented).into();
            admitted |= digest.ct_eq(&self.digest);
        }
        admitted.into()
    }

    /// The key in the file at `path`, checked on its open handle (a
    /// regular file of the user's, open to nobody else, not a symlink);
    /// when there is no file, a fresh key written to a new 0600 file
    /// (`O_EXCL`, never through a symlink). True when it was created.
    pub fn load_or_create(path: &Path) -> Result<(ClientKey, bool), ClientKeyError> {
        match read_key_file(path)? {
            Some(key) => Ok((key, false)),
            None => {
                let key = ClientKey::generate()?;
                if create_key_file(path, &key)? {
                    Ok((key, true))
                } else {
                    let key = read_key_file(path)?.ok_or_else(|| refused(path, "vanished"))?;
                    Ok((key, false))
                }
            }
        }
    }

    /// The key in [`DEFAULT_KEY_FILE`] of the user's private runtime
    /// folder (`$XDG_RUNTIME_DIR/anthropic-wif`, else `gateway` in the
    /// user's cache folder), created when missing; its path, and whether
    /// it was created.
    pub fn load_or_create_default() -> Result<(ClientKey, PathBuf, bool), ClientKeyError> {
        let folder = default_folder()?;
        let path = folder.path().join(DEFAULT_KEY_FILE);
        let read = |folder: &PrivateDir| -> Result<Option<ClientKey>, ClientKeyError> {
            folder
                .read(DEFAULT_KEY_FILE, MAX_KEY_FILE_BYTES)?
                .map(|bytes| ClientKey::parse(&bytes).map_err(|problem| refused(&path, problem)))
                .transpose()
        };
        if let Some(key) = read(&folder)? {
            return Ok((key, path, false));
        }
        let key = ClientKey::generate()?;
        let line = format!("{}\n", key.expose());
        if folder.create_new(DEFAULT_KEY_FILE, line.as_bytes())? {
            return Ok((key, path, true));
        }
        let key = read(&folder)?.ok_or_else(|| refused(&path, "vanished"))?;
        Ok((key, path, false))
    }
}

/// The token of an `Authorization: Bearer TOKEN` value.
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

fn refused(path: &Path, problem: impl Into<String>) -> ClientKeyError {
    ClientKeyError::Refused {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The user's private folder for the key: `$XDG_RUNTIME_DIR/anthropic-wif`
/// when the variable names an absolute path, else `gateway` in the user's
/// cache folder; opened through safe folders only.
fn default_folder() -> Result<PrivateDir, ClientKeyError> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute());
    match runtime {
        Some(dir) => Ok(PrivateDir::open(&dir.join("anthropic-wif"))?),
        None => private_dir::user_cache_root()?
            .ok_or(ClientKeyError::NoFolder)?
            .subdir("gateway")
            .map_err(ClientKeyError::from),
    }
}

/// Reads the key file at `path`; `None` when there is none.
fn read_key_file(path: &Path) -> Result<Option<ClientKey>, ClientKeyError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "is a symlink; give the key file's own path"));
        }
        Err(source) => {
            return Err(ClientKeyError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let io_error = |source| ClientKeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let metadata = file.metadata().map_err(io_error)?;
    if !metadata.file_type().is_file() {
        return Err(refused(path, "is not a regular file"));
    }
    let me = rustix::process::geteuid().as_raw();
    if metadata.uid() != me {
        return Err(refused(
            path,
            format!(
                "belongs to uid {}, not to this user (uid {me})",
                metadata.uid()
            ),
        ));
    }
    let mode = metadata.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(refused(
            path,
            format!(
                "is open to other users (mode {mode:04o}); make it private with chmod 600, or remove it to have a new key made"
            ),
        ));
    }
    if metadata.len() > MAX_KEY_FILE_BYTES {
        return Err(refused(path, "is larger than 4096 bytes"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    ClientKey::parse(&bytes)
        .map(Some)
        .map_err(|problem| refused(path, problem))
}

/// Writes `key` to a new file at `path`, 0600 whatever the umask; false
/// when something is already there.
fn create_key_file(path: &Path, key: &ClientKey) -> Result<bool, ClientKeyError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io_error = |source| ClientKeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path);
    let mut file: File = match created {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io_error(e)),
    };
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(format!("{}\n", key.expose()).as_bytes()))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(io_error(e));
    }
    Ok(true)
}
