"""The shared scenario table (tests/scenarios.json at the repository root), run through this host."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any, Iterator

import pytest
import trustme

from anthropic_wif import Denied, ExchangeRejected, Policy, Provider, SourceFailed, WifError
from conftest import ManualClock
from loopback import ConnectProxy, DripServer, IdentityServer, Loopback, TokenEndpoint, closed_port, tls_front

TABLE_PATH = Path(__file__).resolve().parents[3] / "tests" / "scenarios.json"
TABLE = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
ERROR_CASES = {
    "InvalidConfig": "invalid-config",
    "Denied": "denied",
    "SourceFailed": "source-failed",
    "ExchangeFailed": "exchange-failed",
    "ExchangeRejected": "exchange-rejected",
    "MalformedResponse": "malformed-response",
}
PROXIED = "token.scenario.test"
"""The name only the CONNECT proxy resolves (to 127.0.0.1)."""
PROCESS_VARIABLES = (
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)
"""Variables the host process reads itself: removed for every scenario, set from its `process_env`."""


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_token_endpoint(token_endpoint: TokenEndpoint, ca: trustme.CA) -> Iterator[Loopback]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", PROXIED).configure_cert(context)
    server = tls_front(token_endpoint, context)
    yield server
    server.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    server = ConnectProxy({PROXIED: "127.0.0.1"}, "scenario:proxy-s3cret")
    yield server
    server.close()


@pytest.fixture
def drip() -> Iterator[DripServer]:
    server = DripServer()
    yield server
    server.close()


def _fill(value: Any, places: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in places.items():
            value = value.replace("{{" + name + "}}", text)
        return value
    if isinstance(value, list):
        return [_fill(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, places) for k, v in value.items()}
    return value


@pytest.mark.parametrize("scenario", TABLE["scenarios"], ids=[s["name"] for s in TABLE["scenarios"]])
def test_scenario(
    scenario: dict[str, Any],
    tmp_path: Path,
    token_endpoint: TokenEndpoint,
    identity_server: IdentityServer,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    ca: trustme.CA,
    tls_token_endpoint: Loopback,
    proxy: ConnectProxy,
    drip: DripServer,
) -> None:
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    places = {
        "DIR": str(tmp_path),
        "TOKEN_ORIGIN": token_endpoint.origin,
        "ID_ORIGIN": identity_server.origin,
        "CA_FILE": str(ca_file),
        "TLS_TOKEN_ORIGIN": tls_token_endpoint.origin,
        "PROXIED_TOKEN_ORIGIN": f"https://{PROXIED}:{tls_token_endpoint.port}",
        "PROXY": f"127.0.0.1:{proxy.port}",
        "DOWN_PROXY": f"127.0.0.1:{closed_port()}",
        "DRIP_ORIGIN": drip.origin,
    }
    scenario = _fill(scenario, places)
    for name, text in scenario.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for name, target in scenario.get("symlinks", {}).items():
        os.symlink(target, tmp_path / name)
    for name, value in scenario.get("env", {}).items():
        monkeypatch.setenv(name, value)
    for name in PROCESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in scenario.get("process_env", {}).items():
        assert name in PROCESS_VARIABLES, name
        monkeypatch.setenv(name, value)
    config = _fill(TABLE["config"], places)
    config["workload_identity_federation"]["identity_token"] = scenario["source"]
    if "base_url" in scenario:
        config["workload_identity_federation"]["base_url"] = scenario["base_url"]
    provider = Provider(Policy.from_toml(scenario["policy"]), clock=clock)

    for number, step in enumerate(scenario["steps"], 1):
        where = f"step {number}"
        clock.advance(step.get("advance", 0))
        for name, text in step.get("files", {}).items():
            (tmp_path / name).write_text(text)
        if "token_endpoint" in step:
            token_endpoint.behaviour = step["token_endpoint"]
        if step["call"] == "invalidate":
            provider.invalidate(config)
        else:
            expect = step["expect"]
            try:
                token = provider.get_token(config)
            except WifError as error:
                _check_error(error, expect, where)
            else:
                assert "token" in expect, f"{where}: expected {expect}, got a token"
                assert token.token == expect["token"], where
        assert token_endpoint.exchanges == step["exchanges"], where
        if "assertion" in step:
            assert token_endpoint.last_assertion == step["assertion"], where
        if "connects" in step:
            assert proxy.connects == step["connects"], f"{where}: CONNECTs"


def _check_error(error: WifError, expect: dict[str, Any], where: str) -> None:
    assert "error" in expect, f"{where}: expected a token, got {error}"
    assert ERROR_CASES.get(type(error).__name__) == expect["error"], f"{where}: {error}"
    if "capability" in expect:
        assert isinstance(error, Denied) and error.capability == expect["capability"], where
    if "kind" in expect:
        assert isinstance(error, SourceFailed) and error.kind == expect["kind"], where
    if "status" in expect:
        assert isinstance(error, ExchangeRejected) and error.status == expect["status"], where
    if "contains" in expect:
        assert expect["contains"] in str(error), f"{where}: {error}"
    for absent in expect.get("not_contains", []):
        assert absent not in str(error), f"{where}: {error}"
