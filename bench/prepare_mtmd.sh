#!/usr/bin/env bash
# Sets up the Muse Glimmer vision-tower comparison with llama.cpp's mtmd (issue 12; timed by bench/mtmd.sh):
#   1. a venv with torch and transformers for llama.cpp's converter ($TORCH_VENV, default <repo>/.cache/torchenv;
#      bench/torch_venv.sh).
#      PyPI's Linux torch wheel is a CUDA build: `import torch` loads libcudart, cuBLAS, cuDNN, NCCL, ... even on
#      a CPU-only machine, so the CUDA runtime wheels are installed too (about 4.4 GB in all); triton and
#      cuda-bindings are left out (torch imports and runs on the CPU without them);
#   2. the random Muse Glimmer HF folder glimmer-rand/ (bench/gen_muse.py --glimmer: vision 1024 x 24 layers,
#      patch 14, as the Muse bench model; a 2-layer dense decoder);
#   3. the llama.cpp files, by the vendored tree's convert_hf_to_gguf.py (bench/llama_convert.py: the one patch
#      is the unknown pre-tokenizer hash of the made-up bench tokenizer): glimmer-rand.f16.gguf (text),
#      mmproj-glimmer-rand.f16.gguf and mmproj-glimmer-rand.q8_0.gguf (the converter's own q8_0);
#   4. the Flint files: glimmer-rand.f16.flint (flint-quantize import --dtype f16: towers f16) and
#      glimmer-rand.q8.flint (flint-quantize quantize --weights q8: towers q8).
# Idempotent (each output skipped when present). Needs bench/build_llama.sh to have run (LLAMA_DIR) and a release
# build of flint-quantize (FLINT_QUANTIZE, default <repo>/target/release/flint-quantize).
set -euo pipefail
source "$(dirname "$0")/mtmd_env.sh"
FQ="$FLINT_QUANTIZE"
[ -x "$FQ" ] || { echo "error: $FQ missing: cargo build --release -p flint-quantize" >&2; exit 1; }

source "$ROOT/bench/torch_venv.sh"

"$VENV/bin/python" "$ROOT/bench/gen_muse.py" --glimmer --out-dir "$MODELS_DIR"
HF="$MODELS_DIR/glimmer-rand"

convert "$MODELS_DIR/glimmer-rand.f16.gguf" --outtype f16
convert "$MODELS_DIR/mmproj-glimmer-rand.f16.gguf" --mmproj --outtype f16
convert "$MODELS_DIR/mmproj-glimmer-rand.q8_0.gguf" --mmproj --outtype q8_0

F16="$MODELS_DIR/glimmer-rand.f16.flint"
[ -f "$F16" ] || "$FQ" import "$HF" -o "$F16" --dtype f16
Q8="$MODELS_DIR/glimmer-rand.q8.flint"
[ -f "$Q8" ] || "$FQ" quantize "$F16" -o "$Q8" --weights q8 --calib "$ROOT/bench/calibration.txt" --no-imatrix -t 2
echo "ready: $MODELS_DIR/{glimmer-rand.f16.gguf,mmproj-glimmer-rand.{f16,q8_0}.gguf,glimmer-rand.{f16,q8}.flint}"
