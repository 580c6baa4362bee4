#!/usr/bin/env bash
# Makes every GGUF the llama.cpp side of the benchmark needs, in $MODELS_DIR (default <repo>/.cache/models):
#   smollm2-135m.f32.gguf  smollm2-135m.q8_0.gguf  smollm2-135m.q4_0.gguf   (from the shipped Q4_1 file)
#   qwen3moe-rand.f16.gguf qwen3moe-rand.q8_0.gguf qwen3moe-rand.q4_0.gguf  (+ the HF folder qwen3moe-rand/)
# Quantized files use `llama-quantize --pure` so every matrix, embeddings and lm_head included, is the one
# type (apples to apples with Flint's q8/q4); llama-quantize still keeps 1-D norms in F32 and the MoE
# router (ffn_gate_inp) unquantized, as it always does. The SmolLM2 source is already Q4_1, so its
# F32/Q8_0/Q4_0 files are requantized from it (--allow-requantize); its F32 file is the KL reference.
# Idempotent. Needs bench/build_llama.sh to have run, and the Python packages in bench/requirements.txt.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
BIN="${LLAMA_BIN:-$ROOT/.cache/llama.cpp/bin}"
[ -x "$BIN/llama-quantize" ] || { echo "error: $BIN/llama-quantize missing: run bench/build_llama.sh" >&2; exit 1; }
export MODELS_DIR

bash "$ROOT/bench/fetch_models.sh"
python3 "$ROOT/bench/gen_moe.py" --out-dir "$MODELS_DIR"

# quant SRC DST TYPE [extra flags]: atomic (temp file, then rename), skipped when DST exists.
quant() {
  local src="$1" dst="$2" type="$3"; shift 3
  [ -f "$dst" ] && { echo "have $dst"; return 0; }
  "$BIN/llama-quantize" "$@" "$src" "$dst.tmp" "$type" > "$dst.log" 2>&1 \
    || { echo "error: llama-quantize $* $src $type failed, see $dst.log" >&2; return 1; }
  mv "$dst.tmp" "$dst"
  echo "wrote $dst"
}

S="$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
quant "$S" "$MODELS_DIR/smollm2-135m.f32.gguf" F32 --allow-requantize --pure
quant "$S" "$MODELS_DIR/smollm2-135m.q8_0.gguf" Q8_0 --allow-requantize --pure
quant "$S" "$MODELS_DIR/smollm2-135m.q4_0.gguf" Q4_0 --allow-requantize --pure

M="$MODELS_DIR/qwen3moe-rand.f16.gguf"
quant "$M" "$MODELS_DIR/qwen3moe-rand.q8_0.gguf" Q8_0 --pure
quant "$M" "$MODELS_DIR/qwen3moe-rand.q4_0.gguf" Q4_0 --pure
