#!/usr/bin/env bash
# Installs the bundled models of `flint glasses` into a models folder, from what bench/fetch_models.sh fetched:
#   answer.flint          Qwen2.5-Coder-0.5B-Instruct (from its Q4_K_M GGUF: imported, then quantized to q8; the
#                         answer model issue 13 chose over SmolLM2-135M, BENCHMARKS.md "Answer model")
#   whisper-tiny-en/      Whisper tiny.en (CTranslate2)
#   silero_vad_16k.onnx   Silero VAD
#   ppocr/det.onnx, ppocr/rec.onnx   PP-OCRv4
#   onnxruntime/libonnxruntime.so    ONNX Runtime for `--onnx ort` (when fetched: x86_64 hosts)
# Idempotent: an answer.flint that verifies is kept.
# Usage: scripts/bundle-models.sh BIN_DIR MODELS_DIR      (BIN_DIR holds flint and flint-quantize)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$1"; OUT="$2"
CACHE="${MODELS_CACHE:-$ROOT/.cache/models}"
mkdir -p "$OUT/ppocr"
if ! "$BIN/flint" info "$OUT/answer.flint" --verify >/dev/null 2>&1; then
  tmp="$(mktemp -d "$OUT/.answer.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  printf 'The quick brown fox jumps over the lazy dog.\n' > "$tmp/calib.txt"
  "$BIN/flint-quantize" import "$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" -o "$tmp/answer.f16.flint" --dtype f16 >/dev/null
  "$BIN/flint-quantize" quantize "$tmp/answer.f16.flint" -o "$tmp/answer.flint" --weights q8 --no-imatrix \
    --calib "$tmp/calib.txt" >/dev/null
  mv "$tmp/answer.flint" "$OUT/answer.flint"
fi
cp -r "$CACHE/whisper-tiny-en" "$OUT/"
cp "$CACHE/silero_vad_16k.onnx" "$OUT/"
cp "$CACHE/ppocr/det.onnx" "$CACHE/ppocr/rec.onnx" "$OUT/ppocr/"
# ONNX Runtime for `--onnx ort` (fetched on x86_64 hosts only; tract, the default, needs nothing).
if [ -f "$CACHE/onnxruntime/libonnxruntime.so" ]; then
  mkdir -p "$OUT/onnxruntime"
  cp "$CACHE/onnxruntime/libonnxruntime.so" "$OUT/onnxruntime/"
fi
echo "models in $OUT: $(ls "$OUT" | tr '\n' ' ')"
