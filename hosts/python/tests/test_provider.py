"""The provider: requirements, limits, traps, single flight and the capabilities' hardening."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from anthropic_wif import (
    ComponentFailed,
    Denied,
    InvalidConfig,
    LoadFailed,
    Policy,
    Provider,
    SourceFailed,
)
from anthropic_wif._capabilities import get_env
from anthropic_wif._command import run
from anthropic_wif._files import read
from anthropic_wif._lowering import Err
from conftest import ManualClock, auth_config
from loopback import TokenEndpoint


def _file_provider(tmp_path: Path, token_endpoint: TokenEndpoint, **options: object) -> tuple[Provider, dict]:
    (tmp_path / "token").write_text("id-token")
    policy = Policy.from_toml(f'[files]\nallow = ["{tmp_path}/token"]\n[http]\nallow_origins = ["{token_endpoint.origin}"]\n')
    return Provider(policy, **options), auth_config(token_endpoint.origin, {"file": f"{tmp_path}/token"})  # type: ignore[arg-type]


def test_requirements_list_what_a_config_needs_without_any_grant() -> None:
    config = auth_config(
        "https://api.anthropic.com",
        {"url": "${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=x", "headers": {"Authorization": "bearer ${REQ}"}},
    )
    needs = Provider().requirements(json.dumps(config))
    assert set(needs.env) == {"ACTIONS_ID_TOKEN_REQUEST_URL", "REQ"}
    assert needs.origins == ["https://api.anthropic.com"]
    assert needs.urls == [("${ACTIONS_ID_TOKEN_REQUEST_URL}&audience=x", None)]


def test_invalid_config_names_the_field() -> None:
    with pytest.raises(InvalidConfig) as raised:
        Provider().get_token({"type": "workload_identity_federation", "workload_identity_federation": {}})
    assert raised.value.field.startswith("workload_identity_federation")


def test_a_call_past_its_fuel_fails(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    provider, config = _file_provider(tmp_path, token_endpoint, fuel=1_000)
    with pytest.raises(ComponentFailed, match="fuel budget"):
        provider.get_token(config)
    assert token_endpoint.exchanges == 0


def test_the_memory_cap_stops_a_config_too_large_for_it_and_the_next_call_works(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    provider, config = _file_provider(tmp_path, token_endpoint, memory_limit=2 * 1024 * 1024)
    huge = json.dumps(config) + " " * (4 * 1024 * 1024)
    with pytest.raises(ComponentFailed):
        provider.get_token(huge)
    assert provider.get_token(config).token == "sk-ant-oat01-scenario-1"


def test_concurrent_callers_share_one_exchange(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    provider, config = _file_provider(tmp_path, token_endpoint)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(provider.get_token(config).token)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tokens == ["sk-ant-oat01-scenario-1"] * 8
    assert token_endpoint.exchanges == 1


def test_a_client_is_validated_once_shared_per_config_and_drops_only_the_refused_token(
    tmp_path: Path, token_endpoint: TokenEndpoint
) -> None:
    provider, config = _file_provider(tmp_path, token_endpoint)
    client = provider.client(config)
    assert provider.client(config) is client, "the same client for the same config"
    first = client.token()
    assert provider.get_token(config).token == first.token, "get_token goes through the same client"
    client.invalidate_rejected("sk-ant-oat01-some-other-token")
    assert client.token().token == first.token, "another token refused: kept"
    client.invalidate_rejected(first.token)
    second = client.token()
    assert second.token != first.token
    client.invalidate_rejected(first.token)
    assert client.token().token == second.token, "already replaced: kept"
    assert token_endpoint.exchanges == 2
    assert client.requirements().files == [f"{tmp_path}/token"]
    with pytest.raises(InvalidConfig):
        provider.client({"type": "nope"})


def test_the_exchange_is_what_the_official_sdks_send(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    provider, config = _file_provider(tmp_path, token_endpoint, clock=ManualClock())
    token = provider.get_token(config)
    assert token.expires_at == 1_900_000_000 + 600 and token.refresh_after <= token.expires_at - 120
    request = token_endpoint.requests[-1]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["anthropic-beta"] == "oauth-2025-04-20,oidc-federation-2026-04-01"
    assert not {"authorization", "x-api-key", "anthropic-version"} & set(request.headers)
    body = request.json()
    assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert (body["assertion"], body["federation_rule_id"]) == ("id-token", "fdrl_test")
    assert "sk-ant" not in repr(token)


def test_another_component_file_is_loaded_and_a_missing_one_named(tmp_path: Path) -> None:
    with pytest.raises(LoadFailed, match="missing.wasm"):
        Provider(component=tmp_path / "missing.wasm")
    (tmp_path / "bad.wasm").write_bytes(b"\0asm not really")
    with pytest.raises(LoadFailed, match="compiling"):
        Provider(component=tmp_path / "bad.wasm")


def test_files_capability(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("id-token")
    (tmp_path / "big").write_bytes(b"x" * 11)
    (tmp_path / "dir").mkdir()
    policy = Policy.from_toml(f'[files]\nallow_prefixes = ["{tmp_path}"]\nmax_bytes = 10\n')
    assert read(policy, str(tmp_path / "token")) == b"id-token"
    assert _case(read(policy, str(tmp_path / "big"))) == "too-large"
    assert _case(read(policy, str(tmp_path / "dir"))) == "is-directory"
    assert _case(read(policy, str(tmp_path / "absent"))) == "not-found"
    assert _case(read(policy, "token")) == "denied"
    assert _case(read(policy, str(tmp_path / ".." / tmp_path.name / "token"))) != "denied"
    assert _case(read(Policy(), "/etc/hostname")) == "denied"
    assert _case(read(policy, str(tmp_path.parent / "absent"))) == "denied"


def test_env_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIF_TEST_GRANTED", "the-value")
    monkeypatch.delenv("WIF_TEST_UNSET", raising=False)
    policy = Policy.from_toml('[env]\nallow = ["WIF_TEST_GRANTED", "WIF_TEST_UNSET"]')
    assert get_env(policy, "WIF_TEST_GRANTED") == "the-value"
    assert get_env(policy, "WIF_TEST_UNSET") is None
    denied = get_env(Policy(), "WIF_TEST_GRANTED")
    assert _case(denied) == "denied" and "the-value" not in denied.value.payload  # type: ignore[union-attr]


def test_commands_run_without_a_shell_in_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIF_TEST_SECRET", "must-not-leak")
    monkeypatch.setenv("WIF_TEST_GRANTED", "granted-value")
    policy = Policy.from_toml('[env]\nallow = ["WIF_TEST_GRANTED"]\n[commands]\nallow = [["env"], ["printf"]]\n')
    output = run(policy, ["env"], 10_000)
    names = {line.split(b"=")[0] for line in output.stdout.splitlines()}  # type: ignore[union-attr]
    assert names <= {b"PATH", b"HOME", b"WIF_TEST_GRANTED"} and b"WIF_TEST_GRANTED" in names
    assert run(policy, ["printf", "%s", "$HOME;id"], 10_000).stdout == b"$HOME;id"  # type: ignore[union-attr]
    assert _case(run(policy, ["sh", "-c", "env"], 10_000)) == "denied"
    many = Policy.from_toml('[commands]\nallow = [["head"]]\nmax_output_bytes = 100\n')
    assert _case(run(many, ["head", "-c", "101", "/dev/zero"], 10_000)) == "too-large"
    assert run(many, ["head", "-c", "100", "/dev/zero"], 10_000).stdout == b"\0" * 100  # type: ignore[union-attr]
    missing = Policy.from_toml('[commands]\nallow = [["wif-no-such-program"]]\n')
    assert _case(run(missing, ["wif-no-such-program"], 10_000)) == "not-found"


def test_a_denied_variable_reaches_the_caller_as_a_denial(monkeypatch: pytest.MonkeyPatch) -> None:
    """`get-env` returns `result<option<string>, cap-error>`: the case wasmtime-py cannot lower unaided."""
    monkeypatch.setenv("WIF_TEST_IDENTITY", "must-not-leak")
    with pytest.raises(Denied) as raised:
        Provider().get_token(auth_config("http://127.0.0.1:9", {"env": "WIF_TEST_IDENTITY"}))
    assert raised.value.capability == "get-env" and "must-not-leak" not in str(raised.value)


def test_an_unset_granted_variable_is_a_source_failure() -> None:
    policy = Policy.from_toml('[env]\nallow = ["WIF_TEST_NEVER_SET"]')
    with pytest.raises(SourceFailed, match="WIF_TEST_NEVER_SET"):
        Provider(policy).get_token(auth_config("http://127.0.0.1:9", {"env": "WIF_TEST_NEVER_SET"}))


def _case(value: object) -> str | None:
    return value.value.tag if isinstance(value, Err) else None
