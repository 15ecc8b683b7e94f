"""`http-fetch`: granted origins only, transport headers refused, the policy's proxy (CONNECT or SOCKS5) and CAs, no redirects,
a body cap and one deadline for the whole exchange."""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import urlsplit

from wasmtime.component import Record

from . import _connect
from ._deadline import Deadline, Failure
from ._lowering import Err
from ._names import cap_error, printable, record
from ._policy import Origin, Policy
from ._proxy import Direct, ProxyEnv, Route, RouteError, ViaProxy, select
from ._tls import LazyContext, explain_tls

_CHUNK = 64 * 1024
HOP_BY_HOP = (
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
)
"""Headers of one connection (RFC 9110 §7.6.1, and older clients' `Keep-Alive` and `Proxy-Connection`). Lower case."""
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


def is_set_by_client(name: str) -> bool:
    """Whether the header `name` (lower case) is the HTTP client's own: hop-by-hop, `Host`,
    `Content-Length`, `Expect` or any `Proxy-*` (as the Rust host's `net/headers.rs`)."""
    return name in HOP_BY_HOP or name in ("host", "content-length", "expect") or name.startswith("proxy-")


class HttpClient:
    """The network of one policy: its proxy setting with this process's proxy variables (read once), its CAs."""

    def __init__(self, policy: Policy, env: ProxyEnv | None = None) -> None:
        self.policy = policy
        self.env = env if env is not None else ProxyEnv.from_process()
        self.tls = LazyContext(policy.ca_files)

    def route(self, origin: Origin) -> Route:
        """How a request to `origin` goes (raises RouteError for a bad proxy variable)."""
        return select(self.policy.proxy, self.env, origin.scheme, origin.host, origin.port)


def fetch(policy: Policy, client: HttpClient, request: Any) -> Record | Err:
    """Sends a request to a granted origin and reads the whole response, whatever its status."""
    url: str = request.url
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return cap_error("failed", "the URL is not valid")
    if parts.username is not None or parts.password is not None:
        return cap_error("denied", "URLs with user information are never fetched")
    origin = Origin.of(url)
    if origin is None:
        return cap_error("denied", "only http and https URLs are fetched")
    if not policy.allows_origin(origin):
        return cap_error("denied", f"origin {origin} is not granted")
    refused = _check_headers(request.headers)
    if refused is not None:
        return refused
    if request.method not in ("GET", "POST", "PUT"):
        return cap_error("failed", f"method {printable(request.method)} is not supported")
    try:
        route = client.route(origin)
    except RouteError as e:
        return cap_error("failed", str(e))
    try:
        return _exchange(policy, client, request, parts.path or "/", parts.query, origin, route)
    except Failure as f:
        return cap_error(f.kind, f.message)


def _exchange(
    policy: Policy, client: HttpClient, request: Any, path: str, query: str, origin: Origin, route: Route
) -> Record | Err:
    target = path + ("?" + query if query else "")
    deadline = Deadline(policy.http_timeout)
    conn = http.client.HTTPConnection(origin.host.strip("[]"), origin.port)
    try:
        context: ssl.SSLContext | None = None
        if origin.scheme == "https" or (isinstance(route, ViaProxy) and route.proxy.scheme == "https"):
            try:
                context = client.tls.get()
            except ValueError as e:
                return cap_error("failed", f"TLS setup failed: {e}")
        if isinstance(route, Direct):
            stream = _connect.open_direct(origin.scheme, origin.host, origin.port, str(origin), context, deadline)
        elif route.proxy.scheme.startswith("socks"):
            stream = _connect.open_socks(
                origin.scheme, origin.host, origin.port, str(origin), route.proxy, context, deadline
            )
        else:
            stream = _connect.open_tunnel(
                origin.scheme, origin.host, origin.port, str(origin), route.proxy, context, deadline
            )
        conn.sock = stream
        conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        default = 443 if origin.scheme == "https" else 80
        conn.putheader("Host", origin.host if origin.port == default else f"{origin.host}:{origin.port}")
        for header in request.headers:
            conn.putheader(header.name, header.value)
        body = bytes(request.body)
        if request.method in ("POST", "PUT") or body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        stream.settimeout(deadline.left())
        response = conn.getresponse()
        data = bytearray()
        while len(data) <= policy.max_body_bytes:
            stream.settimeout(deadline.left())
            chunk = response.read1(min(_CHUNK, policy.max_body_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if deadline.expired:
            raise deadline.failure()
        if len(data) > policy.max_body_bytes:
            return cap_error("too-large", f"the response body exceeds {policy.max_body_bytes} bytes")
        return record(
            status=response.status,
            headers=[record(name=k, value=v) for k, v in response.getheaders()],
            body=bytes(data),
        )
    except Failure:
        raise
    except Exception as e:
        if deadline.expired or isinstance(e, TimeoutError):
            raise deadline.failure() from None
        raise _explain(e, origin) from None
    finally:
        deadline.cancel()
        conn.close()


def _explain(error: Exception, origin: Origin) -> Failure:
    if isinstance(error, ssl.SSLError):
        return Failure("failed", explain_tls(error, origin.host.strip("[]")))
    if isinstance(error, http.client.HTTPException):
        return Failure("failed", "the server broke the HTTP protocol")
    if isinstance(error, ValueError):
        return Failure("failed", "the request is not valid HTTP")
    if isinstance(error, OSError):
        return Failure("failed", f"I/O error: {type(error).__name__}")
    return Failure("failed", "the request failed")


def _check_headers(headers: Any) -> Err | None:
    """Refuses, before any connection, a header the client sets itself, a name that is not an
    RFC 7230 token and a value with a line break or NUL."""
    for header in headers:
        name = header.name.lower()
        if is_set_by_client(name):
            return cap_error(
                "denied",
                f"header {printable(header.name)} is set by the HTTP client and cannot be given by a component",
            )
        if not name or any(c not in _TOKEN_CHARS for c in name):
            return cap_error("failed", f"header name {printable(header.name)} is not a valid HTTP header name")
        if any(c in header.value for c in "\r\n\0"):
            return cap_error("failed", f"header {printable(header.name)} has a line break or NUL in its value")
    return None
