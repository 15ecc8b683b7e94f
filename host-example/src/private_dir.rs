//! Folders and files that only the current user may write: the compile
//! cache and the token cache live in them.
//!
//! Another local user must be able neither to plant code or a token for us
//! nor to read ours, and no check may be raced. So a folder is never trusted
//! by its path: it is opened from `/`, one component at a time, with
//! `openat(O_DIRECTORY | O_NOFOLLOW)` on the folder opened before it, and
//! each folder on the way is checked on its open handle (`fstat`): owned by
//! the user or root, and writable by nobody else. A sticky folder writable
//! by others (such as `/tmp`) is accepted only on the way, when the next
//! component belongs to the user (the usual safe-path rule), never as the
//! private folder itself. Files are opened in their folder's handle with
//! `O_NOFOLLOW`, checked on the open handle (a regular file of the user's,
//! open to nobody else) and read from that handle, within a size bound.
//! Writes go to a fresh `O_EXCL` 0600 file in the same folder, are synced,
//! renamed into place and the folder synced; a write that fails removes its
//! temporary file.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Why a private folder or file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivateDirError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The folder or file fails a safety check.
    #[error("{path}: {problem}")]
    Unsafe {
        /// The folder or file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateDirError + '_ {
    move |source| PrivateDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn refused(path: &Path, problem: impl Into<String>) -> PrivateDirError {
    PrivateDirError::Unsafe {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// A folder opened through safe folders only, and checked on its handle.
/// Everything in it is reached through that handle, never by path again.
#[derive(Debug)]
pub struct PrivateDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// Where a folder sits on the way to a private folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the way: a sticky folder writable by others is accepted here.
    Ancestor,
    /// The folder a private folder is made in: owned by the user or root,
    /// writable by nobody else.
    Base,
    /// A private folder: the user's own, writable by nobody else.
    Own,
}

/// The owner and mode of a folder, as `fstat` gives them.
#[derive(Debug, Clone, Copy)]
struct Seen {
    uid: u32,
    mode: u32,
}

/// What a folder is, when it is acceptable where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Nobody but its owner (the user or root) can change it.
    Safe,
    /// A sticky folder others can write in (like `/tmp`): acceptable on the
    /// way when the next component belongs to the user.
    Shared,
}

const OTHERS_WRITE: u32 = 0o022;
/// The mode of a new private file: 0600.
const PRIVATE_FILE: Mode = Mode::RUSR.union(Mode::WUSR);
const STICKY: u32 = 0o1000;
const SHARED_FOLDER: &str = "is a shared folder (sticky and writable by other users, like /tmp): not a safe place for a cache; \
     set XDG_CACHE_HOME to a folder of your own";

/// The rule for one folder: `below_shared` when its parent is
/// [`Verdict::Shared`].
fn judge_folder(
    seen: Seen,
    me: u32,
    place: Place,
    below_shared: bool,
) -> Result<Verdict, &'static str> {
    let owner_ok = match place {
        Place::Own => seen.uid == me,
        Place::Ancestor | Place::Base => seen.uid == me || seen.uid == 0,
    };
    if below_shared && seen.uid != me {
        return Err("belongs to another user and sits in a shared folder");
    }
    if !owner_ok {
        return Err("belongs to another user");
    }
    if seen.mode & OTHERS_WRITE == 0 {
        return Ok(Verdict::Safe);
    }
    match (seen.mode & STICKY != 0, place) {
        (true, Place::Ancestor) => Ok(Verdict::Shared),
        (true, _) => Err(SHARED_FOLDER),
        (false, _) => Err("is writable by other users"),
    }
}

/// `bytes` as lowercase hex digits, for file names.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The effective user id.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn c_name(name: &OsStr, path: &Path) -> Result<CString, PrivateDirError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(refused(path, "is not a plain name"));
    }
    CString::new(bytes).map_err(|_| refused(path, "contains a NUL byte"))
}

fn fstat(fd: &OwnedFd, path: &Path) -> Result<Stat, PrivateDirError> {
    rustix::fs::fstat(fd).map_err(|e| io(path)(e.into()))
}

fn openat(dir: &OwnedFd, name: &CString, flags: OFlags, mode: Mode) -> rustix::io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    rustix::io::retry_on_intr(|| rustix::fs::openat(dir, name, flags, mode))
}

