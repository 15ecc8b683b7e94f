"""Proxy selection as curl does it, per request (a port of the Rust host's `net/proxy.rs`).

For `https` URLs `https_proxy` then `HTTPS_PROXY`; for `http` URLs
`http_proxy` only (never `HTTP_PROXY`, which a CGI server sets from a request
header); then `all_proxy`, `ALL_PROXY`. `no_proxy` (or `NO_PROXY`) lists
destinations reached directly. Loopback and link-local destinations are never
proxied. The policy decides whether the environment is read at all
(`[http] proxy`).
"""

from __future__ import annotations

import base64
import ipaddress
import os
from dataclasses import dataclass
from typing import Callable, Literal, Mapping, Union
from urllib.parse import unquote, urlsplit

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
"""Schemes a proxy URL may have."""
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")
"""The variables read, in the order curl consults them."""


class ProxyUrlError(ValueError):
    """Why a text is not a proxy URL: the predicate of a sentence whose subject the caller names.

    It never quotes the URL, which can hold a password.
    """


class ProxyUrl:
    """A proxy URL. Its credentials are never shown: `str` and `repr` give `scheme://host:port` only."""

    __slots__ = ("_scheme", "_host", "_port", "_user", "_password")

    def __init__(self, scheme: str, host: str, port: int, user: str, password: str | None) -> None:
        self._scheme, self._host, self._port = scheme, host, port
        self._user, self._password = user, password

    @staticmethod
    def parse(text: str) -> ProxyUrl:
        """Parses a proxy URL; one without a scheme is `http://`, as curl reads it."""
        text = text.strip()
        with_scheme = text if "://" in text else f"http://{text}"
        try:
            parts = urlsplit(with_scheme)
            port = parts.port
        except ValueError:
            raise ProxyUrlError("is not a valid proxy URL (invalid port number)") from None
        if any(c in with_scheme for c in " \t\r\n\0\\"):
            raise ProxyUrlError("is not a valid proxy URL (invalid character)")
        if parts.scheme not in PROXY_SCHEMES:
            raise ProxyUrlError(
                f"has scheme `{parts.scheme}`; a proxy is `http://`, `https://`, `socks5://` or `socks5h://`"
            )
        if not parts.hostname:
            raise ProxyUrlError("has no host; write e.g. `http://proxy.example.com:3128`")
        if parts.path not in ("", "/") or parts.query or "?" in with_scheme.split("@")[-1]:
            raise ProxyUrlError("has a path or query; a proxy is `scheme://[user:password@]host:port`")
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        if port is None:
            port = {"https": 443, "http": 80}.get(parts.scheme, 1080)
        return ProxyUrl(parts.scheme, host, port, parts.username or "", parts.password)

    @property
    def scheme(self) -> str:
        """`http`, `https`, `socks5` or `socks5h`."""
        return self._scheme

    @property
    def host(self) -> str:
        """The host as written in URLs (IPv6 in brackets)."""
        return self._host

    @property
    def port(self) -> int:
        """The port, defaulting as curl does (1080 for SOCKS, 80/443 for HTTP)."""
        return self._port

    def has_credentials(self) -> bool:
        """Whether the URL carries a user name or password."""
        return bool(self._user) or self._password is not None

    def credentials(self) -> tuple[str, str] | None:
        """The percent-decoded user name and password, if any. Never log them."""
        if not self.has_credentials():
            return None
        return unquote(self._user), unquote(self._password or "")

    def basic_credentials(self) -> str | None:
        """The value of `Proxy-Authorization: Basic`: percent-decoded `user:password`, base64. Never log it."""
        credentials = self.credentials()
        if credentials is None:
            return None
        return base64.b64encode(":".join(credentials).encode("utf-8")).decode("ascii")

    def __str__(self) -> str:
        return f"{self._scheme}://{self._host}:{self._port}"

    def __repr__(self) -> str:
        return f"ProxyUrl({self}{', with credentials' if self.has_credentials() else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProxyUrl):
            return NotImplemented
        return (self._scheme, self._host, self._port, self._user, self._password) == (
            other._scheme,
            other._host,
            other._port,
            other._user,
            other._password,
        )

    def __hash__(self) -> int:
        return hash((self._scheme, self._host, self._port))


ProxySetting = Union[Literal["env", "none"], ProxyUrl]
"""What the policy says about proxies (`[http] proxy`): the variables decide, always direct, or this proxy."""


