"""`WifCredentials` in the official SDK: a real `messages.create` against a loopback Messages API stand-in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import anthropic
import pytest

from anthropic_wif import Policy, Provider, WifCredentials
from conftest import auth_config
from loopback import Loopback, Recorded, TokenEndpoint, json_reply

MESSAGE = {
    "id": "msg_wif",
    "type": "message",
    "role": "assistant",
    "model": "claude-test",
    "content": [{"type": "text", "text": "hello from the stand-in"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 5},
}


class MessagesApi(Loopback):
    """`POST /v1/messages` that accepts only the bearer tokens in `accepted`, with the OAuth beta."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        super().__init__(self._answer)

    def _answer(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method != "POST" or request.path != "/v1/messages":
            return json_reply(404, {"type": "error", "error": {"type": "not_found_error", "message": "no"}})
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        betas = [b.strip() for b in request.headers.get("anthropic-beta", "").split(",")]
        if bearer not in self.accepted or "oauth-2025-04-20" not in betas or "x-api-key" in request.headers:
            return json_reply(401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid"}})
        return json_reply(200, MESSAGE)


def test_the_sdk_release_under_test() -> None:
    """hosts/run-tests.sh runs this file with the latest SDK and with its oldest supported release, and says which."""
    expected = os.environ.get("WIF_EXPECT_ANTHROPIC_VERSION")
    if expected is not None:
        assert anthropic.__version__ == expected
    assert tuple(int(part) for part in anthropic.__version__.split(".")[:2]) >= (2, 10)


@pytest.fixture
def messages_api() -> Iterator[MessagesApi]:
    server = MessagesApi()
    yield server
    server.close()


def _credentials(tmp_path: Path, token_endpoint: TokenEndpoint) -> WifCredentials:
    (tmp_path / "token").write_text("id-token-for-the-sdk")
    policy = Policy.from_toml(f'[files]\nallow = ["{tmp_path}/token"]\n[http]\nallow_origins = ["{token_endpoint.origin}"]\n')
    return WifCredentials(auth_config(token_endpoint.origin, {"file": f"{tmp_path}/token"}), policy)


def test_messages_create_through_the_official_sdk(
    tmp_path: Path, token_endpoint: TokenEndpoint, messages_api: MessagesApi
) -> None:
    messages_api.accepted = {"sk-ant-oat01-scenario-1"}
    client = anthropic.Anthropic(credentials=_credentials(tmp_path, token_endpoint), base_url=messages_api.origin)
    for _ in range(2):
        message = client.messages.create(
            model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.content[0].text == "hello from the stand-in"
    assert token_endpoint.exchanges == 1
    assert token_endpoint.last_assertion == "id-token-for-the-sdk"
    assert [r.headers["authorization"] for r in messages_api.requests] == ["Bearer sk-ant-oat01-scenario-1"] * 2


def test_api_401_forces_a_fresh_exchange(
    tmp_path: Path, token_endpoint: TokenEndpoint, messages_api: MessagesApi
) -> None:
    messages_api.accepted = {"sk-ant-oat01-scenario-2"}
    credentials = _credentials(tmp_path, token_endpoint)
    client = anthropic.Anthropic(credentials=credentials, base_url=messages_api.origin, max_retries=1)
    message = client.messages.create(model="claude-test", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert message.id == "msg_wif"
    assert token_endpoint.exchanges == 2
    assert [r.headers["authorization"] for r in messages_api.requests] == [
        "Bearer sk-ant-oat01-scenario-1",
        "Bearer sk-ant-oat01-scenario-2",
    ]


def test_force_refresh_invalidates_and_plain_calls_are_cached(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    credentials = _credentials(tmp_path, token_endpoint)
    first = credentials()
    assert credentials().token == first.token
    assert token_endpoint.exchanges == 1
    assert credentials(force_refresh=True).token == "sk-ant-oat01-scenario-2"
    assert token_endpoint.exchanges == 2
    assert first.expires_at == 0, "the component caches: the SDK must ask it before each request"


def test_credentials_never_show_the_token(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    credentials = _credentials(tmp_path, token_endpoint)
    token = credentials()
    assert "scenario" not in repr(token) and "scenario" not in repr(credentials)
    assert "scenario" not in repr(credentials.provider.get_token(credentials.config))


def test_a_shared_provider_serves_several_credentials(tmp_path: Path, token_endpoint: TokenEndpoint) -> None:
    (tmp_path / "token").write_text("id-token")
    provider = Provider(
        Policy.from_toml(f'[files]\nallow = ["{tmp_path}/token"]\n[http]\nallow_origins = ["{token_endpoint.origin}"]\n')
    )
    config = auth_config(token_endpoint.origin, {"file": f"{tmp_path}/token"})
    a, b = WifCredentials(config, provider=provider), WifCredentials(config, provider=provider)
    assert a().token == b().token
    assert token_endpoint.exchanges == 1
