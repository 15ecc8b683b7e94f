"""The shared scenario table (tests/scenarios.json at the repository root), run through this host."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from anthropic_wif import Denied, ExchangeRejected, Policy, Provider, SourceFailed, WifError
from conftest import ManualClock
from loopback import IdentityServer, TokenEndpoint

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
) -> None:
    places = {"DIR": str(tmp_path), "TOKEN_ORIGIN": token_endpoint.origin, "ID_ORIGIN": identity_server.origin}
    scenario = _fill(scenario, places)
    for name, text in scenario.get("files", {}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    for name, target in scenario.get("symlinks", {}).items():
        os.symlink(target, tmp_path / name)
    for name, value in scenario.get("env", {}).items():
        monkeypatch.setenv(name, value)
    config = _fill(TABLE["config"], places)
    config["workload_identity_federation"]["identity_token"] = scenario["source"]
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
