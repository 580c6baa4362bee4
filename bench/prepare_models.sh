#!/usr/bin/env bash
# Makes every GGUF the llama.cpp side of the benchmark needs, in $MODELS_DIR (default <repo>/.cache/models):
#   smollm2-135m.f32.gguf  smollm2-135m.q8_0.gguf  smollm2-135m.q4_0.gguf   (from the shipped Q4_1 file)
#   qwen3moe-rand.f16.gguf qwen3moe-rand.q8_0.gguf qwen3moe-rand.q4_0.gguf  (+ the HF folder qwen3moe-rand/)
# Quantized files use `llama-quantize --pure` so every matrix, embeddings and lm_head included, is the one
# type (apples to apples with Flint's q8/q4); llama-quantize still keeps 1-D norms in F32 and the MoE
# router (ffn_gate_inp) unquantized, as it always does. The SmolLM2 source is already Q4_1, so its
# F32/Q8_0/Q4_0 files are requantized from it (--allow-requantize); its F32 file is the KL reference.
# Then the Flint files from the same sources (see the end). Idempotent. Needs bench/build_llama.sh to have run, and
# the Python packages in bench/requirements.txt.
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

# The Flint side, from the same sources: f32 (SmolLM2, from the same GGUF) or f16 (MoE, from the HF folder) reference
# files, then q8 and q4 with `flint-quantize quantize` (which measures and stores the KL on bench/calibration.txt).
# A quantized file older than the flint-quantize binary is made again, so a changed quantizer is never benchmarked
# through stale files.
FQ="${FLINT_QUANTIZE_BIN:-$ROOT/target/release/flint-quantize}"
if [ ! -x "$FQ" ]; then
  (cd "$ROOT" && cargo build --release -p flint-quantize -p flint-cli)
fi
fimport() {  # SRC DST DTYPE
  [ -f "$2" ] && { echo "have $2"; return 0; }
  "$FQ" import "$1" -o "$2" --dtype "$3" >/dev/null || { echo "error: flint-quantize import $1 failed" >&2; return 1; }
  echo "wrote $2"
}
fquant() {  # SRC DST WEIGHTS
  if [ -f "$2" ] && [ "$2" -nt "$FQ" ]; then echo "have $2"; return 0; fi
  "$FQ" quantize "$1" -o "$2" --weights "$3" --calib "$ROOT/bench/calibration.txt" > "$2.log" 2>&1 \
    || { echo "error: flint-quantize quantize $1 --weights $3 failed, see $2.log" >&2; return 1; }
  echo "wrote $2"
}
fimport "$S" "$MODELS_DIR/smollm2-135m.f32.flint" f32
fimport "$MODELS_DIR/qwen3moe-rand" "$MODELS_DIR/qwen3moe-rand.f16.flint" f16
for q in q8 q4; do
  fquant "$MODELS_DIR/smollm2-135m.f32.flint" "$MODELS_DIR/smollm2-135m.$q.flint" "$q"
  fquant "$MODELS_DIR/qwen3moe-rand.f16.flint" "$MODELS_DIR/qwen3moe-rand.$q.flint" "$q"
done
