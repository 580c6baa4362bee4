#!/usr/bin/env bash
# The glasses loop's soak (issue 17, BENCHMARKS.md "Glasses soak"): `flint glasses --loop --speed max` over the
# bundled demo recording, through the whole bridge wire path (`--display sim`: the simulated microcontroller on a
# pty), for DURATION seconds. Every INTERVAL seconds it samples the process's resident memory (VmRSS from
# /proc/PID/status) and the answers given so far; at the end it writes bench/out/soak/rss.csv, an SVG plot
# (docs/soak-rss.svg unless SVG is set) and prints RSS at 5 minutes, at the end, and their ratio.
# Usage: bench/soak.sh [duration_s=3600] [threads=2] [interval_s=10]   (needs scripts/setup.sh's models/ and binary)
#        NICE=19 runs the loop at low priority (the memory figure does not depend on its speed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${1:-3600}"; THREADS="${2:-2}"; INTERVAL="${3:-10}"
BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS="${FLINT_MODELS:-$ROOT/models}"
REC="$ROOT/.cache/demo-recording"
OUT="$ROOT/bench/out/soak"
SVG="${SVG:-$ROOT/docs/soak-rss.svg}"
mkdir -p "$OUT"
rm -f "$OUT/events.jsonl" "$OUT/rss.csv"
nice -n "${NICE:-0}" "$BIN" glasses --models "$MODELS" --recording "$REC" --loop --speed max --display sim --json \
  -t "$THREADS" > "$OUT/events.jsonl" 2> "$OUT/stderr.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
echo "t_s,rss_kib,answers" > "$OUT/rss.csv"
start=$(date +%s)
while :; do
  now=$(date +%s); t=$((now - start))
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$PID/status" 2>/dev/null || true)
  if [ -z "$rss" ]; then echo "flint glasses exited early (see $OUT/stderr.log)" >&2; tail -5 "$OUT/stderr.log" >&2; exit 1; fi
  answers=$(grep -c '"event":"answer"' "$OUT/events.jsonl" || true)
  echo "$t,$rss,$answers" >> "$OUT/rss.csv"
  [ "$t" -ge "$DURATION" ] && break
  sleep "$INTERVAL"
done
kill "$PID"; wait "$PID" 2>/dev/null || true
trap - EXIT
python3 "$ROOT/bench/soak_report.py" "$OUT/rss.csv" "$SVG" "$(uname -m) $(nproc) cores, -t $THREADS, $(git -C "$ROOT" rev-parse --short HEAD)"
