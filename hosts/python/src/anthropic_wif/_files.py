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
        if _opened_elsewhere(fd, real):
            return cap_error("denied", f"path {shown} changed while it was being opened")
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
    return cap_error("failed", f"reading {shown} failed: {errno.errorcode.get(e.errno or 0, 'I/O error')}")


def _opened_elsewhere(fd: int, real: Path) -> bool:
    """On Linux, whether the file actually opened is another than the one checked."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}")) != real
    except OSError:
        return False
