"""The provider: the component loaded once, called from any thread.

- `Provider.client(config)` makes a `Client`: the component's `client`
  resource for that config, validated once. Hold it and call `token()`;
  `Provider.get_token(config)` and the other functions that take a config
  use a client kept per config text.
- Tokens are kept by the host until the component's `refresh-after`; until
  then `token()` does not enter the component.
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
from ._errors import ComponentFailed, InvalidConfig, LoadFailed, MalformedResponse, WifError, from_component
from ._policy import Policy

PROVIDER = "anthropic-wif:federation/provider@0.3.0"
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
    """An instance, its store, the `client` resource's functions, and the clients made in it."""

    def __init__(self, compiled: _Compiled, linker: Linker, memory_limit: int, fuel: int) -> None:
        self.store = wasmtime.Store(compiled.engine)
        self.store.set_limits(memory_size=memory_limit)
        # Instantiation runs the component's start code, which takes fuel too.
        self.store.set_fuel(max(fuel, DEFAULT_FUEL))
        try:
            instance = linker.instantiate(self.store, compiled.component)
        except wasmtime.WasmtimeError as e:
            raise LoadFailed(f"instantiating the component: {_first_line(e)}") from None
        self.new_client = self._export(instance, "[constructor]client")
        self.token = self._export(instance, "[method]client.token")
        self.token_valid_for = self._export(instance, "[method]client.token-valid-for")
        self.invalidate = self._export(instance, "[method]client.invalidate")
        self.invalidate_rejected = self._export(instance, "[method]client.invalidate-rejected")
        self.requirements = self._export(instance, "[method]client.requirements")
        self.clients: dict[str, Any] = {}
        """Each config text's resource in this instance."""

    def client(self, text: str) -> Any:
        """The resource of the config `text` in this instance, made (and the config validated) if
        needed; the component's `error` variant when the config is invalid."""
        resource = self.clients.get(text)
        if resource is None:
            resource = self.new_client(self.store, text)
            if not isinstance(resource, Variant):
                self.clients[text] = resource
        return resource

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
        self._clients: dict[str, Client] = {}

    def client(self, config: Config) -> Client:
        """A prepared handle on `config`, validated now (an invalid config raises `InvalidConfig`).

        Hold it and call `token()`; every call with the same config returns the same client.
        """
        text = _config_text(config)
        client = self._clients.get(text)
        if client is not None:
            return client
        with self._lock:
            made = self._call(lambda live: live.client(text))
            if isinstance(made, Variant):
                raise from_component(made)
            return self._clients.setdefault(text, Client(self, text))

    def get_token(self, config: Config) -> AccessToken:
        """A valid access token for `config`: `token()` of the client kept for it."""
        return self.client(config).token()

    def invalidate(self, config: Config) -> None:
        """`invalidate()` of the client kept for `config`; an invalid config has nothing to drop."""
        try:
            client = self.client(config)
        except InvalidConfig:
            return
        client.invalidate()

    def requirements(self, config: Config) -> Requirements:
        """Validates `config` and lists what it needs from the host."""
        return self.client(config).requirements()

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


class Client:
    """A prepared handle on one config (the component's `client` resource); thread-safe.

    Made by `Provider.client(config)`. The token is served from here until the
    component's `refresh-after`; after that one caller at a time asks the
    component. The resource lives in the provider's instance: after a trap
    it is made again in the fresh one.
    """

    def __init__(self, provider: Provider, text: str) -> None:
        self._provider = provider
        self._text = text
        self._token: AccessToken | None = None

    def token(self) -> AccessToken:
        """A valid access token: the one held until `refresh-after`, else the component's answer."""
        return self.token_valid_for(0)

    def token_valid_for(self, seconds: int) -> AccessToken:
        """A token valid for at least `seconds` more seconds when the component can exchange for one.

        A held token with less time left is refreshed early; when the identity
        token is the one already exchanged, the component returns the token it
        holds (see `expires_at`) rather than spend the identity token again.
        """
        held = self._served(seconds)
        if held is not None:
            return held
        provider = self._provider
        with provider._lock:
            held = self._served(seconds)
            if held is not None:
                return held
            if seconds:
                answer = self._call(lambda live, me: live.token_valid_for(live.store, me, seconds))
            else:
                answer = self._call(lambda live, me: live.token(live.store, me))
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
            self._token = token
            return token

    def invalidate(self) -> None:
        """Drops the token, here and in the component; the next call exchanges."""
        provider = self._provider
        with provider._lock:
            self._token = None
            self._call(lambda live, me: live.invalidate(live.store, me))

    def invalidate_rejected(self, rejected: str) -> None:
        """`invalidate()` only when `rejected` (the token an API 401 refused) is the token held.

        When another caller has already replaced it, nothing is dropped: many
        requests refused with one token lead to one new exchange.
        """
        provider = self._provider
        with provider._lock:
            if self._token is not None and self._token.token != rejected:
                return
            self._token = None
            self._call(lambda live, me: live.invalidate_rejected(live.store, me, rejected))

    def requirements(self) -> Requirements:
        """What the config needs from the host."""
        provider = self._provider
        with provider._lock:
            needs = self._call(lambda live, me: live.requirements(live.store, me))
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

    def _call(self, call: Callable[[_Live, Any], _R]) -> _R | Variant:
        """`call` with this client's resource, under the provider's lock (held by the caller);
        the component's `error` variant when the resource cannot be made."""

        def with_resource(live: _Live) -> _R | Variant:
            resource = live.client(self._text)
            if isinstance(resource, Variant):
                return resource
            return call(live, resource)

        return self._provider._call(with_resource)

    def _served(self, seconds: int) -> AccessToken | None:
        token = self._token
        if token is None:
            return None
        now = self._provider._clock()
        if now < token.refresh_after and token.expires_at - now >= seconds:
            return token
        return None

    def __repr__(self) -> str:
        return "Client(...)"


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
