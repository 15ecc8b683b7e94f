"""Opening the connection of one request: directly or through a CONNECT tunnel, TLS as `_tls` says,
all within one deadline that a watchdog enforces on the socket itself.

A per-operation socket timeout does not bound a peer that drips bytes: each
read returns in time and the exchange never ends. `Deadline` shuts the
socket down at the deadline, whatever the request is waiting for (the
connection, the TLS handshake, the proxy's answer, the response head or the
body).
"""

from __future__ import annotations

import errno
import io
import ipaddress
import socket
import ssl
import threading
import time
from typing import Callable, Union

from ._proxy import ProxyUrl

MAX_CONNECT_HEAD = 64 * 1024
"""The longest answer to CONNECT read."""


class Failure(Exception):
    """A transport failure in words: `kind` is `failed` or `timeout` (the capability's error case)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind, self.message = kind, message
        super().__init__(message)


class Deadline:
    """One deadline for a whole exchange: at it, the watched socket is shut down."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """The time left; raises the timeout failure when there is none."""
        left = self._at - time.monotonic()
        if left <= 0 or self.expired:
            raise self.failure()
        return left

    def failure(self) -> Failure:
        """The timeout failure."""
        return Failure("timeout", f"no complete answer within {duration(self.seconds)}")

    def watch(self, sock: socket.socket) -> None:
        """Makes `sock` the socket shut down at the deadline, and bounds its next operation by the time left."""
        with self._lock:
            self._sock = sock
            if self.expired:
                _shutdown(sock)
        sock.settimeout(self.left())

    def cancel(self) -> None:
        """Stops the watchdog (the exchange is over)."""
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                _shutdown(self._sock)


def _shutdown(sock: socket.socket) -> None:
    # The plain socket's own shutdown, on the descriptor: a TLS socket's
    # would touch its TLS state from this thread.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def duration(seconds: float) -> str:
    """A duration as the Rust host prints one (`30s`, `1.5s`, `500ms`)."""
    if seconds >= 1:
        return f"{seconds:g}s"
    return f"{seconds * 1000:g}ms"


Stream = Union[socket.socket, "TlsInTls"]
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
    destination = _socks_address(host, port, proxy, origin)
    sock = _tcp(proxy.host, proxy.port, deadline, proxy, origin)
    _socks_handshake(sock, destination, origin, proxy, deadline)
    if scheme != "https":
        return sock
    assert context is not None
    return _tls(context, sock, host, deadline, None)


def _socks_address(host: str, port: int, proxy: ProxyUrl, origin: str) -> bytes:
    """DST.ADDR and DST.PORT of a SOCKS5 request."""
    name = host.strip("[]")
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        if proxy.scheme == "socks5h":
            encoded = name.encode("idna")
            return b"\x03" + bytes([len(encoded)]) + encoded + port.to_bytes(2, "big")
        try:
            ip = ipaddress.ip_address(socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)[0][4][0])
        except (socket.gaierror, ValueError):
            raise Failure("failed", f"DNS: the host {host} was not found (resolved here for proxy {proxy})") from None
    kind = b"\x01" if ip.version == 4 else b"\x04"
    return kind + ip.packed + port.to_bytes(2, "big")


_SOCKS_REPLIES = {
    1: "general failure",
    2: "connection not allowed by its rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def _socks_handshake(sock: socket.socket, destination: bytes, origin: str, proxy: ProxyUrl, deadline: Deadline) -> None:
    def read(count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                if deadline.expired:
                    raise deadline.failure()
                raise Failure("failed", f"proxy {proxy} closed the connection during the SOCKS5 handshake")
            data += chunk
        return data

    credentials = proxy.credentials()
    sock.sendall(b"\x05\x02\x00\x02" if credentials is not None else b"\x05\x01\x00")
    version, method = read(2)
    if version != 5:
        raise Failure("failed", f"proxy {proxy} is not a SOCKS5 proxy (it answered version {version})")
    if method == 2 and credentials is not None:
        user, password = (part.encode("utf-8") for part in credentials)
        if len(user) > 255 or len(password) > 255:
            raise Failure("failed", f"proxy {proxy}: SOCKS5 credentials are limited to 255 bytes each")
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
        if read(2)[1] != 0:
            raise Failure("failed", f"proxy {proxy} refused the tunnel to {origin}: its credentials were not accepted (SOCKS5)")
    elif method == 0xFF:
        raise Failure(
            "failed",
            f"proxy {proxy} refused the tunnel to {origin}: it accepts none of the offered SOCKS5 methods"
            + ("" if credentials is not None else "; put credentials in the proxy URL, e.g. socks5h://user:password@host:port"),
        )
    elif method != 0:
        raise Failure("failed", f"proxy {proxy} chose SOCKS5 method {method}, which was not offered")
    sock.sendall(b"\x05\x01\x00" + destination)
    _, reply, _, kind = read(4)
    if reply != 0:
        meaning = _SOCKS_REPLIES.get(reply, f"reply {reply}")
        raise Failure("failed", f"proxy {proxy} refused the tunnel to {origin}: {meaning} (SOCKS5)")
    read({1: 4, 4: 16}.get(kind, 0) or read(1)[0])
    read(2)


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
    from ._tls import explain_tls

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


class TlsInTls:
    """TLS to the destination inside the TLS connection to an `https://` proxy (the socket calls http.client makes)."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str, deadline: Deadline) -> None:
        from ._tls import explain_tls

        self._outer = outer
        self._readers = 0
        self._closed = False
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        try:
            self._run(self._tls.do_handshake)
        except ssl.SSLError as e:
            if deadline.expired:
                raise deadline.failure() from None
            raise Failure("failed", explain_tls(e, server_hostname)) from None

    def _run(self, operation: Callable[..., object], *args: object) -> object:
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._flush()
                data = self._outer.recv(64 * 1024)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self._outer.sendall(data)

    def sendall(self, data: bytes) -> None:
        """Sends all of `data`."""
        view = memoryview(data)
        while view:
            written = self._run(self._tls.write, view)
            assert isinstance(written, int)
            view = view[written:]

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes; empty at the end."""
        try:
            data = self._run(self._tls.read, size)
        except ssl.SSLZeroReturnError:
            return b""
        assert isinstance(data, bytes)
        return data

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        """A buffered reader, as http.client reads a response; like a socket's, it keeps the
        connection open until it is closed too."""
        self._readers += 1
        return io.BufferedReader(_Reader(self))

    def settimeout(self, seconds: float | None) -> None:
        """Bounds the next operation on the connection to the proxy."""
        self._outer.settimeout(seconds)

    def close(self) -> None:
        """Closes the connection to the proxy once no reader is open."""
        self._closed = True
        if self._readers == 0:
            self._outer.close()

    def reader_closed(self) -> None:
        """One reader is closed (the connection closes with the last one, once `close` was called)."""
        self._readers -= 1
        if self._closed and self._readers == 0:
            self._outer.close()


class _Reader(io.RawIOBase):
    def __init__(self, stream: TlsInTls) -> None:
        self._stream = stream

    def close(self) -> None:
        if not self.closed:
            self._stream.reader_closed()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.recv(len(buffer))
        buffer[: len(data)] = data
        return len(data)
