"""Proxy selection as curl does it: the cases of the Rust host's `net/proxy/tests.rs`, ported."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest

from anthropic_wif import Policy, PolicyError
from anthropic_wif._proxy import (
    Direct,
    ProxyEnv,
    ProxySetting,
    ProxyUrl,
    ProxyUrlError,
    RouteError,
    ViaProxy,
    is_local,
    select,
)


def _route(setting: ProxySetting, env: ProxyEnv, url: str) -> Direct | ViaProxy:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return select(setting, env, parts.scheme, host, parts.port or (443 if parts.scheme == "https" else 80))


def _proxied_by(setting: ProxySetting, env: ProxyEnv, url: str) -> tuple[str, str] | None:
    route = _route(setting, env, url)
    return (str(route.proxy), route.source) if isinstance(route, ViaProxy) else None


def test_https_urls_read_https_proxy_lowercase_first_then_all_proxy() -> None:
    both = ProxyEnv.of({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2", "ALL_PROXY": "http://all:3"})
    assert _proxied_by("env", both, "https://api.example.com") == ("http://lower:1", "https_proxy")
    upper = ProxyEnv.of({"HTTPS_PROXY": "http://upper:2", "ALL_PROXY": "http://all:3"})
    assert _proxied_by("env", upper, "https://api.example.com") == ("http://upper:2", "HTTPS_PROXY")
    all_ = ProxyEnv.of({"all_proxy": "socks5h://all:3", "ALL_PROXY": "http://other:4"})
    assert _proxied_by("env", all_, "https://api.example.com") == ("socks5h://all:3", "all_proxy")


def test_http_urls_read_lowercase_http_proxy_only() -> None:
    assert _proxied_by("env", ProxyEnv.of({"HTTP_PROXY": "http://cgi:1"}), "http://10.1.2.3") is None
    lower = ProxyEnv.of({"http_proxy": "http://p:1", "https_proxy": "http://s:2"})
    assert _proxied_by("env", lower, "http://10.1.2.3") == ("http://p:1", "http_proxy")


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:8443",
        "https://127.0.0.1",
        "https://127.9.9.9:1",
        "http://[::1]:80",
        "http://169.254.169.254",
        "http://[fe80::1]",
        "https://app.localhost",
        "http://[::ffff:127.0.0.1]:8080",
        "http://[::ffff:169.254.169.254]",
    ],
)
def test_loopback_and_link_local_are_never_proxied(url: str) -> None:
    every = ProxyEnv.of({"https_proxy": "http://p:1", "http_proxy": "http://p:1"})
    assert _proxied_by("env", every, url) is None
    assert _proxied_by(ProxyUrl.parse("http://pinned:1"), every, url) is None


def test_local_hosts() -> None:
    for host in ["localhost", "LOCALHOST", "localhost.", "app.localhost", "a.b.Localhost.", "127.1.2.3", "[::1]", "[febf::1]", "[::ffff:7f00:1]"]:
        assert is_local(host), host
    for host in ["example.com", "10.0.0.1", "[2001:db8::1]", "localhost.example.com", "169.255.0.1"]:
        assert not is_local(host), host


def test_the_policy_can_pin_or_refuse_a_proxy() -> None:
    pinned = ProxyUrl.parse("https://pinned:8443")
    assert _proxied_by(pinned, ProxyEnv.of({}), "https://api.example.com") == ("https://pinned:8443", "http.proxy (policy)")
    assert _proxied_by("none", ProxyEnv.of({"https_proxy": "http://env:1"}), "https://api.example.com") is None


@pytest.mark.parametrize(
    ("listed", "url", "bypassed"),
    [
        ("*", "https://api.example.com", True),
        ("example.com", "https://api.example.com", True),
        (".example.com", "https://api.example.com", True),
        ("example.com", "https://example.com", True),
        (".example.com", "https://example.com", True),
        ("example.com", "https://notexample.com", False),
        ("EXAMPLE.com", "https://Api.Example.COM", True),
        ("  other.org ,  example.com  ", "https://api.example.com", True),
        ("other.org,,", "https://api.example.com", False),
        ("10.1.2.3", "https://10.1.2.3", True),
        ("10.1.2.3", "https://10.1.2.4", False),
        ("10.0.0.0/8", "https://10.200.3.4", True),
        ("10.0.0.0/8", "https://11.0.0.1", False),
        ("192.168.1.0/24", "https://192.168.1.77:8443", True),
        ("0.0.0.0/0", "https://8.8.8.8", True),
        ("2001:db8::/32", "https://[2001:db8::5]", True),
        ("2001:db8::/32", "https://[2001:db9::5]", False),
        ("2001:db8::5", "https://[2001:db8::5]", True),
        ("[2001:db8::5]:8443", "https://[2001:db8::5]:8443", True),
        ("[2001:db8::5]:8443", "https://[2001:db8::5]", False),
        ("example.com:8443", "https://api.example.com:8443", True),
        ("example.com:8443", "https://api.example.com", False),
        ("example.com:443", "https://api.example.com", True),
        ("10.0.0.0/8", "https://ten.example.com", False),
    ],
)
def test_no_proxy_forms(listed: str, url: str, bypassed: bool) -> None:
    env = ProxyEnv.of({"https_proxy": "http://p:1", "no_proxy": listed})
    assert (_proxied_by("env", env, url) is None) == bypassed


def test_no_proxy_reads_lowercase_first_and_says_which_entry_matched() -> None:
    env = ProxyEnv.of({"https_proxy": "http://p:1", "no_proxy": "a.org, example.com", "NO_PROXY": "other.net"})
    assert _route("env", env, "https://api.example.com") == Direct("no_proxy entry `example.com` matches")
    upper = ProxyEnv.of({"https_proxy": "http://p:1", "NO_PROXY": "example.com"})
    assert _proxied_by("env", upper, "https://api.example.com") is None


def test_proxy_urls_parse_as_curl_reads_them() -> None:
    assert str(ProxyUrl.parse("proxy.corp:3128")) == "http://proxy.corp:3128"
    assert ProxyUrl.parse("http://proxy.corp").port == 80
    assert ProxyUrl.parse("https://proxy.corp").port == 443
    assert ProxyUrl.parse("socks5://proxy.corp").port == 1080
    assert ProxyUrl.parse("socks5h://proxy.corp:9").scheme == "socks5h"
    with pytest.raises(ProxyUrlError, match="socks5h"):
        ProxyUrl.parse("socks4://proxy.corp")
    with pytest.raises(ProxyUrlError, match="has a path or query"):
        ProxyUrl.parse("http://proxy.corp/path")
    with pytest.raises(ProxyUrlError, match="has no host"):
        ProxyUrl.parse("http://")


def test_proxy_credentials_never_show() -> None:
    proxy = ProxyUrl.parse("http://us%40er:p%3Ass-w0rd@proxy.corp:3128")
    assert proxy.has_credentials()
    shown = f"{proxy} {proxy!r}"
    assert "w0rd" not in shown and "us%40er" not in shown and "proxy.corp:3128" in shown
    assert proxy.basic_credentials() == base64.b64encode(b"us@er:p:ss-w0rd").decode()
    assert ProxyUrl.parse("http://p:1").basic_credentials() is None
    assert "s3cret" not in repr(ProxyEnv.of({"https_proxy": "http://user:s3cret@p:1"}))
    bad = ProxyEnv.of({"https_proxy": "ftp://user:s3cret@p:1"})
    with pytest.raises(RouteError) as raised:
        _route("env", bad, "https://api.example.com")
    assert str(raised.value).startswith("proxy variable https_proxy")
    assert "s3cret" not in str(raised.value)


def test_the_policy_reads_proxy_and_ca_files_as_the_rust_host_does(tmp_path: object) -> None:
    assert Policy.from_toml("").proxy == "env"
    assert Policy.from_toml('[http]\nproxy = "none"\n').proxy == "none"
    pinned = Policy.from_toml('[http]\nproxy = "http://u:secret@proxy.corp:3128"\n').proxy
    assert isinstance(pinned, ProxyUrl) and str(pinned) == "http://proxy.corp:3128"
    with pytest.raises(PolicyError, match="policy: http.proxy: unknown value"):
        Policy.from_toml('[http]\nproxy = "sometimes"\n')
    with pytest.raises(PolicyError, match="policy: http.proxy: the value has scheme `ftp`") as raised:
        Policy.from_toml('[http]\nproxy = "ftp://u:secret@proxy.corp"\n')
    assert "secret" not in str(raised.value)
    with pytest.raises(PolicyError, match=r"policy: http.ca_files\[0\]: .*holds no PEM certificate"):
        Policy.from_toml('[http]\nca_files = ["/dev/null"]\n')
    with pytest.raises(PolicyError, match=r"policy: http.ca_files\[0\]: `ca.pem` is relative"):
        Policy.from_toml('[http]\nca_files = ["ca.pem"]\n')
