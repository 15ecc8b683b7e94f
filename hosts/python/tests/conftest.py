"""Shared fixtures: loopback servers, a manual clock and an `auth` config builder."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from loopback import IdentityServer, TokenEndpoint

START = 1_900_000_000
"""Where the manual clock starts (Unix seconds)."""


class ManualClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: float = START) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    yield server
    server.close()


@pytest.fixture
def identity_server() -> Iterator[IdentityServer]:
    server = IdentityServer()
    yield server
    server.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def auth_config(base_url: str, source: dict[str, Any]) -> dict[str, Any]:
    """An `auth` block for the loopback token endpoint at `base_url` with identity-token `source`."""
    return {
        "type": "workload_identity_federation",
        "workload_identity_federation": {
            "federation_rule_id": "fdrl_test",
            "organization_id": "00000000-0000-4000-8000-000000000000",
            "base_url": base_url,
            "identity_token": source,
        },
    }
