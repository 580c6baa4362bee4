#!/usr/bin/env bash
# The glasses loop's latency on the bundled demo recording (BENCHMARKS.md "Glasses loop"): `flint glasses --json`
# at the recording's own pace (so OCR started at speech start has the speech's length to run, as on the device),
# then per stage the mean over the turns of each run, in ms from the moment the detector declared the end of speech.
# Side by side, run for run, the same loop assembled from the peers (bench/glasses_peer.py: onnxruntime Silero,
# rapidocr-onnxruntime, faster-whisper, llama-server on the same GGUF at Q8_0) on the same recording and models,
# and the ratio of the mean speech end -> first token (issue 17's goal: Flint at most 0.8x the peers').
# Usage: bench/glasses.sh [runs=3] [threads=2]       (needs scripts/setup.sh's models/ and target/release;
#        PEER=0 skips the peers)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${1:-3}"; THREADS="${2:-2}"
BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS="${FLINT_MODELS:-$ROOT/models}"
REC="$ROOT/.cache/demo-recording"
OUT="$ROOT/bench/out/glasses"
CACHE="${MODELS_CACHE:-$ROOT/.cache/models}"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
PEER="${PEER:-1}"
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl
if [ "$PEER" = 1 ]; then
  bash "$ROOT/bench/build_llama.sh" >&2
  PY="$(bash "$ROOT/bench/peer_glasses_env.sh")"
  GGUF="$CACHE/qwen2.5-coder-0.5b-instruct.q8_0.gguf"
  # The answer model's GGUF at Q8_0 (Flint's answer.flint is the same GGUF at q8: 676 MB against 676 MB).
  [ -f "$GGUF" ] || "$LLAMA_DIR/bin/llama-quantize" --allow-requantize \
    "$CACHE/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" "$GGUF.tmp" Q8_0 >/dev/null 2>&1
  [ -f "$GGUF" ] || mv "$GGUF.tmp" "$GGUF"
  PORT="${PORT:-18091}"
  "$LLAMA_DIR/bin/llama-server" -m "$GGUF" -t "$THREADS" -c 4096 -np 1 --host 127.0.0.1 --port "$PORT" \
    > "$OUT/llama-server.log" 2>&1 &
  SRV=$!
  trap 'kill $SRV 2>/dev/null || true' EXIT
  for _ in $(seq 120); do curl -sf "127.0.0.1:$PORT/health" >/dev/null && break; sleep 1; done
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  "$BIN" glasses --models "$MODELS" --recording "$REC" --speed real --display "png:$OUT/frames" --json \
    -t "$THREADS" > "$OUT/real-$i.jsonl"
  if [ "$PEER" = 1 ]; then
    "$PY" "$ROOT/bench/glasses_peer.py" --recording "$REC" --models "$MODELS" --server "http://127.0.0.1:$PORT" \
      --threads "$THREADS" > "$OUT/peer-$i.jsonl"
  fi
done
for i in $(seq "$RUNS"); do
  "$BIN" glasses --models "$MODELS" --recording "$REC" --speed max --display "png:$OUT/frames" --json \
    -t "$THREADS" > "$OUT/max-$i.jsonl"
done
python3 - "$OUT" "$RUNS" <<'PY'
import json, os, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
keys = ["asr_ms", "ocr_ms", "encode_done_ms", "first_token_ms", "first_pixel_ms", "answer_done_ms"]
mean = lambda rows, k: statistics.mean(r[k] for r in rows)
flint_real = [json.loads(l) for i in range(1, runs + 1) for l in open(f"{out}/real-{i}.jsonl")]
flint_real = [e for e in flint_real if e["event"] == "timings"]
if os.path.exists(f"{out}/peer-1.jsonl"):
    peer = [json.loads(l) for i in range(1, runs + 1) for l in open(f"{out}/peer-{i}.jsonl")]
    peer = [e for e in peer if e["event"] == "timings"]
    for e in peer:
        print(f"  peer turn {e['turn']}: heard {e['transcript']!r}, answered {e['answer'][:60]!r}")
    pk = [k for k in keys if k != "first_pixel_ms"]
    print(f"peers (faster-whisper + rapidocr/onnxruntime + llama-server): {len(peer)} turns over {runs} runs")
    for turn in sorted({r["turn"] for r in peer}):
        rs = [r for r in peer if r["turn"] == turn]
        print(f"  turn {turn}: " + ", ".join(f"{k[:-3]} {mean(rs, k):.0f}" for k in pk))
    print("  all turns: " + ", ".join(f"{k[:-3]} {mean(peer, k):.0f}" for k in pk))
    f, p = mean(flint_real, "first_token_ms"), mean(peer, "first_token_ms")
    print(f"speech end -> first token, mean over all turns at the recording's pace: flint {f:.0f} ms, "
          f"peers {p:.0f} ms, ratio {f / p:.2f}")
for speed in ["real", "max"]:
    rows = []
    for i in range(1, runs + 1):
        for line in open(f"{out}/{speed}-{i}.jsonl"):
            e = json.loads(line)
            if e["event"] == "timings":
                rows.append(e)
            if e["event"] == "answer":
                print(f"  {speed} run {i} turn {e['turn']}: {e['text'][:70]!r}")
    print(f"flint --speed {speed}: {len(rows)} turns over {runs} runs")
    for turn in sorted({r["turn"] for r in rows}):
        rs = [r for r in rows if r["turn"] == turn]
        print(f"  turn {turn}: " + ", ".join(
            f"{k[:-3]} {statistics.mean(r[k] for r in rs):.0f}" for k in keys))
    print("  all turns: " + ", ".join(
        f"{k[:-3]} {statistics.mean(r[k] for r in rows):.0f} (sd {statistics.pstdev([r[k] for r in rows]):.0f})"
        for k in keys))
PY
