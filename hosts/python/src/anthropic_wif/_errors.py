"""The errors of `Provider`: the component's failure classes plus the host's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class WifError(Exception):
    """Why no token (or no requirements) could be had. Never holds a token or an identity token."""


class InvalidConfig(WifError):
    """The configuration is invalid; `field` is the path of the field (empty for the whole document)."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"invalid config: {field + ': ' if field else ''}{message}")


class Denied(WifError):
    """The host's policy refused a capability the config needs."""

    def __init__(self, capability: str, detail: str) -> None:
        self.capability, self.detail = capability, detail
        super().__init__(f"{capability} denied by the host's policy: {detail}")


class SourceFailed(WifError):
    """The identity-token source (`file`, `env`, `command` or `url`) failed."""

    def __init__(self, kind: str, federation_rule_id: str, message: str) -> None:
        self.kind, self.federation_rule_id, self.message = kind, federation_rule_id, message
        super().__init__(
            f"identity token from the {kind} source (federation rule {federation_rule_id}): {message}"
        )


class ExchangeFailed(WifError):
    """The token endpoint could not be reached or did not answer in time."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"token exchange failed: {message}")


@dataclass(frozen=True)
class Rejection:
    """The token endpoint's refusal, as the component reports it."""

    status: int
    error: str | None = None
    error_description: str | None = None
    error_uri: str | None = None
    request_id: str | None = None
    body_snippet: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        text = f"token endpoint rejected the exchange with status {self.status}"
        for part in (self.error, self.error_description):
            if part is not None:
                text += f": {part}"
        if self.error_uri is not None:
            text += f" (see {self.error_uri})"
        if self.body_snippet is not None:
            text += f": body: {self.body_snippet}"
        if self.request_id is not None:
            text += f" [request-id {self.request_id}]"
        if self.hint is not None:
            text += f". Hint: {self.hint}"
        return text


class ExchangeRejected(WifError):
    """The token endpoint refused the exchange; `rejection` has the status and OAuth details."""

    def __init__(self, rejection: Rejection) -> None:
        self.rejection = rejection
        self.status = rejection.status
        super().__init__(str(rejection))


class MalformedResponse(WifError):
    """The token endpoint's 2xx answer is not a token response."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"token endpoint response is malformed: {message}")


class ComponentFailed(WifError):
    """The component trapped, ran past its deadline or its memory cap; the next call uses a fresh instance."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"the component failed: {message}")


class LoadFailed(WifError):
    """The component could not be read, compiled or instantiated."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"cannot load the component: {message}")


def from_component(error: Any) -> WifError:
    """The `error` variant the component returned, as an exception."""
    case, value = error.tag, error.payload
    if case == "invalid-config":
        return InvalidConfig(value.field, value.message)
    if case == "denied":
        return Denied(value.capability, value.detail)
    if case == "source-failed":
        return SourceFailed(value.kind, getattr(value, "federation-rule-id"), value.message)
    if case == "exchange-failed":
        return ExchangeFailed(value)
    if case == "exchange-rejected":
        return ExchangeRejected(
            Rejection(
                status=value.status,
                error=value.error,
                error_description=getattr(value, "error-description"),
                error_uri=getattr(value, "error-uri"),
                request_id=getattr(value, "request-id"),
                body_snippet=getattr(value, "body-snippet"),
                hint=value.hint,
            )
        )
    if case == "malformed-response":
        return MalformedResponse(value)
    return ComponentFailed(f"it returned an unknown error case {case!r}")
