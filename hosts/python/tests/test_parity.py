"""The parity table of docs/HOST-AUTHORS.md names every key of the Rust host's policy and every scenario row."""

from __future__ import annotations

import json
import re
from pathlib import Path

from anthropic_wif._policy import _KEYS

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "HOST-AUTHORS.md").read_text(encoding="utf-8")
HOSTS = ("Rust", "Python", "JavaScript")


def _table(heading: str) -> dict[str, list[str]]:
    """The rows of the table under `### heading`: first cell (unquoted) -> the three host cells."""
    section = DOC.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 4 or cells[0] in ("key", "scenario", "---"):
            continue
        rows[cells[0].strip("`").replace("\\|", "|")] = cells[1:]
    return rows


def _rust_policy_keys() -> set[str]:
    """`table.key` for every field of the Rust host's raw policy structs."""
    source = (ROOT / "host-example" / "src" / "policy.rs").read_text(encoding="utf-8")
    keys = set()
    for table, body in re.findall(r"struct Raw(Env|Files|Http|Commands) \{(.*?)\n\}", source, re.S):
        for field in re.findall(r"^\s+(\w+):", body, re.M):
            keys.add(f"{table.lower()}.{field}")
    return keys


def test_the_table_names_every_policy_key_of_the_rust_host_and_python_accepts_each() -> None:
    rust = _rust_policy_keys()
    assert len(rust) >= 12, rust
    keys = _table("Policy keys")
    assert set(keys) == rust
    python = {f"{table}.{key}" for table, names in _KEYS.items() for key in names}
    assert python == rust
    for key, cells in keys.items():
        assert cells[0] == "✔" and cells[1] == "✔", key


def test_the_table_names_every_scenario_row_and_python_meets_each() -> None:
    table = json.loads((ROOT / "tests" / "scenarios.json").read_text(encoding="utf-8"))
    names = [s["name"] for s in table["scenarios"]]
    rows = _table("Scenario rows")
    assert list(rows) == names
    for name, cells in rows.items():
        assert cells[0] == "✔" and cells[1] == "✔", name
        assert cells[2] in ("✔", "✘"), name
