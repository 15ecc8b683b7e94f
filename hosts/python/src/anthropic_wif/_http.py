"""`http-fetch`: granted origins only, no redirects, no proxy, a body cap and a timeout."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from wasmtime.component import Record

from ._lowering import Err
from ._names import cap_error, printable, record
from ._policy import Origin, Policy

_CHUNK = 64 * 1024


def fetch(policy: Policy, tls: ssl.SSLContext, request: Any) -> Record | Err:
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
    if request.method not in ("GET", "POST", "PUT"):
        return cap_error("failed", f"method {printable(request.method)} is not supported")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    deadline = time.monotonic() + policy.http_timeout
    host = origin.host.strip("[]")
    if origin.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, origin.port, timeout=policy.http_timeout, context=tls
        )
    else:
        conn = http.client.HTTPConnection(host, origin.port, timeout=policy.http_timeout)
    try:
        conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        names = {h.name.lower() for h in request.headers}
        if "host" not in names:
            default = 443 if origin.scheme == "https" else 80
            conn.putheader("Host", origin.host if origin.port == default else f"{origin.host}:{origin.port}")
        for header in request.headers:
            conn.putheader(header.name, header.value)
        body = bytes(request.body)
        if request.method in ("POST", "PUT") or body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        _remaining(conn, deadline)
        response = conn.getresponse()
        data = bytearray()
        while len(data) <= policy.max_body_bytes:
            _remaining(conn, deadline)
            chunk = response.read1(min(_CHUNK, policy.max_body_bytes + 1 - len(data)))
            if not chunk:
                break
            data += chunk
        if len(data) > policy.max_body_bytes:
            return cap_error("too-large", f"the response body exceeds {policy.max_body_bytes} bytes")
        return record(
            status=response.status,
            headers=[record(name=k, value=v) for k, v in response.getheaders()],
            body=bytes(data),
        )
    except (TimeoutError, socket.timeout):
        return cap_error("timeout", f"no complete answer within {policy.http_timeout:g} s")
    except ssl.SSLError as e:
        return cap_error("failed", f"TLS error: {e.reason or type(e).__name__}")
    except ConnectionRefusedError:
        return cap_error("failed", "connection failed")
    except socket.gaierror:
        return cap_error("failed", "host not found")
    except http.client.HTTPException:
        return cap_error("failed", "the server broke the HTTP protocol")
    except ValueError:
        return cap_error("failed", "the request is not valid HTTP")
    except OSError as e:
        return cap_error("failed", f"I/O error: {type(e).__name__}")
    finally:
        conn.close()


def _remaining(conn: http.client.HTTPConnection, deadline: float) -> None:
    """Bounds the next socket operation by what is left of the whole request's time."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if conn.sock is not None:
        conn.sock.settimeout(left)
