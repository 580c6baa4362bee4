# Sourced by bench/prepare_mtmd.sh and bench/prepare_qwen_omni.sh (after bench/mtmd_env.sh): makes $VENV a venv with torch and transformers
# for llama.cpp's converter (and numpy + safetensors for the bench model generators). PyPI's Linux torch wheel is a
# CUDA build: `import torch` loads libcudart, cuBLAS, cuDNN, NCCL, ... even on a CPU-only machine, so the CUDA runtime
# wheels are installed too (about 4.4 GB in all); triton and cuda-bindings are left out (torch imports and runs on the
# CPU without them).
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


# The callers set HF (the folder to convert); `convert` runs llama.cpp's converter (bench/llama_convert.py) on it.
# convert DST ARGS...: atomic (temp file, then rename), skipped when DST exists.
convert() {
  local dst="$1"; shift
  [ -f "$dst" ] && { echo "have $dst"; return 0; }
  "$VENV/bin/python" "$ROOT/bench/llama_convert.py" "$TREE" "$HF" "$@" --outfile "$dst.tmp" > "$dst.log" 2>&1 \
    || { echo "error: convert_hf_to_gguf.py $* failed, see $dst.log" >&2; return 1; }
  mv "$dst.tmp" "$dst"
  echo "wrote $dst"
}
