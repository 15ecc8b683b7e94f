"""One deadline for a whole exchange, enforced on the socket itself.

A per-operation socket timeout does not bound a peer that drips bytes: each
read returns in time and the exchange never ends. `Deadline` shuts the socket
down at the deadline, whatever the request is waiting for (the connection,
the TLS handshake, the proxy's answer, the response head or the body).
"""

from __future__ import annotations

import socket
import threading
import time


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
