"""An access-token provider for the official Anthropic SDK: `Anthropic(credentials=WifCredentials(config, policy))`."""

from __future__ import annotations

import os
from typing import Any

from ._policy import Policy
from ._provider import Config, Provider


class WifCredentials:
    """A credentials provider for `anthropic.Anthropic(credentials=...)`.

    The SDK calls it before requests and after an API 401 with
    `force_refresh=True`, which invalidates the component's cached token so
    the next token comes from a fresh exchange. It returns
    `AccessToken(token, expires_at=0)`: the SDK's documented value for a
    provider that caches itself, so that the component's refresh windows (scaled for
    short-lived tokens, with the backoff after a failed advisory refresh)
    decide when to exchange, not a second cache with fixed windows.
    """

    def __init__(
        self,
        config: Config,
        policy: Policy | str | os.PathLike[str] | None = None,
        *,
        provider: Provider | None = None,
    ) -> None:
        self.config = config
        self.provider = provider or Provider(policy)

    def __call__(self, *, force_refresh: bool = False) -> Any:
        from anthropic.lib.credentials import AccessToken

        if force_refresh:
            self.provider.invalidate(self.config)
        token = self.provider.get_token(self.config)
        return AccessToken(token=token.token, expires_at=0)

    def __repr__(self) -> str:
        return "WifCredentials(...)"
