"""Anthropic Workload Identity Federation for Python, through the anthropic-wif WebAssembly component.

The component owns the logic (config validation, the four identity-token
sources, the exchange, the cache); this package hosts it with wasmtime and
grants it files, variables, origins and commands under a deny-by-default
policy (the same TOML file as the Rust host's `wif-host`).

    provider = Provider("policy.toml")
    client = provider.client(auth_config)   # validated once; hold it
    token = client.token()

    client = anthropic.Anthropic(credentials=WifCredentials(auth_config, "policy.toml"))
"""

from ._credentials import WifCredentials
from ._errors import (
    ComponentFailed,
    Denied,
    ExchangeFailed,
    ExchangeRejected,
    InvalidConfig,
    LoadFailed,
    MalformedResponse,
    Rejection,
    SourceFailed,
    WifError,
)
from ._policy import Origin, Policy, PolicyError
from ._proxy import ProxyUrl
from ._provider import AccessToken, Client, Provider, Requirements

__all__ = [
    "AccessToken",
    "Client",
    "ComponentFailed",
    "Denied",
    "ExchangeFailed",
    "ExchangeRejected",
    "InvalidConfig",
    "LoadFailed",
    "MalformedResponse",
    "Origin",
    "Policy",
    "PolicyError",
    "Provider",
    "ProxyUrl",
    "Rejection",
    "Requirements",
    "SourceFailed",
    "WifCredentials",
    "WifError",
]
