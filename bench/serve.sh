#!/usr/bin/env bash
# Server throughput (issue 15): flint serve against llama-server on the same weights (SmolLM2-135M: Flint's q4
# file and llama.cpp's Q4_0 GGUF of the same source), the same threads and 16 slots, driven by one load generator
# (bench/serve_load.py, the official openai client) at 1, 4 and 16 concurrent streams of 64 tokens each (ignore_eos,
# greedy, a prompt of its own per request). Servers alternate round by round; each round starts the server fresh.
# Prints a JSON line per run and a table of the means.
# Usage: bench/serve.sh [--rounds R] [-t THREADS]
# Env: FLINT_BIN (default <repo>/target/release/flint), LLAMA_DIR (<repo>/.cache/llama.cpp), MODELS_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
ROUNDS=2; T=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    -t) T="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [-t THREADS]" >&2; exit 2 ;;
  esac
done
PY="$("$ROOT/scripts/python-env.sh")"
FLINT_MODEL="$MODELS_DIR/smollm2-135m.q4.flint"
GGUF="$MODELS_DIR/smollm2-135m.q4_0.gguf"
for f in "$FLINT_MODEL" "$GGUF" "$LLAMA_DIR/bin/llama-server"; do
  [ -e "$f" ] || { echo "error: $f missing: run bench/prepare_models.sh and bench/build_llama.sh" >&2; exit 1; }
done
PORT=18431
OUT="$(mktemp)"
trap 'kill $SRV 2>/dev/null || true; rm -f "$OUT"' EXIT
wait_up() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: server on $PORT did not come up" >&2; exit 1
}
# One short request before measuring, retried: llama-server answered /health before it took its first request.
warm_up() {
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' \
      -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}' >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "error: server on $PORT answered no request" >&2; exit 1
}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flint: $FLINT_BIN serve -m $FLINT_MODEL --threads $T --parallel 16"
echo "llama: $LLAMA_DIR/bin/llama-server -m $GGUF -t $T -tb $T -np 16 -c 16384"
for r in $(seq "$ROUNDS"); do
  for server in flint llama; do
    if [ "$server" = flint ]; then
      "$FLINT_BIN" serve -m "$FLINT_MODEL" --threads "$T" --parallel 16 --port "$PORT" 2>/dev/null & SRV=$!
    else
      "$LLAMA_DIR/bin/llama-server" -m "$GGUF" -t "$T" -tb "$T" -np 16 -c 16384 --port "$PORT" \
        --host 127.0.0.1 >/dev/null 2>&1 & SRV=$!
    fi
    wait_up
    warm_up
    for c in 1 4 16; do
      n=$(( c < 4 ? 4 : 2 * c ))
      "$PY" "$ROOT/bench/serve_load.py" "http://127.0.0.1:$PORT" --concurrency "$c" --requests "$n" \
        --max-tokens 64 --label "$server" | tee -a "$OUT"
      # llama-server keeps a thread per idle keep-alive connection for a while; without a pause it dropped
      # connections at 16 streams right after the 4-stream run.
      sleep 6
    done
    kill "$SRV"; wait "$SRV" 2>/dev/null || true
  done
done
"$PY" - "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| streams | flint tok/s | llama-server tok/s | ratio | flint TTFT | llama-server TTFT | flint per stream | llama-server per stream |")
print("|---|---|---|---|---|---|---|---|")
for c in sorted({r["concurrency"] for r in rows}):
    m = {}
    for s in ("flint", "llama"):
        rs = [r for r in rows if r["label"] == s and r["concurrency"] == c]
        m[s] = {k: sum(r[k] for r in rs) / len(rs) for k in ("agg_tok_s", "ttft_mean_s", "stream_tok_s_mean")}
    f, l = m["flint"], m["llama"]
    print(f"| {c} | {f['agg_tok_s']:.1f} | {l['agg_tok_s']:.1f} | {f['agg_tok_s'] / l['agg_tok_s']:.2f}x "
          f"| {f['ttft_mean_s'] * 1000:.0f} ms | {l['ttft_mean_s'] * 1000:.0f} ms "
          f"| {f['stream_tok_s_mean']:.1f} | {l['stream_tok_s_mean']:.1f} |")
PY
