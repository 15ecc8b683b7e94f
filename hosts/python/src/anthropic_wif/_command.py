"""`run-command`: granted argv prefixes only, no shell, a minimal environment,
a timeout that kills the process group, and capped output."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import IO

from wasmtime.component import Record

from ._lowering import Err
from ._names import cap_error, printable, record
from ._policy import Policy

BASE_ENV = ("PATH", "HOME")
"""Variables every child gets, besides those the policy grants."""


def run(policy: Policy, argv: list[str], requested_ms: int) -> Record | Err:
    """Runs a granted command for at most the lower of `requested_ms` and the policy's timeout."""
    shown = printable(" ".join(argv))
    if not policy.allows_command(argv):
        return cap_error("denied", f"command {shown} is not granted")
    if not argv:
        return cap_error("failed", "empty command")
    env = {name: os.environ[name] for name in (*BASE_ENV, *policy.env) if name in os.environ}
    granted = [os.environb[os.fsencode(name)] for name in policy.env if os.fsencode(name) in os.environb]
    try:
        child = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        return cap_error("not-found", f"program {printable(argv[0])} not found")
    except (OSError, ValueError) as e:
        return cap_error("failed", f"command {shown} could not start: {type(e).__name__}")
    cap = policy.max_output_bytes
    assert child.stdout is not None and child.stderr is not None
    stdout, stderr = _CappedReader(child.stdout, cap), _CappedReader(child.stderr, cap)
    timeout = min(requested_ms / 1000, policy.command_timeout)
    try:
        code = child.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        child.wait()
        stdout.join()
        stderr.join()
        return cap_error("timeout", f"command {shown} did not finish within {timeout:g} s")
    # The command is done; anything it started and left running must not keep the pipes open.
    _kill_group(child)
    out, err = stdout.join(), stderr.join()
    if len(out) > cap or len(err) > cap:
        return cap_error("too-large", f"command {shown} printed more than {cap} bytes")
    # The child got the granted variables and may print them (a helper under
    # `set -x`); the component may quote its stderr in an error, so the
    # values it was given are hidden here. Stdout, the token, is left as is.
    return record(exit_code=code if code >= 0 else None, stdout=out, stderr=redact_values(err, granted))


MIN_SECRET_BYTES = 4
"""Values shorter than this are not hidden: they carry no secret worth the name, and replacing them
would garble every message (`1`, `true`)."""


def redact_values(stderr: bytes, values: list[bytes]) -> bytes:
    """`stderr` with every occurrence of each of `values` replaced by `[redacted]`, longest value first
    (so that a value is replaced whole before a shorter one that it contains)."""
    for value in sorted((v for v in values if len(v) >= MIN_SECRET_BYTES), key=len, reverse=True):
        stderr = stderr.replace(value, b"[redacted]")
    return stderr


class _CappedReader:
    """Reads a pipe on its own thread, keeping at most `cap + 1` bytes and draining the rest."""

    def __init__(self, pipe: IO[bytes], cap: int) -> None:
        self._pipe, self._cap = pipe, cap
        self._data = bytearray()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while chunk := self._pipe.read1(64 * 1024):  # type: ignore[attr-defined]
                if len(self._data) <= self._cap:
                    self._data += chunk[: self._cap + 1 - len(self._data)]
        except OSError:
            pass
        finally:
            self._pipe.close()

    def join(self) -> bytes:
        self._thread.join()
        return bytes(self._data)


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
