"""The policy file: the same TOML as the Rust host's, parsed as strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from anthropic_wif import Origin, Policy, PolicyError

FULL = """
[env]
allow = ["ACTIONS_ID_TOKEN_REQUEST_URL"]

[files]
allow = ["/var/run/secrets/anthropic.com/token"]
allow_prefixes = ["/var/run/secrets/"]
max_bytes = 65536

[http]
allow_origins = ["https://api.anthropic.com", "http://127.0.0.1:8080", "http://169.254.169.254"]
timeout_secs = 10
max_body_bytes = 4096

[commands]
allow = [["gcloud", "auth", "print-identity-token"]]
timeout_secs = 2.5
max_output_bytes = 1024
"""


def test_the_documented_policy_parses() -> None:
    policy = Policy.from_toml(FULL)
    assert policy.allows_env("ACTIONS_ID_TOKEN_REQUEST_URL") and not policy.allows_env("HOME")
    assert policy.allows_origin(Origin("https", "api.anthropic.com", 443))
    assert policy.allows_origin(Origin.of("http://127.0.0.1:8080/v1/oauth/token"))  # type: ignore[arg-type]
    assert not policy.allows_origin(Origin("https", "api.anthropic.com", 8443))
    assert policy.allows_command(["gcloud", "auth", "print-identity-token", "--audiences=x"])
    assert not policy.allows_command(["gcloud", "auth"])
    assert not policy.allows_command(["gcloud", "auth", "print-access-token"])
    assert (policy.max_file_bytes, policy.http_timeout, policy.max_body_bytes) == (65536, 10.0, 4096)
    assert (policy.command_timeout, policy.max_output_bytes) == (2.5, 1024)


def test_an_empty_policy_grants_nothing_with_the_default_limits() -> None:
    policy = Policy.from_toml("")
    assert policy == Policy()
    assert policy.max_body_bytes == 1024 * 1024 and policy.http_timeout == 30.0
    assert not policy.allows_file(Path("/etc/passwd"))


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("[envs]\nallow = []", "envs"),
        ("[env]\nallowed = []", "env.allowed"),
        ('[files]\nallow = ["token"]', "files.allow[0]"),
        ('[files]\nallow_prefixes = ["/var/../etc"]', "files.allow_prefixes[0]"),
        ('[http]\nallow_origins = ["api.anthropic.com"]', "https://api.anthropic.com"),
        ('[http]\nallow_origins = ["https://api.anthropic.com/v1"]', "path"),
        ('[http]\nallow_origins = ["https://user@api.anthropic.com"]', "user information"),
        ('[http]\nallow_origins = ["http://api.anthropic.com"]', "plain http"),
        ('[http]\nallow_origins = ["ftp://example.com"]', "http or https"),
        ("[http]\ntimeout_secs = 0", "http.timeout_secs"),
        ("[http]\ntimeout_secs = 1e-300", "http.timeout_secs"),
        ("[http]\nmax_body_bytes = 0", "http.max_body_bytes"),
        ("[commands]\nallow = [[]]", "commands.allow[0]"),
        ('[commands]\nallow = [["gcloud", ""]]', "commands.allow[0][1]"),
        ('[env]\nallow = ["A=B"]', "env.allow[0]"),
        ("[env\n", "policy"),
    ],
)
def test_invalid_policies_say_which_key_and_what_to_write(text: str, names: str) -> None:
    with pytest.raises(PolicyError, match=None) as raised:
        Policy.from_toml(text)
    assert names in str(raised.value)


def test_origins_are_normalized() -> None:
    assert str(Origin.of("HTTPS://API.Anthropic.com:443/x")) == "https://api.anthropic.com"
    assert str(Origin.of("http://[::1]:9/")) == "http://[::1]:9"
    assert Origin.of("file:///etc/passwd") is None
    assert Origin.of("http://127.0.0.1:99999/") is None


def test_granted_folders_are_compared_after_resolving_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    policy = Policy.from_toml(f'[files]\nallow_prefixes = ["{tmp_path}/link"]')
    assert policy.allows_file((tmp_path / "real" / "token"))
    assert not policy.allows_file(tmp_path / "other")


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="policy.toml"):
        Policy.from_file(tmp_path / "policy.toml")
