#!/usr/bin/env bash
# Runs the test suite for aarch64-unknown-linux-gnu under qemu-user, once per CPU model:
#   max        — NEON + dotprod + i8mm + fp16 + SVE: every NEON kernel path runs;
#   cortex-a53 — plain Armv8.0 NEON, none of those: the fallback paths run.
# Builds the tests once (cross, test profile), then runs them on each CPU. Child processes the tests spawn (the
# `flint` binary) must run under the same qemu: tests read FLINT_TEST_RUNNER and prefix commands with it
# (see docs/TARGETS.md).
#
# Usage: scripts/test-aarch64.sh [cargo test args...]        default: --workspace
#   FLINT_QEMU_CPUS="max cortex-a53"   CPU models to run, in order (e.g. FLINT_QEMU_CPUS=cortex-a53 for one run;
#                                      qemu properties may follow a model: "max,sve=off")
#   QEMU=qemu-aarch64-static           the qemu-user binary
# Example: scripts/test-aarch64.sh -p flint-targets -p flint-kernels
set -euo pipefail
cd "$(dirname "$0")/.."

triple=aarch64-unknown-linux-gnu
qemu=${QEMU:-qemu-aarch64-static}
cpus=${FLINT_QEMU_CPUS:-max cortex-a53}
[ "$#" -gt 0 ] || set -- --workspace

command -v "$qemu" >/dev/null || { echo "test-aarch64: $qemu not found: run scripts/install-system.sh" >&2; exit 2; }
command -v aarch64-linux-gnu-gcc >/dev/null || { echo "test-aarch64: cross gcc missing: run scripts/install-system.sh" >&2; exit 2; }

start=$(date +%s)
echo "== build tests for $triple: cargo test --target $triple --no-run $*"
cargo test --target "$triple" --no-run "$@"
# Tests that spawn `flint` (flint-tests) need the aarch64 binary in target/$triple/debug/. Cargo builds it within
# `cargo test` when flint-cli itself has integration tests (runtime/cli/tests/) and is selected; otherwise build it
# here. This separate build resolves features without dev-dependencies, so it recompiles much of the tree.
if [ ! -d runtime/cli/tests ] || ! { [[ " $* " == *" --workspace "* ]] || [[ " $* " == *flint-cli* ]]; }; then
  case " $* " in
    *" --workspace "* | *flint-tests* | *flint-cli*) cargo build --target "$triple" --profile test -p flint-cli --bin flint ;;
  esac
fi
echo "== built in $(( $(date +%s) - start )) s"

status=0
for cpu in $cpus; do
  runner="$qemu -cpu $cpu"
  t0=$(date +%s)
  echo "== run under: $runner"
  if CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$runner" FLINT_TEST_RUNNER="$runner" FLINT_QEMU_CPU="$cpu" \
    cargo test --no-fail-fast --target "$triple" "$@"; then
    echo "== $cpu: passed in $(( $(date +%s) - t0 )) s"
  else
    echo "== $cpu: FAILED after $(( $(date +%s) - t0 )) s" >&2
    status=1
  fi
done
echo "== test-aarch64 total $(( $(date +%s) - start )) s"
exit "$status"
