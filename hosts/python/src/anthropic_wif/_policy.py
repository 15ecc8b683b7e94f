"""The host's deny-by-default policy, read from the same TOML file as the Rust host's.

Everything the file does not grant is denied. Parsing is strict: unknown
keys, relative paths, origins with a path and plain-http origins off
loopback are errors that name the key and say what to write.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._proxy import ProxySetting, ProxyUrl, ProxyUrlError
from ._tls import load_ca_file

DEFAULT_HTTP_TIMEOUT_SECS = 30.0
"""Default time limit of one HTTP request."""
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
"""Default cap of a response body: 1 MiB."""
DEFAULT_COMMAND_TIMEOUT_SECS = 30.0
"""Default time limit of one command."""
DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024
"""Default cap of a command's stdout and of its stderr: 1 MiB."""
DEFAULT_MAX_FILE_BYTES = 1024 * 1024
"""Default cap of a file read: 1 MiB."""

_KEYS = {
    "env": {"allow"},
    "files": {"allow", "allow_prefixes", "max_bytes"},
    "http": {"allow_origins", "timeout_secs", "max_body_bytes", "ca_files", "proxy"},
    "commands": {"allow", "timeout_secs", "max_output_bytes"},
}


class PolicyError(ValueError):
    """A policy file that cannot be read or is invalid; the message names the key."""


@dataclass(frozen=True)
class Origin:
    """A granted HTTP origin: scheme, host as written in URLs (lower case, IPv6 in brackets), port."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{self.host}" if self.port == default else f"{self.scheme}://{self.host}:{self.port}"

    @staticmethod
    def of(url: str) -> Origin | None:
        """The origin of an absolute http(s) URL; None for other schemes, no host or a bad port."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        if ":" in host:
            host = f"[{host}]"
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        return Origin(parts.scheme, host, port)

    def allows_plain_http(self) -> bool:
        """Whether plain http is acceptable: loopback and link-local (cloud metadata) hosts only."""
        if self.host == "localhost":
            return True
        try:
            ip = ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return False
        return ip.is_loopback or ip.is_link_local


