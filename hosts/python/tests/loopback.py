"""Loopback HTTP servers for the tests: a token endpoint, an identity server and a Messages API stand-in.

They answer as the real ones do, on 127.0.0.1 only, each on its own thread.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

SLOW_SECS = 3
"""How long /slow of the identity server waits before answering."""
ONE_MIB = 1024 * 1024


@dataclass
class Recorded:
    """One request a server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a refused certificate, a timeout) is not the test's failure


@dataclass
class Loopback:
    """A server on 127.0.0.1 that records requests and answers with `answer(recorded)`; HTTPS with `tls`."""

    answer: Callable[[Recorded], tuple[int, dict[str, str], bytes]]
    requests: list[Recorded] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                if loopback.tls is not None:
                    self.request.settimeout(5)
                    self.request = loopback.tls.wrap_socket(self.request, server_side=True)
                super().setup()

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                recorded = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                loopback.requests.append(recorded)
                status, headers, body = loopback.answer(recorded)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


class TokenEndpoint(Loopback):
    """`POST /v1/oauth/token` as the real endpoint answers it; `behaviour` decides the next answers."""

    def __init__(self) -> None:
        self.behaviour: dict[str, Any] = {"status": 200, "expires_in": 600}
        self.exchanges = 0
        self._lock = threading.Lock()
        self._assertion: str | None = None
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method != "POST" or request.path != "/v1/oauth/token":
            return json_reply(404, {"error": "not_found"})
        with self._lock:
            self.exchanges += 1
            try:
                self._assertion = request.json().get("assertion")
            except ValueError:
                self._assertion = None
        problem = _exchange_problem(request)
        if problem is not None:
            return json_reply(400, {"error": "invalid_request", "error_description": problem})
        if self.behaviour["status"] != 200:
            return json_reply(self.behaviour["status"], self.behaviour.get("body", {}), {"request-id": "req_scenario"})
        return json_reply(
            200,
            {
                "access_token": f"sk-ant-oat01-scenario-{self.exchanges}",
                "expires_in": self.behaviour["expires_in"],
                "token_type": "Bearer",
            },
        )

    @property
    def last_assertion(self) -> str | None:
        """The assertion of the last exchange, plain or through the TLS front."""
        return self._assertion


def _exchange_problem(request: Recorded) -> str | None:
    """What the exchange does differently from the official SDKs, if anything."""
    if request.headers.get("content-type") != "application/json":
        return "content-type must be application/json"
    if request.headers.get("anthropic-beta") != "oauth-2025-04-20,oidc-federation-2026-04-01":
        return "anthropic-beta must be oauth-2025-04-20,oidc-federation-2026-04-01"
    for forbidden in ("anthropic-version", "x-api-key", "authorization"):
        if forbidden in request.headers:
            return f"the exchange must not send {forbidden}"
    try:
        body = request.json()
    except ValueError:
        return "the body is not JSON"
    if body.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer"
    for name in ("assertion", "federation_rule_id", "organization_id"):
        if not body.get(name):
            return f"{name} is missing"
    return None


class IdentityServer(Loopback):
    """An identity-token URL with the paths the scenario table names."""

    def __init__(self) -> None:
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        path = request.path.split("?")[0]
        if path == "/json":
            return json_reply(200, {"value": "id-token-from-url"})
        if path == "/plain":
            return 200, {"content-type": "text/plain"}, b"id-token-from-url\n"
        if path == "/header":
            return json_reply(200, {"value": request.headers.get("x-scenario", "")})
        if path == "/redirect":
            return 302, {"location": "/plain"}, b""
        if path == "/oversized":
            return 200, {"content-type": "text/plain"}, b"x" * (ONE_MIB + 1)
        if path == "/slow":
            time.sleep(SLOW_SECS)
            return 200, {"content-type": "text/plain"}, b"id-token-from-url"
        return json_reply(404, {"error": "not_found"})


def tls_front(endpoint: TokenEndpoint, context: ssl.SSLContext) -> Loopback:
    """The same token endpoint (same behaviour, same count) behind TLS with `context`."""
    return Loopback(endpoint._answer, tls=context)


DRIP_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 17\r\nconnection: close\r\n\r\n"
"""The head the drip server writes one byte at a time, every `DRIP_EVERY` seconds."""
DRIP_EVERY = 0.1


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _read_head(sock: socket.socket) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n") and len(head) < 65536:
        byte = sock.recv(1)
        if not byte:
            break
        head += byte
    return head