/// Whether `name` in `dir` is a symlink (for the error message only).
fn is_symlink_at(dir: &OwnedFd, name: &CString) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Opens the folder `name` in `dir` without following a symlink; with
/// `create`, made 0700 when missing.
fn open_folder_at(
    dir: &OwnedFd,
    name: &OsStr,
    path: &Path,
    create: bool,
) -> Result<OwnedFd, PrivateDirError> {
    let c = c_name(name, path)?;
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    match openat(dir, &c, flags, Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) if create => {}
        // With O_NOFOLLOW, ELOOP means the name is a symlink.
        Err(Errno::LOOP) => return Err(refused(path, "is a symlink")),
        Err(Errno::NOTDIR) => {
            return Err(refused(
                path,
                if is_symlink_at(dir, &c) {
                    "is a symlink"
                } else {
                    "is not a folder"
                },
            ));
        }
        Err(e) => return Err(io(path)(e.into())),
    }
    match rustix::fs::mkdirat(dir, &c, Mode::RWXU) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(io(path)(e.into())),
    }
    openat(dir, &c, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP => refused(path, "is a symlink"),
        Errno::NOTDIR => refused(path, "is not a folder"),
        e => io(path)(e.into()),
    })
}

fn check_folder(
    fd: &OwnedFd,
    path: &Path,
    place: Place,
    below_shared: bool,
) -> Result<Verdict, PrivateDirError> {
    let st = fstat(fd, path)?;
    judge_folder(
        Seen {
            uid: st.st_uid,
            mode: st.st_mode,
        },
        euid(),
        place,
        below_shared,
    )
    .map_err(|problem| refused(path, problem))
}

impl PrivateDir {
    /// Opens `path` (an absolute path without `..`; missing folders are made
    /// 0700) from `/`, one folder at a time, each checked on its handle. The
    /// last folder must be the user's own and writable by nobody else.
    pub fn open(path: &Path) -> Result<PrivateDir, PrivateDirError> {
        open_walk(path, Place::Own)
    }

