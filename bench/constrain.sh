#!/usr/bin/env bash
# Constraint overhead (issue 15): `flint run --json-schema` on SmolLM2 q4 for each schema of the tests
# (tests/schemas), against the same prompt unconstrained, interleaved. Reports per schema the decode tok/s of both
# (means over the rounds), the time the grammar took per token (masking and advancing: Flint's own count) and
# that time's share of a decode step. The goal: at most 10% of decode time.
# Usage: bench/constrain.sh [--rounds R] [-t THREADS]
# Env: FLINT_BIN (default <repo>/target/release/flint), MODELS_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
MODEL="$MODELS_DIR/smollm2-135m.q4.flint"
ROUNDS=3; T=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    -t) T="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [-t THREADS]" >&2; exit 2 ;;
  esac
done
[ -e "$MODEL" ] || { echo "error: $MODEL missing: run bench/prepare_models.sh" >&2; exit 1; }
declare -A PROMPT=(
  [person]="Describe a person called Ada, aged 36, as JSON."
  [order]="Order two A1 and one C3, express, as JSON."
  [reading]="Report the weather sensor: 21.5 C, humidity 40, floor 2, as JSON."
  [answer]="How far is the station? Answer as JSON."
)
LOG="$(mktemp)"; trap 'rm -f "$LOG"' EXIT
# decode tok/s and tokens from flint run's last stderr line; the constraint's time from its line.
field() { sed -n "s/.*decode \([0-9]*\) tok, \([0-9.]*\) tok\/s.*/\1 \2/p" "$LOG" | tail -1; }
printf "%-8s %8s %10s %10s %12s %8s\n" schema tokens "free tok/s" "json tok/s" "grammar us/t" share
for s in person order reading answer; do
  sum_f=0; sum_c=0; sum_us=0; toks=0
  for r in $(seq "$ROUNDS"); do
    "$FLINT_BIN" run -m "$MODEL" -t "$T" --chat -p "${PROMPT[$s]}" --json-schema "$ROOT/tests/schemas/$s.json" \
      -n 256 >/dev/null 2>"$LOG"
    read -r n c <<<"$(field)"
    us=$(sed -n 's/.*(\([0-9.]*\) us per token).*/\1/p' "$LOG" | tail -1)
    # The same prompt and length, free: decode per token at the same depth.
    "$FLINT_BIN" run -m "$MODEL" -t "$T" --chat -p "${PROMPT[$s]}" -n "$n" >/dev/null 2>"$LOG"
    read -r _ f <<<"$(field)"
    sum_f=$(echo "$sum_f + $f" | bc -l); sum_c=$(echo "$sum_c + $c" | bc -l); sum_us=$(echo "$sum_us + $us" | bc -l)
    toks=$n
  done
  f=$(echo "$sum_f / $ROUNDS" | bc -l); c=$(echo "$sum_c / $ROUNDS" | bc -l); us=$(echo "$sum_us / $ROUNDS" | bc -l)
  share=$(echo "$us / (1000000 / $f) * 100" | bc -l)
  printf "%-8s %8d %10.1f %10.1f %12.1f %7.1f%%\n" "$s" "$toks" "$f" "$c" "$us" "$share"
done
