# Sourced by bench/prepare_mtmd.sh and bench/mtmd.sh: where the Muse Glimmer / mtmd comparison finds its tools and
# files. Each can be set in the environment; ROOT is the repository.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
FLINT_QUANTIZE="${FLINT_QUANTIZE:-$ROOT/target/release/flint-quantize}"
VENV="${TORCH_VENV:-$ROOT/.cache/torchenv}"
[ -f "$LLAMA_DIR/TREE" ] || { echo "error: $LLAMA_DIR/TREE missing: run bench/build_llama.sh" >&2; exit 1; }
TREE="$(cat "$LLAMA_DIR/TREE")"
