#!/usr/bin/env bash
# Sets up and runs the test suites of the Python and JavaScript hosts:
#   hosts/run-tests.sh           both
#   hosts/run-tests.sh python    the Python host only
#   hosts/run-tests.sh js        the JavaScript host only
# The component is the one embedded in the Rust host (written out by the
# write_component example); the Python virtual environment lives under
# target/hosts/, JavaScript dependencies come from the committed lockfile.
# Any failing or missing test fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"
which="${1:-all}"
case "$which" in all | python | js) ;; *) echo "usage: $0 [python|js]" >&2; exit 2 ;; esac

mkdir -p "$target/hosts"
wasm="$target/hosts/anthropic_wif.wasm"
# From the workspace root without -p: the same features as `cargo test`, so
# the example reuses that build instead of compiling wasmtime once more.
cargo run --quiet --example write_component -- "$wasm"

run_python() {
    local venv="$target/hosts/venv" status=0
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    cp "$wasm" hosts/python/src/anthropic_wif/anthropic_wif.wasm
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "./hosts/python[test]"
    # The type hints the package ships (py.typed), checked strictly.
    (cd hosts/python && "$venv/bin/python" -m mypy) || return 1
    (cd hosts/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider) || status=$?
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no test" >&2
    fi
    [ "$status" -eq 0 ] || return "$status"
    python_sdk_oldest
    python_from_a_clone
}

# The official SDK's oldest supported release, in a virtual environment of
# its own (the main one has the latest).
python_sdk_oldest() {
    local venv="$target/hosts/venv-anthropic-2.10.0"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "./hosts/python" "anthropic==2.10.0" "pytest>=8"
    (cd hosts/python && WIF_EXPECT_ANTHROPIC_VERSION=2.10.0 \
        "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/test_sdk.py)
}

# `pip install ./hosts/python` as a user runs it in a fresh clone of the
# committed tree, where the component is not written yet: the package's
# build backend writes it (cargo, with this target folder), and the
# installed package mints nothing until it loads the component.
python_from_a_clone() {
    local clone="$target/hosts/clone" venv="$target/hosts/venv-clone"
    rm -rf "$clone"
    git clone --quiet "$root" "$clone"
    [ ! -e "$clone/hosts/python/src/anthropic_wif/anthropic_wif.wasm" ]
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip uninstall --quiet --yes anthropic-wif 2>/dev/null || true
    (cd "$clone" && CARGO_TARGET_DIR="$target" "$venv/bin/python" -m pip install --quiet \
        --disable-pip-version-check ./hosts/python)
    (cd "$target" && "$venv/bin/python" -c '
import anthropic_wif
needs = anthropic_wif.Provider().requirements({"type": "workload_identity_federation",
    "workload_identity_federation": {"federation_rule_id": "fdrl_x",
    "organization_id": "00000000-0000-4000-8000-000000000000", "identity_token": {"env": "ID"}}})
assert needs.env == ["ID"], needs
print("pip install ./hosts/python from a clone: the component loads")')
}

run_js() {
    cp "$wasm" hosts/js/anthropic_wif.wasm
    (cd hosts/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test)
}

if [ "$which" = all ] || [ "$which" = python ]; then run_python; fi
if [ "$which" = all ] || [ "$which" = js ]; then run_js; fi
