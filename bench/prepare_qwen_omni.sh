#!/usr/bin/env bash
# Sets up the Qwen3-Omni comparison with llama.cpp's mtmd (issue 14; timed by bench/qwen_omni.sh):
#   1. the torch venv of bench/torch_venv.sh ($TORCH_VENV, default <repo>/.cache/torchenv);
#   2. the random Qwen3-Omni-shaped folder qwen-omni-rand/ (bench/gen_qwen_omni.py: the released towers, a 16-layer
#      MoE decoder; the hub's layout, `thinker.*` tensors under a `qwen3_omni_moe` config);
#   3. the llama.cpp files, by the vendored tree's convert_hf_to_gguf.py through bench/llama_convert.py (its patches
#      and why: that file), then llama-quantize for the text models:
#        qwen-omni-rand.f16.gguf -> qwen-omni-rand.q8_0.gguf                 (text, as the converter writes it)
#        qwen-omni-rand-deepstack.f16.gguf -> qwen-omni-rand-deepstack.q8_0.gguf  (text with the deepstack inputs)
#        mmproj-qwen-omni-rand-vision.q8_0.gguf, mmproj-qwen-omni-rand-audio.q8_0.gguf (one tower each, q8_0)
#   4. the Flint files: qwen-omni-rand.f16.flint (flint-quantize import --dtype f16) and qwen-omni-rand.q8.flint
#      (flint-quantize quantize --weights q8: decoder and towers q8).
# Idempotent (each output skipped when present). Needs bench/build_llama.sh to have run (LLAMA_DIR) and a release
# build of flint-quantize (FLINT_QUANTIZE, default <repo>/target/release/flint-quantize).
set -euo pipefail
source "$(dirname "$0")/mtmd_env.sh"
FQ="$FLINT_QUANTIZE"
[ -x "$FQ" ] || { echo "error: $FQ missing: cargo build --release -p flint-quantize" >&2; exit 1; }
source "$ROOT/bench/torch_venv.sh"

"$VENV/bin/python" "$ROOT/bench/gen_qwen_omni.py" --out-dir "$MODELS_DIR"
HF="$MODELS_DIR/qwen-omni-rand"
M="$MODELS_DIR"
convert "$M/qwen-omni-rand.f16.gguf" --outtype f16
convert "$M/qwen-omni-rand-deepstack.f16.gguf" --omni-deepstack --outtype f16
convert "$M/mmproj-qwen-omni-rand-vision.q8_0.gguf" --omni-part vision --mmproj --outtype q8_0
convert "$M/mmproj-qwen-omni-rand-audio.q8_0.gguf" --omni-part audio --mmproj --outtype q8_0
for t in qwen-omni-rand qwen-omni-rand-deepstack; do
  [ -f "$M/$t.q8_0.gguf" ] && continue
  "$LLAMA_DIR/bin/llama-quantize" "$M/$t.f16.gguf" "$M/$t.q8_0.gguf.tmp" Q8_0 2 > "$M/$t.q8_0.gguf.log" 2>&1 \
    || { echo "error: llama-quantize $t failed, see $M/$t.q8_0.gguf.log" >&2; exit 1; }
  mv "$M/$t.q8_0.gguf.tmp" "$M/$t.q8_0.gguf"
done

F16="$M/qwen-omni-rand.f16.flint"
[ -f "$F16" ] || "$FQ" import "$HF" -o "$F16" --dtype f16
Q8="$M/qwen-omni-rand.q8.flint"
[ -f "$Q8" ] || "$FQ" quantize "$F16" -o "$Q8" --weights q8 --calib "$ROOT/bench/calibration.txt" --no-imatrix -t 2
echo "ready: $M/{qwen-omni-rand{,-deepstack}.q8_0.gguf,mmproj-qwen-omni-rand-{vision,audio}.q8_0.gguf,qwen-omni-rand.q8.flint}"
