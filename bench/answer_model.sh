#!/usr/bin/env bash
# Which model answers on the glasses (issue 13 item 4): SmolLM2-135M-Instruct against Qwen2.5-Coder-0.5B-Instruct,
# both as Flint q8 files from their real GGUFs (bench/fetch_models.sh), on short questions a wearer asks, each with
# the words its answer must contain (any of them, case-insensitive). Greedy, 48 tokens at most, 2 threads;
# reports per model the questions answered, the mean time to first token (prompt processing) and the mean wall
# time per answer.
# Usage: bench/answer_model.sh [-t THREADS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${BIN:-$ROOT/target/release}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
T=2
[ "${1:-}" = "-t" ] && T="$2"
CAL="$ROOT/bench/calibration.txt"
prep() {  # prep NAME GGUF: GGUF -> f16 -> q8 (plain rounding)
  local q8="$MODELS_DIR/$1.q8.flint"
  if [ ! -f "$q8" ]; then
    "$BIN/flint-quantize" import "$2" -o "$MODELS_DIR/$1.f16.flint" --dtype f16 >/dev/null
    "$BIN/flint-quantize" quantize "$MODELS_DIR/$1.f16.flint" -o "$q8" --weights q8 --no-imatrix --calib "$CAL" >/dev/null
    rm -f "$MODELS_DIR/$1.f16.flint"
  fi
  echo "$q8"
}
SMOL=$(prep smollm2-135m-instruct "$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf")
QWEN=$(prep qwen2.5-coder-0.5b-instruct "$MODELS_DIR/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
QS=(
  "What is the capital of France?|paris"
  "How many legs does a spider have?|eight|8"
  "What colour is the sky on a clear day?|blue"
  "What does a red traffic light mean?|stop"
  "Which planet is known as the red planet?|mars"
  "What is 12 times 3?|36"
  "What do bees make?|honey"
  "At what temperature in Celsius does water boil?|100"
  "What is the opposite of hot?|cold"
  "How many days are in a week?|seven|7"
)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| model | answered | mean prompt tok/s | mean wall s per answer |"
echo "|---|---|---|---|"
for m in "$SMOL" "$QWEN"; do
  ok=0; wall=0; pps=0
  for q in "${QS[@]}"; do
    IFS='|' read -r -a f <<<"$q"
    t0=$(date +%s%N)
    out=$("$BIN/flint" run -m "$m" -t "$T" --chat -p "${f[0]}" -n 48 2>/tmp/am.err)
    t1=$(date +%s%N)
    wall=$(( wall + (t1 - t0) / 1000000 ))
    pps=$(echo "$pps + $(sed -n 's/.*prompt [0-9]* tok, \([0-9.]*\) tok\/s.*/\1/p' /tmp/am.err)" | bc -l)
    hit=no
    for w in "${f[@]:1}"; do grep -qi -- "$w" <<<"$out" && hit=yes; done
    [ "$hit" = yes ] && ok=$((ok + 1))
    echo "  $(basename "$m"): ${f[0]} -> $(tr '\n' ' ' <<<"$out" | cut -c1-90) [$hit]" >&2
  done
  n=${#QS[@]}
  printf "| %s | %d/%d | %.1f | %.2f |\n" "$(basename "$m")" "$ok" "$n" "$(echo "$pps / $n" | bc -l)" "$(echo "$wall / $n / 1000" | bc -l)"
done
