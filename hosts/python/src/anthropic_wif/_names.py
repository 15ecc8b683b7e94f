"""Safe rendering of names in capability errors, and the error value itself."""

from __future__ import annotations

from typing import Any

from wasmtime.component import Record, Variant

from ._lowering import Err


def printable(text: str) -> str:
    """A name from the component, safe to put in a message: control characters escaped, bounded."""
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return f"`{escaped[:200]}`"


def cap_error(case: str, detail: str) -> Err:
    """A `cap-error` of `case` (`denied`, `not-found`, …) as a host function's `err` result."""
    return Err(Variant(case, detail))


def record(**fields: Any) -> Record:
    """A WIT record for wasmtime-py; a field `exit_code` is named `exit-code`, as in the WIT."""
    value = Record()
    for name, field in fields.items():
        setattr(value, name.replace("_", "-"), field)
    return value