@dataclass(frozen=True)
class Policy:
    """A validated policy. `Policy()` grants nothing."""

    env: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()
    file_prefixes: tuple[Path, ...] = ()
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    origins: tuple[Origin, ...] = ()
    http_timeout: float = DEFAULT_HTTP_TIMEOUT_SECS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ca_files: tuple[Path, ...] = ()
    """PEM files of CA certificates trusted besides the platform's roots."""
    proxy: ProxySetting = "env"
    """`"env"` (the proxy variables decide), `"none"` or the one proxy of every request."""
    commands: tuple[tuple[str, ...], ...] = field(default=())
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_SECS
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES

    @staticmethod
    def from_file(path: str | os.PathLike[str]) -> Policy:
        """Reads and validates a policy file."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PolicyError(f"cannot read policy file {path}: {e}") from None
        return Policy.from_toml(text)

    @staticmethod
    def from_toml(text: str) -> Policy:
        """Parses and validates the TOML text of a policy."""
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PolicyError(f"policy: {e}") from None
        for table, value in raw.items():
            if table not in _KEYS:
                raise PolicyError(f"policy: unknown table `{table}`, expected one of env, files, http, commands")
            if not isinstance(value, dict):
                raise PolicyError(f"policy: {table}: must be a table, e.g. `[{table}]`")
            for key in value:
                if key not in _KEYS[table]:
                    raise PolicyError(
                        f"policy: unknown key `{table}.{key}`, expected one of {', '.join(sorted(_KEYS[table]))}"
                    )
        env, files, http, commands = (raw.get(t, {}) for t in ("env", "files", "http", "commands"))
        return Policy(
            env=tuple(_env_name(n, f"env.allow[{i}]") for i, n in enumerate(_strings(env, "allow", "env.allow"))),
            files=_paths(_strings(files, "allow", "files.allow"), "files.allow"),
            file_prefixes=_paths(_strings(files, "allow_prefixes", "files.allow_prefixes"), "files.allow_prefixes"),
            max_file_bytes=_positive(files.get("max_bytes"), DEFAULT_MAX_FILE_BYTES, "files.max_bytes"),
            origins=tuple(
                parse_origin(o, f"http.allow_origins[{i}]")
                for i, o in enumerate(_strings(http, "allow_origins", "http.allow_origins"))
            ),
            http_timeout=_seconds(http.get("timeout_secs"), DEFAULT_HTTP_TIMEOUT_SECS, "http.timeout_secs"),
            max_body_bytes=_positive(http.get("max_body_bytes"), DEFAULT_MAX_BODY_BYTES, "http.max_body_bytes"),
            ca_files=_ca_files(_strings(http, "ca_files", "http.ca_files")),
            proxy=_proxy_setting(http.get("proxy")),
            commands=tuple(
                _argv_prefix(argv, f"commands.allow[{i}]") for i, argv in enumerate(_list(commands, "allow", "commands.allow"))
            ),
            command_timeout=_seconds(commands.get("timeout_secs"), DEFAULT_COMMAND_TIMEOUT_SECS, "commands.timeout_secs"),
            max_output_bytes=_positive(
                commands.get("max_output_bytes"), DEFAULT_MAX_OUTPUT_BYTES, "commands.max_output_bytes"
            ),
        )

    def allows_env(self, name: str) -> bool:
        """Whether the variable `name` may be read."""
        return name in self.env

    def allows_file(self, real: Path) -> bool:
        """Whether the canonical path `real` may be read."""
        return any(_canonical_or_self(p) == real for p in self.files) or any(
            real.is_relative_to(_canonical_or_self(p)) for p in self.file_prefixes
        )

    def allows_file_lexically(self, path: Path) -> bool:
        """Whether `path` is granted as written; only used to tell "not found" from "denied"."""
        if ".." in path.parts:
            return False
        return path in self.files or any(path.is_relative_to(p) for p in self.file_prefixes)

    def allows_origin(self, origin: Origin) -> bool:
        """Whether `origin` may be fetched."""
        return origin in self.origins

    def allows_command(self, argv: list[str]) -> bool:
        """Whether `argv` starts with a granted prefix, element by element."""
        return any(tuple(argv[: len(prefix)]) == prefix for prefix in self.commands)


def parse_origin(text: object, key: str) -> Origin:
    """Parses a granted origin, with an error that names `key` and says what to write."""
    if not isinstance(text, str):
        raise PolicyError(f"policy: {key}: must be a string like `https://api.anthropic.com`")
    if "://" not in text:
        raise PolicyError(f"policy: {key}: `{text}` has no scheme; write `https://{text}`")
    origin = Origin.of(text)
    if origin is None:
        raise PolicyError(
            f"policy: {key}: `{text}` must be an http or https origin, e.g. `https://api.anthropic.com`"
        )
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        raise PolicyError(f"policy: {key}: `{text}` contains user information; write `{origin}`")
    if parts.path not in ("", "/") or parts.query or parts.fragment or text.endswith(("?", "#")):
        raise PolicyError(f"policy: {key}: `{text}` has a path, query or fragment; an origin is `{origin}`")
    if origin.scheme == "http" and not origin.allows_plain_http():
        raise PolicyError(
            f"policy: {key}: `{text}` uses plain http; write `https://{origin.host}` "
            "(http is only granted for loopback and link-local addresses)"
        )
    return origin


def _list(table: dict[str, Any], key: str, name: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise PolicyError(f"policy: {name}: must be an array, e.g. `{key} = []`")
    return value


def _strings(table: dict[str, Any], key: str, name: str) -> list[str]:
    value = _list(table, key, name)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise PolicyError(f"policy: {name}[{i}]: must be a string")
    return value


def _env_name(name: str, key: str) -> str:
    if not name or "=" in name or "\0" in name:
        raise PolicyError(f'policy: {key}: must be a variable name, without `=` or NUL; write e.g. `"MY_TOKEN"`')
    return name


def _paths(entries: list[str], key: str) -> tuple[Path, ...]:
    out = []
    for i, entry in enumerate(entries):
        path = Path(entry)
        if not path.is_absolute():
            raise PolicyError(f"policy: {key}[{i}]: `{entry}` is relative; write an absolute path like `/{entry}`")
        if ".." in path.parts:
            raise PolicyError(f"policy: {key}[{i}]: `{entry}` contains `..`; write the path without it")
        out.append(path)
    return tuple(out)


def _ca_files(entries: list[str]) -> tuple[Path, ...]:
    files = _paths(entries, "http.ca_files")
    for i, path in enumerate(files):
        try:
            load_ca_file(path)
        except ValueError as e:
            raise PolicyError(f"policy: http.ca_files[{i}]: {e}; list PEM files of CA certificates") from None
    return files


_PROXY_WHAT = (
    'write `"env"` (the proxy variables decide), `"none"` or a proxy URL such as `"http://proxy.example.com:3128"`'
)


def _proxy_setting(value: object) -> ProxySetting:
    if value is None or value == "env":
        return "env"
    if value == "none":
        return "none"
    if isinstance(value, str) and "://" in value:
        try:
            return ProxyUrl.parse(value)
        except ProxyUrlError as problem:
            raise PolicyError(f"policy: http.proxy: the value {problem}; {_PROXY_WHAT}") from None
    if not isinstance(value, str):
        raise PolicyError(f"policy: http.proxy: must be a string; {_PROXY_WHAT}")
    raise PolicyError(f"policy: http.proxy: unknown value; {_PROXY_WHAT}")


def _argv_prefix(argv: object, key: str) -> tuple[str, ...]:
    if not isinstance(argv, list) or not argv:
        raise PolicyError(
            f'policy: {key}: must name at least the program, e.g. `["gcloud", "auth", "print-identity-token"]`'
        )
    for i, arg in enumerate(argv):
        if not isinstance(arg, str) or not arg or "\0" in arg:
            raise PolicyError(f"policy: {key}[{i}]: must be a non-empty argument without NUL")
    return tuple(argv)


def _seconds(value: object, default: float, key: str) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.001 <= value <= 3600):
        raise PolicyError(f"policy: {key}: must be a number of seconds from 0.001 to 3600, e.g. `30`")
    return float(value)


def _positive(value: object, default: int, key: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PolicyError(f"policy: {key}: must be a whole number of bytes")
    if value == 0:
        raise PolicyError(f"policy: {key}: must be above 0")
    return value


def _canonical_or_self(path: Path) -> Path:
    try:
        return Path(os.path.realpath(path, strict=True))
    except OSError:
        return path
