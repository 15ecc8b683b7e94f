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
    local venv="$target/hosts/venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    cp "$wasm" hosts/python/src/anthropic_wif/anthropic_wif.wasm
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "./hosts/python[test]"
    local status=0
    (cd hosts/python && "$venv/bin/python" -m pytest -q -p no:cacheprovider) || status=$?
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no test" >&2
    fi
    return "$status"
}

run_js() {
    cp "$wasm" hosts/js/anthropic_wif.wasm
    (cd hosts/js && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && npm test)
}

if [ "$which" = all ] || [ "$which" = python ]; then run_python; fi
if [ "$which" = all ] || [ "$which" = js ]; then run_js; fi
