"""The package's PEP 517 build backend: setuptools, after making sure the component is in the package.

`pip install ./hosts/python` from a clone of the repository builds here. When
`src/anthropic_wif/anthropic_wif.wasm` is missing, it is written by the one
command that makes it, run from the repository root:

    cargo run --example write_component -- hosts/python/src/anthropic_wif/anthropic_wif.wasm

(a Rust toolchain is needed; `rust-toolchain.toml` names it). Outside a clone,
or when that command fails, the build stops with an error naming it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401 (the hooks this backend does not change)
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

PACKAGE = Path(__file__).resolve().parents[1]
COMPONENT = PACKAGE / "src" / "anthropic_wif" / "anthropic_wif.wasm"
COMMAND = "cargo run --example write_component -- hosts/python/src/anthropic_wif/anthropic_wif.wasm"


class ComponentMissing(RuntimeError):
    """The component is not in the package and could not be written."""


def ensure_component() -> None:
    """Writes the component into the package from the repository, unless it is there already."""
    if COMPONENT.is_file():
        return
    root = PACKAGE.parents[1]
    if not (root / "Cargo.toml").is_file() or not (root / "host-example").is_dir():
        raise ComponentMissing(
            f"anthropic_wif.wasm is missing and {PACKAGE} is not inside a clone of the repository; "
            f"from the repository root run: {COMMAND}"
        )
    cargo = shutil.which("cargo")
    if cargo is None:
        raise ComponentMissing(f"anthropic_wif.wasm is missing and cargo is not on PATH; install Rust, then run: {COMMAND}")
    print(f"anthropic-wif: writing the component: {COMMAND}", flush=True)
    done = subprocess.run([cargo, "run", "--quiet", "--example", "write_component", "--", str(COMPONENT)], cwd=root, env=os.environ)
    if done.returncode != 0 or not COMPONENT.is_file():
        raise ComponentMissing(f"writing the component failed (exit {done.returncode}); run it yourself: {COMMAND}")


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    ensure_component()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> str:
    ensure_component()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    ensure_component()
    return _setuptools.build_sdist(sdist_directory, config_settings)
