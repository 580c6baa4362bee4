#!/usr/bin/env bash
# Contemplating mode, measured (issue 9): N agents sharing one P-token prompt, G tokens each, against one agent on
# the same prompt, interleaved round by round at 1 thread. Prints each run's prefill / decode / total seconds (the
# means `flint bench --agents` reports over its reps) and the ratios of the means.
# Usage: bench/agents.sh [--rounds R] [--agents N] [-p P] [-n G] [--models "smollm2-135m.q4 qwen3moe-rand.q4"]
# Env: FLINT_BIN (default <repo>/target/release/flint), MODELS_DIR (default <repo>/.cache/models).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
ROUNDS=3; N=4; P=256; G=64; MODELS="smollm2-135m.q4 qwen3moe-rand.q4"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --agents) N="$2"; shift 2 ;;
    -p) P="$2"; shift 2 ;;
    -n) G="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--agents N] [-p P] [-n G] [--models LIST]" >&2; exit 2 ;;
  esac
done
# mean LABEL TEXT: the mean flint bench printed after "LABEL:".
mean() { sed -n "s/^$1: \([0-9.]*\) .*/\1/p" <<<"$2" | head -n1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $FLINT_BIN bench -m MODEL -p $P -n $G -t 1 -r 2 --agents 1|$N   ($ROUNDS rounds, interleaved)"
for m in $MODELS; do
  f="$MODELS_DIR/$m.flint"
  [ -f "$f" ] || { echo "error: $f missing: run bench/prepare_models.sh" >&2; exit 1; }
  declare -A sum=()
  for r in $(seq "$ROUNDS"); do
    for a in 1 "$N"; do
      o="$("$FLINT_BIN" bench -m "$f" -p "$P" -n "$G" -t 1 -r 2 --agents "$a")"
      for k in prefill decode total; do
        v="$(mean "$k" "$o")"; sum[$a.$k]="$(python3 -c "print(${sum[$a.$k]:-0} + $v)")"
        printf '%s round %s agents %s %s %s s\n' "$m" "$r" "$a" "$k" "$v"
      done
    done
  done
  python3 - "$m" "$N" "$ROUNDS" "${sum[1.prefill]}" "${sum[1.decode]}" "${sum[1.total]}" \
    "${sum[$N.prefill]}" "${sum[$N.decode]}" "${sum[$N.total]}" <<'PY'
import sys
m, n, r = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
one = [float(x) / r for x in sys.argv[4:7]]
many = [float(x) / r for x in sys.argv[7:10]]
print(f"| {m} | 1 agent: prefill {one[0]:.3f} s, decode {one[1]:.3f} s, total {one[2]:.3f} s "
      f"| {n} agents: prefill {many[0]:.3f} s, decode {many[1]:.3f} s, total {many[2]:.3f} s "
      f"| total {many[2] / one[2]:.2f}x, decode-only {many[1] / one[1]:.2f}x |")
PY
  unset sum
done
