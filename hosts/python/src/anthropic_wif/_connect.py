"""Opening the connection of one request: directly, through a CONNECT tunnel (`http://` or `https://`
proxy) or a SOCKS5 proxy, TLS as `_tls` says, all within one `Deadline`."""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Union

from . import _socks
from ._deadline import Deadline, Failure
from ._proxy import ProxyUrl
from ._tls import explain_tls
from ._tls_in_tls import TlsInTls

MAX_CONNECT_HEAD = 64 * 1024
"""The longest answer to CONNECT read."""


Stream = Union[socket.socket, TlsInTls]
"""A connection http.client can use."""


def open_direct(scheme: str, host: str, port: int, origin: str, context: ssl.SSLContext | None, deadline: Deadline) -> Stream:
    """A connection to `host:port`, TLS for `https` (`context` is then required)."""
    sock = _tcp(host, port, deadline, None, origin)
    if scheme != "https":
        return sock
    assert context is not None
    return _tls(context, sock, host, deadline, None)


def open_tunnel(
    scheme: str, host: str, port: int, origin: str, proxy: ProxyUrl, context: ssl.SSLContext | None, deadline: Deadline
) -> Stream:
    """A connection to `host:port` through a CONNECT tunnel of `proxy` (`http://` or `https://`)."""
    sock = _tcp(proxy.host, proxy.port, deadline, proxy, origin)
    stream: Stream = sock
    if proxy.scheme == "https":
        assert context is not None
        stream = _tls(context, sock, proxy.host, deadline, proxy)
    _connect(stream, host, port, origin, proxy, deadline)
    if scheme != "https":
        return stream
    assert context is not None
    if isinstance(stream, ssl.SSLSocket):
        return TlsInTls(stream, context, host.strip("[]"), deadline)
    return _tls(context, sock, host, deadline, None)


def open_socks(
    scheme: str, host: str, port: int, origin: str, proxy: ProxyUrl, context: ssl.SSLContext | None, deadline: Deadline
) -> Stream:
    """A connection to `host:port` through a SOCKS5 proxy (RFC 1928, with RFC 1929 credentials):
    `socks5h://` lets the proxy resolve the name, `socks5://` resolves it here."""
    destination = _socks.address(host, port, proxy, origin)
    sock = _tcp(proxy.host, proxy.port, deadline, proxy, origin)
    _socks.handshake(sock, destination, origin, proxy, deadline)
    if scheme != "https":
        return sock
    assert context is not None
    return _tls(context, sock, host, deadline, None)


def _tcp(host: str, port: int, deadline: Deadline, proxy: ProxyUrl | None, origin: str) -> socket.socket:
    try:
        sock = socket.create_connection((host.strip("[]"), port), timeout=deadline.left())
    except socket.gaierror:
        if proxy is not None:
            raise Failure("failed", f"DNS: the proxy host {proxy.host} was not found (proxy {proxy})") from None
        raise Failure("failed", f"DNS: the host {host} was not found") from None
    except (TimeoutError, socket.timeout):
        raise deadline.failure() from None
    except OSError as e:
        kind = _CONNECT_ERRORS.get(e.errno or 0, "connection failed")
        if proxy is not None:
            raise Failure("failed", f"proxy {proxy} is unreachable ({kind})") from None
        raise Failure("failed", f"cannot connect to {origin} ({kind})") from None
    deadline.watch(sock)
    return sock


_CONNECT_ERRORS = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
    errno.ECONNRESET: "connection reset",
}


def _tls(context: ssl.SSLContext, sock: socket.socket, host: str, deadline: Deadline, proxy: ProxyUrl | None) -> ssl.SSLSocket:
    name = host.strip("[]")
    try:
        wrapped = context.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)
        deadline.watch(wrapped)
        wrapped.do_handshake()
    except ssl.SSLError as e:
        if deadline.expired:
            raise deadline.failure() from None
        words = explain_tls(e, name)
        raise Failure("failed", f"proxy {proxy}: {words}" if proxy is not None else words) from None
    return wrapped


def _connect(stream: Stream, host: str, port: int, origin: str, proxy: ProxyUrl, deadline: Deadline) -> None:
    """Asks `proxy` for a tunnel to `host:port` and reads its answer, byte by byte (nothing past its head)."""
    target = f"{host}:{port}"
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
    credentials = proxy.basic_credentials()
    if credentials is not None:
        head += f"Proxy-Authorization: Basic {credentials}\r\n"
    stream.sendall((head + "\r\n").encode("ascii"))
    answer = bytearray()
    while not answer.endswith(b"\r\n\r\n"):
        byte = stream.recv(1)
        if not byte or len(answer) > MAX_CONNECT_HEAD:
            if deadline.expired:
                raise deadline.failure()
            raise Failure("failed", f"proxy {proxy} did not open a tunnel to {origin} (no valid answer to CONNECT)")
        answer += byte
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
        raise Failure("failed", f"proxy {proxy} did not open a tunnel to {origin} (no valid answer to CONNECT)")
    status = int(status_line[1])
    if not 200 <= status < 300:
        raise Failure("failed", explain_connect_refusal(status, proxy, origin))


def explain_connect_refusal(status: int, proxy: ProxyUrl, origin: str) -> str:
    """A proxy's refusal of CONNECT, in the Rust host's words."""
    if status == 407 and proxy.has_credentials():
        return (
            f"proxy {proxy} refused the tunnel to {origin}: 407 Proxy Authentication Required "
            "(its credentials were not accepted)"
        )
    if status == 407:
        return (
            f"proxy {proxy} refused the tunnel to {origin}: 407 Proxy Authentication Required; "
            "put credentials in the proxy URL, e.g. http://user:password@host:port"
        )
    if status == 403:
        return (
            f"proxy {proxy} refused the tunnel to {origin}: 403 Forbidden "
            "(the proxy's rules do not allow this destination)"
        )
    return f"proxy {proxy} refused the tunnel to {origin} with status {status}"
