#!/usr/bin/env bash
# Escalation (issue 15 item 6): `flint run --escalate` against a real llama-server (built by bench/build_llama.sh
# from the vendored tree, -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF) serving SmolLM2's Q8_0 GGUF, while
# Flint's local model is SmolLM2 q4. Per round, interleaved, wall time of:
#   local      flint run (the local answer, no remote)
#   always     flint run --escalate URL --escalate-when always (the remote answers)
#   direct     the same request straight to llama-server (curl): what escalating can cost at best
#   low-conf   flint run --escalate URL (low-confidence, threshold 0.5: escalates only if the local answer is unsure)
#   dead       flint run --escalate http://127.0.0.1:1 --escalate-when always (no remote: the local answer stands)
# Means over the rounds; the answers' sources are checked from stderr.
# Usage: bench/escalate.sh [--rounds R] [-t THREADS]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
ROUNDS=5; T=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    -t) T="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [-t THREADS]" >&2; exit 2 ;;
  esac
done
LOCAL="$MODELS_DIR/smollm2-135m.q4.flint"
GGUF="$MODELS_DIR/smollm2-135m.q8_0.gguf"
for f in "$LOCAL" "$GGUF" "$LLAMA_DIR/bin/llama-server"; do
  [ -e "$f" ] || { echo "error: $f missing: run bench/prepare_models.sh and bench/build_llama.sh" >&2; exit 1; }
done
PORT=18432; URL="http://127.0.0.1:$PORT"
"$LLAMA_DIR/bin/llama-server" -m "$GGUF" -t "$T" -tb "$T" -c 4096 --port "$PORT" --host 127.0.0.1 >/dev/null 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf "$URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
Q="Name the capital of France in one word."
BODY='{"messages":[{"role":"user","content":"'"$Q"'"}],"max_tokens":32,"temperature":0}'
for _ in $(seq 50); do curl -sf "$URL/v1/chat/completions" -d "$BODY" >/dev/null 2>&1 && break; sleep 0.2; done
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "local: $FLINT_BIN run -m $LOCAL -t $T --chat -n 32 | remote: llama-server -m $GGUF -t $T"
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/tmp/esc.out 2>/tmp/esc.err; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
declare -A SUM=(); declare -A SRC=()
run() { "$FLINT_BIN" run -m "$LOCAL" -t "$T" --chat -n 32 -p "$Q" "$@"; }
for r in $(seq "$ROUNDS"); do
  for k in local always direct low-conf dead; do
    case "$k" in
      local) t=$(ms run) ;;
      always) t=$(ms run --escalate "$URL" --escalate-when always) ;;
      direct) t=$(ms curl -sf "$URL/v1/chat/completions" -d "$BODY") ;;
      low-conf) t=$(ms run --escalate "$URL") ;;
      dead) t=$(ms run --escalate http://127.0.0.1:1 --escalate-when always) ;;
    esac
    SUM[$k]=$(( ${SUM[$k]:-0} + t ))
    if grep -q "the answer comes from" /tmp/esc.err; then SRC[$k]=remote; else SRC[$k]=${SRC[$k]:-local}; fi
    [ "$k" = direct ] && SRC[$k]=remote
    [ "$r" = 1 ] && echo "$k: $(tr -d '\n' </tmp/esc.out | cut -c1-80) ($(grep -o 'confidence [0-9.]*' /tmp/esc.err || true))"
  done
done
echo "| run | mean wall ms | answer from |"
echo "|---|---|---|"
for k in local always direct low-conf dead; do
  echo "| $k | $(( SUM[$k] / ROUNDS )) | ${SRC[$k]} |"
done