class _TcpLoopback:
    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(10)
                handle(self.request)

        self._server = _TcpServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class DripServer(_TcpLoopback):
    """Answers any request with `DRIP_HEAD` one byte at a time, then the body `id-token-from-url`."""

    def __init__(self) -> None:
        super().__init__(self._drip)

    @staticmethod
    def _drip(sock: socket.socket) -> None:
        _read_head(sock)
        try:
            for byte in DRIP_HEAD:
                sock.sendall(bytes([byte]))
                time.sleep(DRIP_EVERY)
            sock.sendall(b"id-token-from-url")
        except OSError:
            pass

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ConnectProxy(_TcpLoopback):
    """A CONNECT proxy requiring Basic `credentials` (407 otherwise) that tunnels to the names in `hosts`
    (502 for others) and counts every CONNECT it receives."""

    def __init__(self, hosts: dict[str, str], credentials: str) -> None:
        self.hosts, self.credentials = hosts, credentials
        self.connects = 0
        self._lock = threading.Lock()
        super().__init__(self._serve)

    def _serve(self, client: socket.socket) -> None:
        head = _read_head(client).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split()
        if len(parts) < 2:
            return
        with self._lock:
            self.connects += 1
        expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
        given = next((l.split(":", 1)[1].strip() for l in lines[1:] if l.lower().startswith("proxy-authorization:")), None)
        if given != expected:
            client.sendall(b'HTTP/1.1 407 Refused\r\nproxy-authenticate: Basic realm="test"\r\ncontent-length: 0\r\n\r\n')
            return
        host, _, port = parts[1].rpartition(":")
        if parts[0] != "CONNECT" or host not in self.hosts or not port.isdigit():
            client.sendall(b"HTTP/1.1 502 Refused\r\ncontent-length: 0\r\n\r\n")
            return
        try:
            upstream = socket.create_connection((self.hosts[host], int(port)), timeout=10)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Refused\r\ncontent-length: 0\r\n\r\n")
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with upstream:
            forward = threading.Thread(target=_pipe, args=(client, upstream), daemon=True)
            forward.start()
            _pipe(upstream, client)
            forward.join(10)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TlsFront(_TcpLoopback):
    """TLS on 127.0.0.1 in front of a plain server at `backend` (what an `https://` proxy URL needs)."""

    def __init__(self, context: ssl.SSLContext, backend: int) -> None:
        self.handshakes = 0
        self._context, self._backend = context, backend
        super().__init__(self._serve)

    def _serve(self, client: socket.socket) -> None:
        tls = self._context.wrap_socket(client, server_side=True)
        self.handshakes += 1
        with tls, socket.create_connection(("127.0.0.1", self._backend), timeout=10) as upstream:
            tls.settimeout(0.005)
            upstream.settimeout(0.005)
            while True:
                moved = False
                for source, sink in ((tls, upstream), (upstream, tls)):
                    try:
                        data = source.recv(65536)
                    except (TimeoutError, ssl.SSLWantReadError):
                        continue
                    if not data:
                        return
                    sink.sendall(data)
                    moved = True
                if not moved:
                    time.sleep(0.001)


class SocksProxy(_TcpLoopback):
    """A SOCKS5 proxy (RFC 1928 CONNECT; RFC 1929 credentials when `credentials` is set) that resolves
    the names in `hosts` itself and records each destination as asked (`name:port` or `ip:port`)."""

    def __init__(self, hosts: dict[str, str], credentials: tuple[str, str] | None) -> None:
        self.hosts, self.credentials = hosts, credentials
        self.seen: list[tuple[str, tuple[str, str] | None]] = []
        super().__init__(self._serve)

    def _serve(self, client: socket.socket) -> None:
        def read(count: int) -> bytes:
            data = b""
            while len(data) < count:
                chunk = client.recv(count - len(data))
                if not chunk:
                    raise ConnectionError("closed")
                data += chunk
            return data

        _, count = read(2)
        methods = read(count)
        method = 2 if self.credentials else 0
        if method not in methods:
            client.sendall(b"\x05\xff")
            return
        client.sendall(bytes([5, method]))
        given = None
        if self.credentials:
            read(1)
            user = read(read(1)[0]).decode()
            password = read(read(1)[0]).decode()
            given = (user, password)
            if given != self.credentials:
                client.sendall(b"\x01\x01")
                return
            client.sendall(b"\x01\x00")
        _, command, _, kind = read(4)
        if kind == 3:
            host = read(read(1)[0]).decode()
        else:
            host = str(ipaddress.ip_address(read(4 if kind == 1 else 16)))
        port = int.from_bytes(read(2), "big")
        self.seen.append((f"{host}:{port}", given))
        address = self.hosts.get(host, host)
        try:
            upstream = socket.create_connection((address, port), timeout=10)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))
            return
        client.sendall(b"\x05\x00\x00\x01" + bytes(6))
        with upstream:
            forward = threading.Thread(target=_pipe, args=(client, upstream), daemon=True)
            forward.start()
            _pipe(upstream, client)
            forward.join(10)
