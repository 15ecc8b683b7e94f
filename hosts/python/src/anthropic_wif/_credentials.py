"""An access-token provider for the official Anthropic SDK: `Anthropic(credentials=WifCredentials(config, policy))`."""

from __future__ import annotations

import os
from typing import Any

from ._policy import Policy
from ._provider import Config, Provider


class WifCredentials:
    """A credentials provider for `anthropic.Anthropic(credentials=...)`.

    It holds a `Client` of the config (validated when it is made). The SDK
    calls it before requests and after an API 401 with `force_refresh=True`,
    which drops the token it last returned (only that one: when another
    request already replaced it, the new one stands) so that the next token
    comes from a fresh exchange. It returns
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
        self.client = self.provider.client(config)
        self._last: str | None = None

    def __call__(self, *, force_refresh: bool = False) -> Any:
        from anthropic.lib.credentials import AccessToken

        if force_refresh:
            if self._last is None:
                self.client.invalidate()
            else:
                self.client.invalidate_rejected(self._last)
        token = self.client.token()
        self._last = token.token
        return AccessToken(token=token.token, expires_at=0)

    def __repr__(self) -> str:
        return "WifCredentials(...)"
