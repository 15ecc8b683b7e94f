"""Which certificates the host trusts, and the words for a TLS failure (as the Rust host's `net/tls.rs` and `net/errors.rs`).

Trust is the platform's as Python's `ssl` module reads it: OpenSSL's default
paths, where `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, replace the system
bundle (on Windows, the system store as well), plus the policy's
`[http] ca_files`. TLS 1.2 is the minimum.
"""

from __future__ import annotations

import re
import ssl
import threading
from pathlib import Path

MAX_CA_FILE_BYTES = 16 * 1024 * 1024
"""The largest CA file read."""
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s*[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def load_ca_file(path: Path) -> str:
    """The PEM certificates of a CA file; the error (ValueError) says what is wrong, never the contents."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CA_FILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
    if len(data) > MAX_CA_FILE_BYTES:
        raise ValueError(f"cannot read {path}: it is larger than {MAX_CA_FILE_BYTES} bytes")
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise ValueError(f"{path} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")
    pem = b"\n".join(blocks).decode("ascii")
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as e:
        raise ValueError(f"{path} is not a valid PEM file ({getattr(e, 'reason', None) or 'bad certificate'})") from None
    return pem


class LazyContext:
    """The TLS client context, built on first use (loading the system roots costs time) and then shared."""

    def __init__(self, ca_files: tuple[Path, ...]) -> None:
        self._ca_files = ca_files
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None

    def get(self) -> ssl.SSLContext:
        """The context: platform roots plus the CA files. Raises ValueError when a CA file went bad."""
        with self._lock:
            if self._context is None:
                context = ssl.create_default_context()
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                for path in self._ca_files:
                    context.load_verify_locations(cadata=load_ca_file(path))
                self._context = context
            return self._context


_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}
"""OpenSSL verify codes that mean "no trusted CA signed this": unable to get the issuer (locally),
self-signed leaf or chain, unable to verify the leaf's signature."""
_NAME_MISMATCH = {62, 64}
_EXPIRED = 10
_NOT_YET_VALID = 9
_REVOKED = 23


def explain_tls(error: ssl.SSLError, host: str) -> str:
    """A certificate or handshake failure with `host`, in the Rust host's words."""
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNKNOWN_ISSUER:
            return (
                f"TLS: the certificate of {host} is signed by an unknown certificate authority (unknown issuer). "
                "On a network with a TLS-inspecting proxy (the usual cause) trust that proxy's CA: "
                "set SSL_CERT_FILE to a PEM bundle that includes it, or add it to the policy's [http] ca_files"
            )
        if code in _NAME_MISMATCH:
            return f"TLS: the certificate presented by {host} is not valid for the name {host} (name mismatch)"
        if code == _EXPIRED:
            return f"TLS: the certificate of {host} has expired (or this machine's clock is wrong)"
        if code == _NOT_YET_VALID:
            return f"TLS: the certificate of {host} is not valid yet (or this machine's clock is wrong)"
        if code == _REVOKED:
            return f"TLS: the certificate of {host} is revoked"
        return f"TLS: the certificate of {host} was rejected ({error.verify_message})"
    return f"TLS handshake with {host} failed: {error.reason or type(error).__name__}"
