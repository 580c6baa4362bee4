#!/usr/bin/env bash
# Before/after: two Flint binaries on the same files, interleaved sample by sample (`flint bench -r 1`, so both
# report one run per sample), at 1 thread (or -t T). Prints the mean and standard deviation of pp and tg for each, and
# new/old. Use it to check that a change made nothing slower.
# Usage: bench/regress.sh OLD_FLINT NEW_FLINT [--samples N] [--models "smollm2-135m.q4 ..."] [-d DEPTH] [-t T]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
OLD="$1"; NEW="$2"; shift 2
N=6; MODELS="smollm2-135m.q8 smollm2-135m.q4 qwen3moe-rand.q8 qwen3moe-rand.q4"; DEPTH=0; T=1
while [ $# -gt 0 ]; do
  case "$1" in
    --samples) N="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    -d) DEPTH="$2"; shift 2 ;;
    -t) T="$2"; shift 2 ;;
    *) echo "usage: $0 OLD NEW [--samples N] [--models LIST] [-d DEPTH] [-t T]" >&2; exit 2 ;;
  esac
done
num() { sed -n "s/^$1: \([0-9.]*\).*/\1/p" <<<"$2" | head -n1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: $T"
echo "| model | old pp128 | new pp128 | new/old | old tg64 | new tg64 | new/old |"
echo "|---|---|---|---|---|---|---|"
for m in $MODELS; do
  f="$MODELS_DIR/$m.flint"
  rec=""
  for i in $(seq "$N"); do
    for who in old new; do
      bin="$OLD"; [ "$who" = new ] && bin="$NEW"
      extra=(); [ "$DEPTH" != 0 ] && extra=(-d "$DEPTH")
      o="$("$bin" bench -m "$f" -p 128 -n 64 -t "$T" -r 1 "${extra[@]}")"
      rec+="$who $(num pp128 "$o") $(num tg64 "$o")"$'\n'
    done
  done
  python3 -c '
import sys, statistics as st
rows = [l.split() for l in sys.stdin.read().splitlines() if l.strip()]
def col(w, i): return [float(r[i]) for r in rows if r[0] == w]
def f(xs): return f"{st.mean(xs):.1f} ± {st.stdev(xs):.1f}"
m = sys.argv[1]
pp = (col("old", 1), col("new", 1)); tg = (col("old", 2), col("new", 2))
print(f"| {m} | {f(pp[0])} | {f(pp[1])} | {st.mean(pp[1]) / st.mean(pp[0]):.3f} | {f(tg[0])} | {f(tg[1])} | {st.mean(tg[1]) / st.mean(tg[0]):.3f} |")
' "$m" <<<"$rec"
done
