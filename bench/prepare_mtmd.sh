#!/usr/bin/env bash
# Sets up the Muse Glimmer vision-tower comparison with llama.cpp's mtmd (issue 12; timed by bench/mtmd.sh):
#   1. a venv with torch and transformers for llama.cpp's converter ($TORCH_VENV, default <repo>/.cache/torchenv).
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

if ! "$VENV/bin/python" -c "import torch, transformers" 2>/dev/null; then
  python3 -m venv "$VENV"
  # torch's own pins for torch 2.15.0, less triton and cuda-bindings (not needed to import it or run on the CPU).
  "$VENV/bin/pip" install -q --no-deps torch==2.15.0
  "$VENV/bin/pip" install -q filelock fsspec jinja2 networkx sympy typing_extensions "setuptools>=77.0.3" \
    "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.2.2" \
    nvidia-cudnn-cu13==9.26.0.51 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.7.2
  "$VENV/bin/pip" install -q transformers==5.23.0 numpy safetensors sentencepiece "protobuf<5" pyyaml
fi
"$VENV/bin/python" -c "import torch; assert torch.ones(2, dtype=torch.float16).sum().item() == 2"

python3 "$ROOT/bench/gen_muse.py" --glimmer --out-dir "$MODELS_DIR"
HF="$MODELS_DIR/glimmer-rand"

# convert DST ARGS...: atomic (temp file, then rename), skipped when DST exists.
convert() {
  local dst="$1"; shift
  [ -f "$dst" ] && { echo "have $dst"; return 0; }
  "$VENV/bin/python" "$ROOT/bench/llama_convert.py" "$TREE" "$HF" "$@" --outfile "$dst.tmp" > "$dst.log" 2>&1 \
    || { echo "error: convert_hf_to_gguf.py $* failed, see $dst.log" >&2; return 1; }
  mv "$dst.tmp" "$dst"
  echo "wrote $dst"
}
convert "$MODELS_DIR/glimmer-rand.f16.gguf" --outtype f16
convert "$MODELS_DIR/mmproj-glimmer-rand.f16.gguf" --mmproj --outtype f16
convert "$MODELS_DIR/mmproj-glimmer-rand.q8_0.gguf" --mmproj --outtype q8_0

F16="$MODELS_DIR/glimmer-rand.f16.flint"
[ -f "$F16" ] || "$FQ" import "$HF" -o "$F16" --dtype f16
Q8="$MODELS_DIR/glimmer-rand.q8.flint"
[ -f "$Q8" ] || "$FQ" quantize "$F16" -o "$Q8" --weights q8 --calib "$ROOT/bench/calibration.txt" --no-imatrix -t 2
echo "ready: $MODELS_DIR/{glimmer-rand.f16.gguf,mmproj-glimmer-rand.{f16,q8_0}.gguf,glimmer-rand.{f16,q8}.flint}"
