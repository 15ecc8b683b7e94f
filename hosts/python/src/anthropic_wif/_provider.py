"""The provider: the component loaded once, called from any thread.

- Tokens are kept by the host until the component's `refresh-after`; until
  then `get_token` does not enter the component.
- After it, one caller at a time enters the component (single flight);
  callers that waited find the fresh token and return without a second
  exchange.
- Every call runs under a memory cap and a fuel budget (the component's own
  work; time spent in I/O costs no fuel). A trap drops the instance; the next
  call instantiates a fresh one.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar, Union

import wasmtime
from wasmtime.component import Component, Instance, Linker, Variant

from ._capabilities import Clock, add_to_linker, system_clock
from ._errors import ComponentFailed, LoadFailed, MalformedResponse, WifError, from_component
from ._policy import Policy

PROVIDER = "anthropic-wif:federation/provider@0.2.0"
"""The component's exported interface."""
DEFAULT_MEMORY_LIMIT = 64 * 1024 * 1024
"""Default cap on the component's linear memory."""
DEFAULT_FUEL = 2_000_000_000
"""Default fuel of one call: a full exchange takes about 100 000 units and an answer from the
component's cache about 20 000."""
MAX_COMPONENT_BYTES = 64 * 1024 * 1024
"""The largest component file read."""

Config = Union[str, Mapping[str, Any]]
"""The `auth` block: its JSON text, or the parsed mapping."""
_R = TypeVar("_R")


@dataclass(frozen=True)
class AccessToken:
    """A short-lived Anthropic access token. `repr` never shows the token."""

    token: str
    token_type: str
    expires_at: int
    refresh_after: int

    def __repr__(self) -> str:
        return (
            f"AccessToken(token='[redacted]', token_type={self.token_type!r}, "
            f"expires_at={self.expires_at}, refresh_after={self.refresh_after})"
        )


@dataclass(frozen=True)
class Requirements:
    """Everything a config will ask the host for."""

    env: list[str]
    optional_env: list[str]
    """Variables read when set; unset is fine (the aws source's credential chain)."""
    files: list[str]
    """Files; `${NAME}` is the file the variable NAME names, read only when it is set."""
    origins: list[str]
    urls: list[tuple[str, str | None]]
    """Identity URLs as written, with their origin when it is fixed in the template."""
    when_set_urls: list[tuple[str, str | None]]
    """URLs fetched only when every variable their template references is set."""
    commands: list[list[str]]


class _Compiled:
    """An engine and the component compiled for it, shared by providers loading the same bytes."""

    _lock = threading.Lock()
    _shared: dict[bytes, _Compiled] = {}

    def __init__(self, component: bytes) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        self.engine = wasmtime.Engine(config)
        try:
            self.component = Component(self.engine, component)
        except wasmtime.WasmtimeError as e:
            raise LoadFailed(f"compiling the component: {_first_line(e)}") from None

    @classmethod
    def of(cls, component: bytes) -> _Compiled:
        with cls._lock:
            compiled = cls._shared.get(component)
            if compiled is None:
                compiled = cls._shared[component] = _Compiled(component)
            return compiled


class _Live:
    """An instance, its store and its three exports."""

    def __init__(self, compiled: _Compiled, linker: Linker, memory_limit: int, fuel: int) -> None:
        self.store = wasmtime.Store(compiled.engine)
        self.store.set_limits(memory_size=memory_limit)
        # Instantiation runs the component's start code, which takes fuel too.
        self.store.set_fuel(max(fuel, DEFAULT_FUEL))
        try:
            instance = linker.instantiate(self.store, compiled.component)
        except wasmtime.WasmtimeError as e:
            raise LoadFailed(f"instantiating the component: {_first_line(e)}") from None
        self.get_token = self._export(instance, "get-token")
        self.invalidate = self._export(instance, "invalidate")
        self.requirements = self._export(instance, "requirements")

    def _export(self, instance: Instance, name: str) -> Any:
        interface = instance.get_export_index(self.store, PROVIDER)
        index = instance.get_export_index(self.store, name, interface) if interface else None
        func = instance.get_func(self.store, index) if index else None
        if func is None:
            raise LoadFailed(f"the component does not export {PROVIDER}#{name}")
        return func


