#!/usr/bin/env bash
# The official Python SDK against wif-host (issue 11): installs
# anthropic==2.10.0 from PyPI into target/sdk-venv (once; reused afterwards)
# and runs the tests that drive it against loopback stand-ins (the sidecar
# and the gateway). Needs python3
# with venv and, the first time, access to PyPI. Where python3 is absent the
# tests print "SKIPPED: python3 is not installed" and pass; nothing else is
# skipped. `cargo test` runs the same tests; this script runs only them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --test sdk_python --test proxy_cli -- --nocapture
