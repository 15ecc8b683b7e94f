"""A narrow fix for wasmtime-py 50's lowering of `result` values returned by host functions.

wasmtime-py lowers a `result<T, E>` *untagged* when the Python classes of `T`
and `E` do not overlap, choosing the case by `isinstance`. For
`result<option<string>, cap-error>` (`get-env`) the classes of the `ok` case
include `object` (an `option`'s `none`), so every value, errors included, is
taken for `ok` and then fails with "value not valid for this variant": a
host function cannot return an error.

Host functions of this package return errors as `Err(Variant(case, detail))`.
`install()` wraps `ResultType.convert_to_c` so that exactly this type is
lowered as the `err` case, with the error type's own conversion; every other
value goes through wasmtime-py's conversion unchanged. No other code passes
an `Err`, so nothing else in the process changes behaviour.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import Variant
from wasmtime.component import _types

_INSTALLED = "_anthropic_wif_err_lowering"


@dataclass(frozen=True)
class Err:
    """The `err` case of a WIT `result`, returned by a host function."""

    value: Variant


def install() -> None:
    """Makes `Err` lowerable as the `err` case of any `result`; idempotent."""
    result_type = _types.ResultType
    if getattr(result_type.convert_to_c, _INSTALLED, False):
        return
    original = result_type.convert_to_c

    def convert_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
        if not isinstance(val, Err):
            original(self, store, val, ptr)
            return
        raw = ffi.wasmtime_component_val_t()
        self.err.convert_to_c(store, val.value, ctypes.pointer(raw))
        ptr.contents.kind = ffi.WASMTIME_COMPONENT_RESULT
        ptr.contents.of.result.is_ok = False
        ptr.contents.of.result.val = ffi.wasmtime_component_val_new(ctypes.byref(raw))

    setattr(convert_to_c, _INSTALLED, True)
    setattr(result_type, "convert_to_c", convert_to_c)
