#!/usr/bin/env bash
# Distilled experts: uniform types against `--experts auto` at the same size, scored on held-out text.
#
# For each model (SmolLM2-135M, dense: mixed per matrix; the bench MoE: mixed per expert; the same MoE with routers
# skewed to a Zipf(0.5) expert popularity, bench/gen_moe.py --skew 0.5, made here if missing), from its float .flint:
#   q4        uniform q4                                      (4.5 bits/weight blocks)
#   q4m       uniform q4m                                     (5.0 bits/weight blocks: q4 with an offset)
#   auto@q4   --experts auto (each expert/matrix q2m, q4 or q8) within uniform q4's bits per weight
#   auto@q4m  the same within the q4m file's bits per weight
#   q4m+auto  q4m base (levels q2m, q4m, q8) within 0.5 bits/weight more than uniform q4m
# Statistics (importance, routing) come from bench/calibration.txt (--imatrix-text); KL and top-1 against the float
# file are measured on bench/heldout.txt, which the choice never saw. Results: one line per file, from its report.
# Usage: bench/mix.sh [--models "smollm2-135m qwen3moe-rand"] [--threads N]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
USAGE=bench/mix.sh
# shellcheck source=bench/mix_common.sh
. "$ROOT/bench/mix_common.sh"
[ -x "$FQ" ] || (cd "$ROOT" && cargo build --release -p flint-quantize -p flint-cli)
q() {  # MODEL NAME ARGS...: quantize, print the report's figures
  local m="$1" name="$2"; shift 2
  local dst="$OUT/$m.$name.flint"
  if [ -f "$dst" ] && [ "$dst" -nt "$FQ" ]; then   # made by this flint-quantize already
    "$FLINT" info "$dst" --meta quantization | python3 "$ROOT/bench/mix_row.py" "$m" "$name"; return 0
  fi
  "$FQ" quantize "$(src_of "$m")" -o "$dst" --calib "$ROOT/bench/heldout.txt" \
    --imatrix-text "$ROOT/bench/calibration.txt" -t "$THREADS" "$@" > "$dst.log" 2>&1 \
    || { echo "error: $m $name failed, see $dst.log" >&2; return 1; }
  "$FLINT" info "$dst" --meta quantization | python3 "$ROOT/bench/mix_row.py" "$m" "$name"
}
echo "machine: $(uname -m), $(nproc) cores; $(date -u +%F)"
if [[ " $MODELS " == *" qwen3moe-skew "* ]] && [ ! -f "$MODELS_DIR/qwen3moe-skew.f16.flint" ]; then
  python3 "$ROOT/bench/gen_moe.py" --out-dir "$MODELS_DIR" --skew 0.5 > /dev/null
  "$FQ" import "$MODELS_DIR/qwen3moe-skew" -o "$MODELS_DIR/qwen3moe-skew.f16.flint" --dtype f16 > /dev/null
fi
for m in $MODELS; do
  [ -f "$(src_of "$m")" ] || { echo "error: $(src_of "$m") missing: run bench/prepare_models.sh" >&2; exit 1; }
  q "$m" q4 --weights q4
  q "$m" q4m --weights q4m
  bpw() { "$FLINT" info "$1" --meta quantization | python3 -c "import json,sys; print(json.load(sys.stdin)['bits_per_weight'] + $2)"; }
  q "$m" auto@q4 --weights q4 --experts auto --target-bpw "$(bpw "$OUT/$m.q4.flint" 0)"
  q "$m" auto@q4m --weights q4 --experts auto --target-bpw "$(bpw "$OUT/$m.q4m.flint" 0)"
  q "$m" q4m+auto --weights q4m --experts auto --target-bpw "$(bpw "$OUT/$m.q4m.flint" 0.5)"
done
