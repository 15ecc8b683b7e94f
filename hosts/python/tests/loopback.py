"""Loopback HTTP servers for the tests: a token endpoint, an identity server and a Messages API stand-in.

They answer as the real ones do, on 127.0.0.1 only, each on its own thread.
"""

from __future__ import annotations

import json
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


@dataclass
class Loopback:
    """A server on 127.0.0.1 that records requests and answers with `answer(recorded)`."""

    answer: Callable[[Recorded], tuple[int, dict[str, str], bytes]]
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        loopback = self

        class Handler(BaseHTTPRequestHandler):
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
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method != "POST" or request.path != "/v1/oauth/token":
            return json_reply(404, {"error": "not_found"})
        self.exchanges += 1
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
        posts = [r for r in self.requests if r.method == "POST"]
        return posts[-1].json()["assertion"] if posts else None


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
