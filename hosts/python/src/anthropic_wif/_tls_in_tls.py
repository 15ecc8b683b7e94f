"""TLS to the destination inside the TLS connection to an `https://` proxy, over `ssl.MemoryBIO`
(a TLS socket cannot be wrapped in TLS again)."""

from __future__ import annotations

import io
import ssl
from typing import Callable

from ._deadline import Deadline, Failure
from ._tls import explain_tls


class TlsInTls:
    """TLS to the destination inside the TLS connection to an `https://` proxy (the socket calls http.client makes)."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str, deadline: Deadline) -> None:
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
