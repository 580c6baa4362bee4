#!/usr/bin/env bash
# The glasses loop's latency on the bundled demo recording (BENCHMARKS.md "Glasses loop"): `flint glasses --json`
# at the recording's own pace (so OCR started at speech start has the speech's length to run, as on the device),
# then per stage the mean over the turns of each run, in ms from the moment the detector declared the end of speech.
# Usage: bench/glasses.sh [runs=3] [threads=2]       (needs scripts/setup.sh's models/ and target/release)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-3}"; THREADS="${2:-2}"
BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS="${FLINT_MODELS:-$ROOT/models}"
REC="$ROOT/.cache/demo-recording"
OUT="$ROOT/bench/out/glasses"
mkdir -p "$OUT"
for speed in real max; do
  for i in $(seq "$RUNS"); do
    "$BIN" glasses --models "$MODELS" --recording "$REC" --speed "$speed" --display "png:$OUT/frames" --json \
      -t "$THREADS" > "$OUT/$speed-$i.jsonl"
  done
done
python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
keys = ["asr_ms", "ocr_ms", "encode_done_ms", "first_token_ms", "first_pixel_ms", "answer_done_ms"]
for speed in ["real", "max"]:
    rows = []
    for i in range(1, runs + 1):
        for line in open(f"{out}/{speed}-{i}.jsonl"):
            e = json.loads(line)
            if e["event"] == "timings":
                rows.append(e)
            if e["event"] == "answer":
                print(f"  {speed} run {i} turn {e['turn']}: {e['text'][:70]!r}")
    print(f"--speed {speed}: {len(rows)} turns over {runs} runs")
    for turn in sorted({r["turn"] for r in rows}):
        rs = [r for r in rows if r["turn"] == turn]
        print(f"  turn {turn}: " + ", ".join(
            f"{k[:-3]} {statistics.mean(r[k] for r in rs):.0f}" for k in keys))
    print("  all turns: " + ", ".join(
        f"{k[:-3]} {statistics.mean(r[k] for r in rows):.0f} (sd {statistics.pstdev([r[k] for r in rows]):.0f})"
        for k in keys))
PY