class Provider:
    """Access tokens for `auth` configs, minted by the component under a deny-by-default policy.

    `policy` is a `Policy`, the path of a policy TOML file, or None (grant
    nothing). `component` is the path or bytes of another build of the
    component; by default the one shipped in this package. `clock` is the
    wall clock the component reads (Unix seconds), for tests.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | None = None,
        *,
        component: bytes | str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        fuel: int = DEFAULT_FUEL,
    ) -> None:
        if policy is None:
            policy = Policy()
        elif not isinstance(policy, Policy):
            policy = Policy.from_file(policy)
        self.policy = policy
        self._clock = clock or system_clock
        self._memory_limit = memory_limit
        self._fuel = fuel
        self._compiled = _Compiled.of(_component_bytes(component))
        self._linker = Linker(self._compiled.engine)
        add_to_linker(self._linker, policy, self._clock)
        self._lock = threading.Lock()
        self._live: _Live | None = None
        self._tokens: dict[str, AccessToken] = {}

    def get_token(self, config: Config) -> AccessToken:
        """A valid access token for `config`, from the host cache or from the component."""
        text = _config_text(config)
        cached = self._cached(text)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cached(text)
            if cached is not None:
                return cached
            answer = self._call(lambda live: live.get_token(live.store, text))
            if isinstance(answer, Variant):
                raise from_component(answer)
            token_type = getattr(answer, "token-type")
            if token_type.lower() != "bearer":
                raise MalformedResponse(f"the component returned a token of type {token_type!r}, not Bearer")
            token = AccessToken(
                token=answer.token,
                token_type="Bearer",
                expires_at=getattr(answer, "expires-at"),
                refresh_after=getattr(answer, "refresh-after"),
            )
            self._tokens[text] = token
            return token

    def invalidate(self, config: Config) -> None:
        """Drops the token cached for `config`, in the host and in the component. Call it after an API 401."""
        text = _config_text(config)
        with self._lock:
            self._tokens.pop(text, None)
            self._call(lambda live: live.invalidate(live.store, text))

    def requirements(self, config: Config) -> Requirements:
        """Validates `config` and lists what it needs from the host."""
        text = _config_text(config)
        with self._lock:
            needs = self._call(lambda live: live.requirements(live.store, text))
        if isinstance(needs, Variant):
            raise from_component(needs)
        return Requirements(
            env=list(needs.env),
            optional_env=list(getattr(needs, "optional-env")),
            files=list(needs.files),
            origins=list(needs.origins),
            urls=[(u.template, u.origin) for u in needs.urls],
            when_set_urls=[(u.template, u.origin) for u in getattr(needs, "when-set-urls")],
            commands=[list(argv) for argv in needs.commands],
        )

    def _cached(self, text: str) -> AccessToken | None:
        token = self._tokens.get(text)
        if token is not None and self._clock() < token.refresh_after:
            return token
        return None

    def _call(self, call: Callable[[_Live], _R]) -> _R:
        """Calls into the component under the lock, instantiating it first; a trap drops the instance."""
        if self._live is None:
            self._live = _Live(self._compiled, self._linker, self._memory_limit, self._fuel)
        live = self._live
        live.store.set_fuel(self._fuel)
        try:
            return call(live)
        except wasmtime.WasmtimeError as e:
            self._live = None
            raise ComponentFailed(_describe_trap(e)) from None
        except WifError:
            self._live = None
            raise
        except Exception as e:
            self._live = None
            raise ComponentFailed(f"a host function failed: {type(e).__name__}") from e


def _config_text(config: Config) -> str:
    return config if isinstance(config, str) else json.dumps(config)


def _component_bytes(component: bytes | str | os.PathLike[str] | None) -> bytes:
    if isinstance(component, bytes):
        return component
    if component is None:
        shipped = resources.files(__package__).joinpath("anthropic_wif.wasm")
        if not shipped.is_file():
            raise LoadFailed(
                "anthropic_wif.wasm is missing from the package; build it with "
                "`cargo run --example write_component -- "
                "hosts/python/src/anthropic_wif/anthropic_wif.wasm` and reinstall"
            )
        return shipped.read_bytes()
    path = Path(component)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_COMPONENT_BYTES + 1)
    except OSError as e:
        raise LoadFailed(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_COMPONENT_BYTES:
        raise LoadFailed(f"{path} is larger than {MAX_COMPONENT_BYTES} bytes")
    return data


def _describe_trap(error: wasmtime.WasmtimeError) -> str:
    text = str(error)
    if "all fuel consumed" in text:
        return "it ran past its fuel budget and was interrupted"
    return f"it trapped: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or ["unknown error"])[0]
