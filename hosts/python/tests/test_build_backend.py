"""The build backend names the one command to run when it cannot write the component itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BACKEND = Path(__file__).resolve().parents[1] / "_build" / "backend.py"


def _backend() -> ModuleType:
    pytest.importorskip("setuptools")
    spec = importlib.util.spec_from_file_location("wif_build_backend", BACKEND)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_outside_a_clone_the_error_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    package = tmp_path / "unpacked" / "hosts" / "python"
    monkeypatch.setattr(backend, "PACKAGE", package)
    monkeypatch.setattr(backend, "COMPONENT", package / "src" / "anthropic_wif" / "anthropic_wif.wasm")
    with pytest.raises(backend.ComponentMissing, match="not inside a clone of the repository") as raised:
        backend.ensure_component()
    assert backend.COMMAND in str(raised.value)


def test_without_cargo_the_error_names_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    monkeypatch.setattr(backend, "COMPONENT", tmp_path / "anthropic_wif.wasm")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(backend.ComponentMissing, match="cargo is not on PATH") as raised:
        backend.ensure_component()
    assert backend.COMMAND in str(raised.value)


def test_a_component_already_there_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    component = tmp_path / "anthropic_wif.wasm"
    component.write_bytes(b"\0asm")
    monkeypatch.setattr(backend, "COMPONENT", component)
    monkeypatch.setenv("PATH", str(tmp_path))
    backend.ensure_component()
    assert component.read_bytes() == b"\0asm"
