"""The SOCKS5 handshake of a proxied request (RFC 1928 `CONNECT`, RFC 1929 credentials)."""

from __future__ import annotations

import ipaddress
import socket

from ._deadline import Deadline, Failure
from ._proxy import ProxyUrl


def address(host: str, port: int, proxy: ProxyUrl, origin: str) -> bytes:
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


_REPLIES = {
    1: "general failure",
    2: "connection not allowed by its rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


def handshake(sock: socket.socket, destination: bytes, origin: str, proxy: ProxyUrl, deadline: Deadline) -> None:
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
        meaning = _REPLIES.get(reply, f"reply {reply}")
        raise Failure("failed", f"proxy {proxy} refused the tunnel to {origin}: {meaning} (SOCKS5)")
    read({1: 4, 4: 16}.get(kind, 0) or read(1)[0])
    read(2)