    /// The folder `name` in this one (made 0700 when missing), the user's
    /// own and writable by nobody else.
    pub fn subdir(&self, name: &str) -> Result<PrivateDir, PrivateDirError> {
        let path = self.path.join(name);
        let fd = open_folder_at(&self.fd, OsStr::new(name), &path, true)?;
        check_folder(&fd, &path, Place::Own, false)?;
        Ok(PrivateDir { fd, path })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file `name`, read whole through the handle that was checked: a
    /// regular file, the user's own, neither readable nor writable by others,
    /// of at most `max_bytes`. `Ok(None)` when there is no such file.
    pub fn read(&self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, PrivateDirError> {
        let path = self.path.join(name);
        let Some((fd, st)) = self.open_own_file(name, OFlags::RDONLY, &path)? else {
            return Ok(None);
        };
        read_bounded(fd, &st, max_bytes, &path).map(Some)
    }

    /// Writes `bytes` to the file `name` atomically, mode 0600, replacing
    /// any earlier file.
    pub fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), PrivateDirError> {
        let path = self.path.join(name);
        let target = c_name(OsStr::new(name), &path)?;
        let temp = self.temp_file(name, bytes)?;
        rustix::fs::renameat(&self.fd, &temp.name, &self.fd, &target)
            .map_err(|e| io(&path)(e.into()))?;
        temp.renamed();
        self.sync()
    }

    /// Opens the file `name` for reading and writing, creating it empty
    /// (0600) when missing, for use as a lock: a regular file, the user's
    /// own, neither readable nor writable by others, never a symlink.
    pub fn open_lock_file(&self, name: &str) -> Result<File, PrivateDirError> {
        let path = self.path.join(name);
        let opened = self.open_own_file(name, OFlags::RDWR | OFlags::CREATE, &path)?;
        let (fd, _) = opened.ok_or_else(|| io(&path)(std::io::ErrorKind::NotFound.into()))?;
        Ok(File::from(fd))
    }

    /// Opens the file `name` with `flags` (never following a symlink, never
    /// blocking on a FIFO; created 0600 with `O_CREAT`) and checks it on
    /// the handle: a regular file, the user's own, neither readable nor
    /// writable by others. `Ok(None)` when there is no such file.
    fn open_own_file(
        &self,
        name: &str,
        flags: OFlags,
        path: &Path,
    ) -> Result<Option<(OwnedFd, Stat)>, PrivateDirError> {
        let c = c_name(OsStr::new(name), path)?;
        let flags = flags | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match openat(&self.fd, &c, flags, PRIVATE_FILE) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(refused(path, "is a symlink")),
            Err(e) => return Err(io(path)(e.into())),
        };
        let st = fstat(&fd, path)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(refused(path, "is not a regular file"));
        }
        if st.st_uid != euid() {
            return Err(refused(path, "belongs to another user"));
        }
        if st.st_mode & 0o077 != 0 {
            return Err(refused(path, "is readable or writable by other users"));
        }
        Ok(Some((fd, st)))
    }

    /// Removes the file `name`, if there is one.
    pub fn remove(&self, name: &str) -> Result<(), PrivateDirError> {
        let path = self.path.join(name);
        let c = c_name(OsStr::new(name), &path)?;
        match rustix::fs::unlinkat(&self.fd, &c, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(io(&path)(e.into())),
        }
        self.sync()
    }

    /// Writes `bytes` to the file `name`, mode 0600, unless it exists:
    /// `Ok(false)` then. The file appears whole or not at all.
    pub fn create_new(&self, name: &str, bytes: &[u8]) -> Result<bool, PrivateDirError> {
        let path = self.path.join(name);
        let target = c_name(OsStr::new(name), &path)?;
        let temp = self.temp_file(name, bytes)?;
        // `linkat` never replaces an existing name.
        match rustix::fs::linkat(&self.fd, &temp.name, &self.fd, &target, AtFlags::empty()) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Ok(false),
            Err(e) => return Err(io(&path)(e.into())),
        }
        drop(temp);
        self.sync()?;
        Ok(true)
    }

    /// A fresh private file (`O_EXCL`, 0600) in this folder holding `bytes`,
    /// synced; removed when dropped unless renamed.
    fn temp_file(&self, name: &str, bytes: &[u8]) -> Result<TempFile<'_>, PrivateDirError> {
        let path = self.path.join(name);
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let mut attempts = 0;
        let (c, fd) = loop {
            let suffix = hex(&random_bytes::<8>().map_err(io(&path))?);
            let c = c_name(OsStr::new(&format!(".{name}.{suffix}.tmp")), &path)?;
            match openat(&self.fd, &c, flags, PRIVATE_FILE) {
                Ok(fd) => break (c, fd),
                Err(Errno::EXIST) if attempts < 8 => attempts += 1,
                Err(e) => return Err(io(&path)(e.into())),
            }
        };
        let temp = TempFile {
            dir: self,
            name: c,
            armed: true,
        };
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(temp)
    }

    fn sync(&self) -> Result<(), PrivateDirError> {
        rustix::fs::fsync(&self.fd).map_err(|e| io(&self.path)(e.into()))
    }
}

/// A temporary file in a private folder, removed on drop unless renamed.
struct TempFile<'a> {
    dir: &'a PrivateDir,
    name: CString,
    armed: bool,
}

impl TempFile<'_> {
    fn renamed(mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(&self.dir.fd, &self.name, AtFlags::empty());
        }
    }
}

fn open_walk(path: &Path, last: Place) -> Result<PrivateDir, PrivateDirError> {
    walk(path, last, true).map(|(fd, path)| PrivateDir { fd, path })
}

/// Opens `path` from `/`, one folder at a time (made 0700 when missing with
/// `create`), each checked on its handle; `last` is the rule for the last
/// one.
fn walk(path: &Path, last: Place, create: bool) -> Result<(OwnedFd, PathBuf), PrivateDirError> {
    if !path.is_absolute() {
        return Err(refused(path, "is not an absolute path"));
    }
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refused(path, "contains `..`; write the path without it"));
            }
        }
    }
    let mut here = PathBuf::from("/");
    let root = File::open(&here).map_err(io(&here))?;
    let mut fd = OwnedFd::from(root);
    let place_of = |i: usize| {
        if i == names.len() {
            last
        } else {
            Place::Ancestor
        }
    };
    let mut verdict = check_folder(&fd, &here, place_of(0), false)?;
    for (i, name) in names.iter().enumerate() {
        here.push(name);
        fd = open_folder_at(&fd, name, &here, create)?;
        verdict = check_folder(&fd, &here, place_of(i + 1), verdict == Verdict::Shared)?;
    }
    Ok((fd, here))
}

