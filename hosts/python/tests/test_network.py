"""The network beyond the scenario table: an `https://` proxy, SOCKS5 proxies, transport headers refused,
stderr redaction, certificate errors each in its words."""

from __future__ import annotations

import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest
import trustme

from anthropic_wif import ExchangeFailed, Policy, Provider
from anthropic_wif._command import redact_values
from anthropic_wif._http import HttpClient, fetch
from anthropic_wif._proxy import ProxyEnv
from conftest import auth_config
from loopback import ConnectProxy, Loopback, SocksProxy, TlsFront, TokenEndpoint, closed_port, tls_front

PROXIED = "token.network.test"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture
def tls_endpoint(token_endpoint: TokenEndpoint, ca: trustme.CA) -> Iterator[Loopback]:
    server = tls_front(token_endpoint, _server_context(ca, "127.0.0.1", PROXIED))
    yield server
    server.close()


def _provider(tmp_path: Path, origin: str, http_extra: str) -> tuple[Provider, dict[str, object]]:
    (tmp_path / "token").write_text("id-token")
    policy = Policy.from_toml(
        f'[files]\nallow = ["{tmp_path}/token"]\n[http]\nallow_origins = ["{origin}"]\n{http_extra}\n'
    )
    return Provider(policy), auth_config(origin, {"file": f"{tmp_path}/token"})


def test_an_https_proxy_is_reached_over_tls_and_tunnels_with_credentials(
    tmp_path: Path, ca: trustme.CA, tls_endpoint: Loopback, token_endpoint: TokenEndpoint
) -> None:
    proxy = ConnectProxy({PROXIED: "127.0.0.1"}, "svc:tls-proxy-pass")
    front = TlsFront(_server_context(ca, "127.0.0.1"), proxy.port)
    try:
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        origin = f"https://{PROXIED}:{tls_endpoint.port}"
        line = f'proxy = "https://svc:tls-proxy-pass@127.0.0.1:{front.port}"'
        provider, config = _provider(tmp_path, origin, line)
        with pytest.raises(ExchangeFailed) as raised:
            provider.get_token(config)
        assert f"proxy https://127.0.0.1:{front.port}: TLS: the certificate of 127.0.0.1 is signed by an unknown" in str(
            raised.value
        )
        assert "tls-proxy-pass" not in str(raised.value)
        assert (front.handshakes, proxy.connects) == (0, 0)

        provider, config = _provider(tmp_path, origin, f'{line}\nca_files = ["{ca_file}"]')
        assert provider.get_token(config).token == "sk-ant-oat01-scenario-1"
        assert (front.handshakes, proxy.connects, token_endpoint.exchanges) == (1, 1, 1)
    finally:
        front.close()
        proxy.close()


def test_a_pinned_socks5h_proxy_with_credentials_carries_the_request_by_name(
    tmp_path: Path, ca: trustme.CA, tls_endpoint: Loopback, token_endpoint: TokenEndpoint
) -> None:
    proxy = SocksProxy({PROXIED: "127.0.0.1"}, ("svc", "s0cks-pass"))
    try:
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        origin = f"https://{PROXIED}:{tls_endpoint.port}"
        line = f'ca_files = ["{ca_file}"]\nproxy = "socks5h://svc:s0cks-pass@127.0.0.1:{proxy.port}"'
        provider, config = _provider(tmp_path, origin, line)
        assert provider.get_token(config).token == "sk-ant-oat01-scenario-1"
        assert proxy.seen == [(f"{PROXIED}:{tls_endpoint.port}", ("svc", "s0cks-pass"))]

        wrong = line.replace("s0cks-pass@", "wrong-pass@")
        provider, config = _provider(tmp_path, origin, wrong)
        with pytest.raises(ExchangeFailed, match="credentials were not accepted \\(SOCKS5\\)") as raised:
            provider.get_token(config)
        assert "wrong-pass" not in str(raised.value)
        assert token_endpoint.exchanges == 1
    finally:
        proxy.close()


def test_all_proxy_names_a_socks5h_proxy_without_authentication(
    tmp_path: Path, ca: trustme.CA, tls_endpoint: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = SocksProxy({PROXIED: "127.0.0.1"}, None)
    try:
        for name in ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("ALL_PROXY", f"socks5h://127.0.0.1:{proxy.port}")
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        origin = f"https://{PROXIED}:{tls_endpoint.port}"
        provider, config = _provider(tmp_path, origin, f'ca_files = ["{ca_file}"]')
        assert provider.get_token(config).token == "sk-ant-oat01-scenario-1"
        assert proxy.seen == [(f"{PROXIED}:{tls_endpoint.port}", None)]
    finally:
        proxy.close()


def test_a_socks5_proxy_that_is_down_is_named(tmp_path: Path) -> None:
    port = closed_port()
    provider, config = _provider(tmp_path, "https://api.example.com", f'proxy = "socks5h://u:pw@127.0.0.1:{port}"')
    with pytest.raises(ExchangeFailed, match=f"proxy socks5h://127.0.0.1:{port} is unreachable") as raised:
        provider.get_token(config)
    assert "u:pw" not in str(raised.value)


def test_a_name_mismatch_is_named(tmp_path: Path, ca: trustme.CA, token_endpoint: TokenEndpoint) -> None:
    server = tls_front(token_endpoint, _server_context(ca, "elsewhere.test"))
    try:
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        provider, config = _provider(tmp_path, server.origin, f'ca_files = ["{ca_file}"]')
        with pytest.raises(ExchangeFailed, match="not valid for the name 127.0.0.1 \\(name mismatch\\)"):
            provider.get_token(config)
        assert token_endpoint.exchanges == 0
    finally:
        server.close()


def _request(url: str, headers: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(
        method="GET", url=url, headers=[SimpleNamespace(name=k, value=v) for k, v in headers.items()], body=b""
    )


@pytest.mark.parametrize(
    "name", ["Host", "content-length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "Trailer", "Expect", "Keep-Alive", "Proxy-Authorization", "proxy-anything"]
)
def test_transport_headers_are_refused_before_any_connection(name: str, token_endpoint: TokenEndpoint) -> None:
    policy = Policy.from_toml(f'[http]\nallow_origins = ["{token_endpoint.origin}"]\n')
    answer = fetch(policy, HttpClient(policy, ProxyEnv.of({})), _request(f"{token_endpoint.origin}/x", {name: "v"}))
    assert getattr(answer, "value").tag == "denied"
    assert "is set by the HTTP client" in getattr(answer, "value").payload
    assert token_endpoint.requests == []


def test_bad_header_names_and_values_are_refused(token_endpoint: TokenEndpoint) -> None:
    policy = Policy.from_toml(f'[http]\nallow_origins = ["{token_endpoint.origin}"]\n')
    client = HttpClient(policy, ProxyEnv.of({}))
    for headers in ({"bad name": "v"}, {"x-ok": "line\r\nbreak"}):
        answer = fetch(policy, client, _request(f"{token_endpoint.origin}/x", headers))
        assert getattr(answer, "value").tag == "failed", headers
    assert token_endpoint.requests == []


def test_redaction_replaces_every_value_longest_first() -> None:
    values = [b"hunter2-secret", b"hunter2", b"1", b""]
    assert (
        redact_values(b"+ curl -u me:hunter2-secret x; retry hunter2 1 time", values)
        == b"+ curl -u me:[redacted] x; retry [redacted] 1 time"
    )
    assert redact_values(b"nothing", []) == b"nothing"
    assert redact_values(b"\xff\xfeabcd\xff", [b"abcd"]) == b"\xff\xfe[redacted]\xff"
