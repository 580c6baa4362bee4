#!/usr/bin/env bash
# Distilled experts against llama.cpp at its best: Q4_K_M made with `llama-imatrix` on the same calibration text,
# against Flint's `--experts auto` at the same file size, all scored by one evaluator (bench/kl_eval.py: `flint
# logits` on bench/heldout.txt, KL and top-1 against the float file). llama.cpp's file is imported into a float
# .flint (its quantized values, dequantized exactly) for the scoring; its size is its GGUF's.
# Rows per model: q4 (uniform), auto@q4 (mix at q4's size), llama.cpp Q4_K_M+imatrix, auto@q4km (mix at its size).
# Needs bench/prepare_models.sh (the GGUFs and float .flint files) and bench/mix.sh (the q4 files) to have run.
# Usage: bench/q4km.sh [--models "smollm2-135m qwen3moe-rand qwen3moe-skew"] [--threads N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${LLAMA_BIN:-$ROOT/.cache/llama.cpp/bin}"
USAGE=bench/q4km.sh
# shellcheck source=bench/mix_common.sh
. "$ROOT/bench/mix_common.sh"
echo "machine: $(uname -m), $(nproc) cores; $(date -u +%F); llama.cpp $(cat "$ROOT/.cache/llama.cpp/VERSION" 2>/dev/null)"
for m in $MODELS; do
  g="$(gguf_of "$m")"; base="$OUT/$m"
  for f in "$g" "$(src_of "$m")" "$base.q4.flint"; do
    [ -f "$f" ] || { echo "error: $f missing: run bench/prepare_models.sh and bench/mix.sh" >&2; exit 1; }
  done
  if [ ! -f "$base.imatrix.gguf" ]; then
    "$BIN/llama-imatrix" -m "$g" -f "$ROOT/bench/calibration.txt" -c 256 -t "$THREADS" -o "$base.imatrix.gguf.tmp.gguf" \
      > "$base.imatrix.log" 2>&1 || { echo "error: llama-imatrix failed, see $base.imatrix.log" >&2; exit 1; }
    mv "$base.imatrix.gguf.tmp.gguf" "$base.imatrix.gguf"
  fi
  if [ ! -f "$base.q4_k_m.gguf" ]; then
    "$BIN/llama-quantize" --imatrix "$base.imatrix.gguf" "$g" "$base.q4_k_m.gguf.tmp" Q4_K_M > "$base.q4_k_m.log" 2>&1 \
      || { echo "error: llama-quantize failed, see $base.q4_k_m.log" >&2; exit 1; }
    mv "$base.q4_k_m.gguf.tmp" "$base.q4_k_m.gguf"
  fi
  [ -f "$base.q4_k_m.f32.flint" ] || "$FQ" import "$base.q4_k_m.gguf" -o "$base.q4_k_m.f32.flint" --dtype f32 >/dev/null
  size=$(stat -c %s "$base.q4_k_m.gguf")
  b4=$("$FLINT" info "$base.q4.flint" --meta quantization | python3 -c "import json,sys; print(json.load(sys.stdin)['bits_per_weight'])")
  for v in "auto@q4:--target-bpw $b4" "auto@q4km:--target-size $size"; do
    name="${v%%:*}"; dst="$base.$name.flint"
    if [ ! -f "$dst" ] || [ "$FQ" -nt "$dst" ]; then
      # shellcheck disable=SC2086  # the target flags are two words
      "$FQ" quantize "$(src_of "$m")" -o "$dst" --weights q4 --experts auto ${v#*:} --calib "$ROOT/bench/heldout.txt" \
        --imatrix-text "$ROOT/bench/calibration.txt" -t "$THREADS" > "$dst.log" 2>&1 \
        || { echo "error: $m $name failed, see $dst.log" >&2; exit 1; }
    fi
  done
  echo "== $m (Q4_K_M GGUF: $size bytes)"
  python3 "$ROOT/bench/kl_eval.py" --ref "$(src_of "$m")" --text "$ROOT/bench/heldout.txt" --vocab-gguf "$g" \
    --threads "$THREADS" "q4=$base.q4.flint" "auto@q4=$base.auto@q4.flint" \
    "llama.cpp-q4_k_m=$base.q4_k_m.f32.flint:$base.q4_k_m.gguf" "auto@q4km=$base.auto@q4km.flint"
done
