"""`read-file`: granted paths only, symlinks resolved before the check."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ._lowering import Err
from ._names import cap_error, printable
from ._policy import Policy


def read(policy: Policy, path: str) -> bytes | Err:
    """Reads a granted file whole, up to the policy's size cap."""
    shown = printable(path)
    requested = Path(path)
    if not requested.is_absolute():
        return cap_error("denied", f"path {shown} is relative; only absolute paths are granted")
    try:
        real = Path(os.path.realpath(requested, strict=True))
    except FileNotFoundError:
        if policy.allows_file_lexically(requested):
            return cap_error("not-found", f"{shown} does not exist")
        return cap_error("denied", f"path {shown} is not granted")
    except (OSError, ValueError):
        return cap_error("denied", f"path {shown} is not granted")
    if not policy.allows_file(real):
        # Where a symlink leads is not told: it can name a file the caller
        # may not know of.
        return cap_error("denied", f"path {shown} is not granted")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        return _failure(shown, e)
    try:
        opened = _judge_opened(fd, real, shown)
        if opened is not None:
            return opened
        meta = os.fstat(fd)
        if stat.S_ISDIR(meta.st_mode):
            return cap_error("is-directory", f"{shown} is a directory")
        if not stat.S_ISREG(meta.st_mode):
            return cap_error("failed", f"{shown} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(policy.max_file_bytes + 1)
    except OSError as e:
        return _failure(shown, e)
    finally:
        os.close(fd)
    if len(data) > policy.max_file_bytes:
        return cap_error("too-large", f"{shown} is larger than {policy.max_file_bytes} bytes")
    return data


def _failure(shown: str, e: OSError) -> Err:
    if e.errno == errno.ENOENT:
        return cap_error("not-found", f"{shown} does not exist")
    if e.errno == errno.EISDIR:
        return cap_error("is-directory", f"{shown} is a directory")
    return cap_error("failed", f"reading {shown} failed: {_kind(e)}")


def _judge_opened(fd: int, real: Path, shown: str) -> Err | None:
    """On Linux, refuses a file other than the one checked (a path swapped for a symlink between the
    check and the open). The check is skipped only where `/proc` is not mounted; any other failure
    to read the link fails closed."""
    try:
        opened = Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError as e:
        if not Path("/proc/self/fd").is_dir():
            return None
        return cap_error("failed", f"reading {shown} failed: the opened file cannot be checked ({_kind(e)})")
    if opened != real:
        return cap_error("denied", f"path {shown} changed while it was being opened")
    return None


_KINDS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "filesystem loop or indirection limit (e.g. symlink loop)",
    errno.ENOTDIR: "not a directory",
    errno.EIO: "I/O error",
}


def _kind(e: OSError) -> str:
    """An OS error in the words of Rust's `io::ErrorKind`, as the Rust host prints it."""
    return _KINDS.get(e.errno or 0, "other error")
