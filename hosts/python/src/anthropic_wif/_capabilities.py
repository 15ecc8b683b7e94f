"""The four capabilities and the wall clock, linked into a wasmtime-py component linker."""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from wasmtime.component import Linker, Record

from . import _command, _files, _http, _lowering
from ._lowering import Err
from ._names import cap_error, printable, record
from ._policy import Policy

CAPABILITIES = "anthropic-wif:federation/capabilities@0.3.0"
"""The component's capabilities interface."""
WALL_CLOCK = "wasi:clocks/wall-clock@0.2.12"
"""The WASI wall clock, the component's only other import."""

Clock = Callable[[], float]
"""A wall clock: Unix seconds, with a fraction."""


def get_env(policy: Policy, name: str) -> str | None | Err:
    """Reads a granted environment variable; None when it is unset."""
    if not policy.allows_env(name):
        return cap_error("denied", f"environment variable {printable(name)} is not granted")
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return cap_error("failed", f"environment variable {printable(name)} is not valid UTF-8")
    return value


def add_to_linker(linker: Linker, policy: Policy, clock: Clock) -> None:
    """Defines the capabilities under `policy` and the wall clock `clock` in `linker`."""
    _lowering.install()
    client = _http.HttpClient(policy)

    def now(_store: Any) -> Record:
        seconds = clock()
        whole = int(seconds)
        return record(seconds=whole, nanoseconds=min(int((seconds - whole) * 1e9), 999_999_999))

    with linker.root() as root:
        with root.add_instance(CAPABILITIES) as caps:
            caps.add_func("read-file", lambda _store, path: _files.read(policy, path))
            caps.add_func("get-env", lambda _store, name: get_env(policy, name))
            caps.add_func("http-fetch", lambda _store, request: _http.fetch(policy, client, request))
            caps.add_func("run-command", lambda _store, argv, ms: _command.run(policy, argv, ms))
        with root.add_instance(WALL_CLOCK) as wall_clock:
            wall_clock.add_func("now", now)
            wall_clock.add_func("resolution", lambda _store: record(seconds=0, nanoseconds=1_000_000))


def system_clock() -> float:
    """The system's wall clock."""
    return time.time()
