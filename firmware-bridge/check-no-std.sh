#!/usr/bin/env bash
# Builds the flint-bridge core for a Cortex-M4F microcontroller: no std, no allocator, no default features.
# Run from anywhere; CI calls it. Needs `rustup target add thumbv7em-none-eabihf` (scripts/install-system.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p flint-bridge --no-default-features --target thumbv7em-none-eabihf "$@"
