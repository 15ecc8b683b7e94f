#!/usr/bin/env bash
# The official Python SDK against wif-host: the `#[ignore]`d tests, which
# install anthropic==2.10.0 from PyPI into target/sdk-venv (once; reused
# afterwards) and drive it against loopback stand-ins (the sidecar and the
# gateway). Needs python3 with venv and, the first time, access to PyPI.
# `.ci/run` runs the same tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -- --ignored --nocapture