/// A folder whose contents only the user or root can change: settings that
/// may be readable by others but must not be writable by them (the official
/// SDKs' profiles). Opened as it is, never created, through folders checked
/// as for [`PrivateDir`]: from `/`, one component at a time, without
/// following a symlink, each owned by the user or root and writable by
/// nobody else (a sticky shared folder such as `/tmp` only on the way).
#[derive(Debug)]
pub struct TrustedDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl TrustedDir {
    /// Opens the existing folder `path` (absolute, without `..`).
    pub fn open(path: &Path) -> Result<TrustedDir, PrivateDirError> {
        let (fd, path) = walk(path, Place::Base, false)?;
        Ok(TrustedDir { fd, path })
    }

    /// The existing folder `name` in this one, checked the same way.
    pub fn subdir(&self, name: &str) -> Result<TrustedDir, PrivateDirError> {
        let path = self.path.join(name);
        let fd = open_folder_at(&self.fd, OsStr::new(name), &path, false)?;
        check_folder(&fd, &path, Place::Base, false)?;
        Ok(TrustedDir { fd, path })
    }

    /// The folder's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file `name`, read whole through the handle that was checked
    /// (never following a symlink, never blocking on a FIFO): a regular
    /// file owned by the user or root, writable by nobody else, of at most
    /// `max_bytes`. `Ok(None)` when there is no such file.
    pub fn read(&self, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, PrivateDirError> {
        let path = self.path.join(name);
        let c = c_name(OsStr::new(name), &path)?;
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match openat(&self.fd, &c, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(refused(&path, "is a symlink")),
            Err(e) => return Err(io(&path)(e.into())),
        };
        let st = fstat(&fd, &path)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(refused(&path, "is not a regular file"));
        }
        if st.st_uid != euid() && st.st_uid != 0 {
            return Err(refused(&path, "belongs to another user"));
        }
        if st.st_mode & OTHERS_WRITE != 0 {
            return Err(refused(
                &path,
                format!(
                    "is writable by group or others (mode {:o}); run `chmod go-w` on it",
                    st.st_mode & 0o777
                ),
            ));
        }
        read_bounded(fd, &st, max_bytes, &path).map(Some)
    }
}

/// Reads the open file `fd` (whose `fstat` is `st`) whole, refusing more
/// than `max_bytes`.
fn read_bounded(
    fd: OwnedFd,
    st: &Stat,
    max_bytes: u64,
    path: &Path,
) -> Result<Vec<u8>, PrivateDirError> {
    let too_large = || refused(path, format!("is larger than {max_bytes} bytes"));
    if u64::try_from(st.st_size).unwrap_or(u64::MAX) > max_bytes {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    File::from(fd)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The folder the user's cache root is made in: `$XDG_CACHE_HOME` when it
/// is set to an absolute path (a relative one is ignored, as the XDG spec
/// says), else `$HOME/.cache`; `Ok(None)` when neither is set.
fn cache_base(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<PathBuf>, PrivateDirError> {
    let set = |name| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(xdg) = set("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        return Ok(Some(xdg));
    }
    match set("HOME") {
        None => Ok(None),
        Some(home) if home.is_absolute() => Ok(Some(home.join(".cache"))),
        Some(home) => Err(refused(&home, "HOME is not an absolute path")),
    }
}

/// The user's cache root for this project, `anthropic-wif` in
/// `$XDG_CACHE_HOME` or `$HOME/.cache`, opened (and made) through safe
/// folders only. The folder it is made in must be owned by the user or root
/// and writable by nobody else: a shared folder such as `/tmp` is refused.
/// `Ok(None)` when neither variable is set.
pub fn user_cache_root() -> Result<Option<PrivateDir>, PrivateDirError> {
    cache_root_in(cache_base(|name| std::env::var_os(name))?)
}

fn cache_root_in(base: Option<PathBuf>) -> Result<Option<PrivateDir>, PrivateDirError> {
    match base {
        None => Ok(None),
        Some(base) => open_walk(&base, Place::Base)?
            .subdir("anthropic-wif")
            .map(Some),
    }
}

/// `N` bytes from the system's random source.
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    #[cfg(target_os = "linux")]
    {
        let mut filled = 0;
        while filled < N {
            let got = rustix::io::retry_on_intr(|| {
                rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
            })?;
            filled += got;
        }
    }
    #[cfg(not(target_os = "linux"))]
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod attacks;
#[cfg(test)]
mod tests;
