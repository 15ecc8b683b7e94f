"""The official Python SDK's cached-token call, for `cargo bench --bench tokens`.

Times `anthropic.lib.credentials.TokenCache.get_token()` on a token an hour
from expiry (the cached path every SDK request takes) and prints one line
per run: `ns_per_call <float>`, then `version <anthropic version>`.
"""

from __future__ import annotations

import sys
import time

import anthropic
from anthropic.lib.credentials import AccessToken
from anthropic.lib.credentials._cache import TokenCache

RUNS = 25
CALLS = 100_000


def provider(*, force_refresh: bool = False) -> AccessToken:
    return AccessToken(token="sk-ant-oat01-bench", expires_at=int(time.time()) + 3600)


def main() -> None:
    cache = TokenCache(provider)
    cache.get_token()
    get = cache.get_token
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        for _ in range(CALLS):
            get()
        print(f"ns_per_call {(time.perf_counter_ns() - start) / CALLS}")
    print(f"version {anthropic.__version__}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