class ProxyEnv:
    """The proxy variables of the host process, read once. `repr` names the variables set, never their values."""

    def __init__(self, lookup: Callable[[str], str | None]) -> None:
        self._vars: list[tuple[str, str]] = []
        for name in PROXY_VARIABLES:
            value = lookup(name)
            if value is not None and value.strip():
                self._vars.append((name, value))

    @staticmethod
    def from_process() -> ProxyEnv:
        """The proxy variables of this process."""
        return ProxyEnv(os.environ.get)

    @staticmethod
    def of(values: Mapping[str, str]) -> ProxyEnv:
        """The proxy variables in `values`."""
        return ProxyEnv(values.get)

    def first(self, names: tuple[str, ...]) -> tuple[str, str] | None:
        """The first of `names` that is set, with its value."""
        for wanted in names:
            for name, value in self._vars:
                if name == wanted:
                    return name, value
        return None

    def __repr__(self) -> str:
        return f"ProxyEnv(set={[name for name, _ in self._vars]})"


@dataclass(frozen=True)
class Direct:
    """Straight to the destination, and why."""

    reason: str


@dataclass(frozen=True)
class ViaProxy:
    """Through a proxy; `source` names the variable or policy key that configured it."""

    proxy: ProxyUrl
    source: str


Route = Union[Direct, ViaProxy]
"""How one request is routed."""


class RouteError(ValueError):
    """A proxy variable is not a valid proxy URL. Names the variable, never its value."""

    def __init__(self, variable: str, problem: ProxyUrlError) -> None:
        self.variable, self.problem = variable, problem
        super().__init__(f"proxy variable {variable} {problem}")


def select(setting: ProxySetting, env: ProxyEnv, scheme: str, host: str, port: int) -> Route:
    """Chooses the route to `scheme://host:port` under `setting`, with the environment `env`."""
    if is_local(host):
        return Direct("loopback and link-local destinations are never proxied")
    if setting == "none":
        return Direct('the policy sets http.proxy = "none"')
    if isinstance(setting, ProxyUrl):
        return ViaProxy(setting, "http.proxy (policy)")
    names = (
        ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
        if scheme == "https"
        else ("http_proxy", "all_proxy", "ALL_PROXY")
    )
    chosen = env.first(names)
    if chosen is None:
        return Direct(f"none of {', '.join(names)} is set")
    variable, value = chosen
    listed = env.first(("no_proxy", "NO_PROXY"))
    if listed is not None:
        entry = no_proxy_match(listed[1], host, port)
        if entry is not None:
            return Direct(f"{listed[0]} entry `{entry}` matches")
    try:
        return ViaProxy(ProxyUrl.parse(value), variable)
    except ProxyUrlError as problem:
        raise RouteError(variable, problem) from None


def is_local(host: str) -> bool:
    """Whether `host` is loopback or link-local (by address), or `localhost` or a name under it."""
    ip = _parse_ip(host)
    if ip is None:
        name = host.removesuffix(".").lower()
        return name == "localhost" or name.endswith(".localhost")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local


def no_proxy_match(listed: str, host: str, port: int) -> str | None:
    """The first entry of a `no_proxy` list that matches the destination, as written (trimmed)."""
    host = host.lower()
    host_ip = _parse_ip(host)
    for entry in (e.strip() for e in listed.split(",")):
        if entry and _entry_matches(entry, host, host_ip, port):
            return entry
    return None


_Ip = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _parse_ip(host: str) -> _Ip | None:
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _entry_matches(entry: str, host: str, host_ip: _Ip | None, port: int) -> bool:
    if entry == "*":
        return True
    pattern, wanted_port = _split_port(entry.lower())
    if wanted_port is not None and wanted_port != port:
        return False
    if "/" in pattern:
        network, bits = pattern.split("/", 1)
        network_ip = _parse_ip(network)
        if host_ip is None or network_ip is None or not bits.isdigit():
            return False
        return _in_cidr(host_ip, network_ip, int(bits))
    pattern_ip = _parse_ip(pattern)
    if pattern_ip is not None:
        return host_ip == pattern_ip
    domain = pattern.lstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


def _split_port(entry: str) -> tuple[str, int | None]:
    """Splits an optional `:port` off a `no_proxy` entry (`[v6]:port` too; a bare IPv6 address has no port)."""
    if entry.startswith("[") and "]" in entry:
        address, after = entry[1:].split("]", 1)
        port = after.removeprefix(":") if after.startswith(":") else ""
        return address, int(port) if port.isdigit() and int(port) < 65536 else None
    if ":" in entry:
        pattern, port = entry.rsplit(":", 1)
        if ":" not in pattern:
            if port.isdigit() and int(port) < 65536:
                return pattern, int(port)
            return entry, None
    return entry, None


def _in_cidr(ip: _Ip, network: _Ip, bits: int) -> bool:
    if ip.version != network.version or bits > ip.max_prefixlen:
        return False
    width = ip.max_prefixlen
    mask = ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)
    return int(ip) & mask == int(network) & mask
