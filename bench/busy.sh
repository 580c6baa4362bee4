#!/usr/bin/env bash
# Decode on a busy machine (issue 11): another process spins on one core, pinned there with taskset, while Flint
# and llama.cpp decode at 1 and 2 threads (unpinned, as users run them), interleaved round by round. Prints each
# run's tg tok/s and, per engine and thread count, the mean ± sd over the rounds; the goal row is Flint's 2-thread
# mean against its 1-thread mean (at least as fast). Optionally an older Flint binary runs the same rows.
# Usage: bench/busy.sh [--rounds R] [--models "smollm2-135m.q4 qwen3moe-rand.q4"] [-n TOKENS] [--busy-core C]
# Env: FLINT_BIN (default <repo>/target/release/flint), FLINT_OLD (an older flint to compare, optional),
#      MODELS_DIR (default <repo>/.cache/models), LLAMA_DIR (default <repo>/.cache/llama.cpp).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
ROUNDS=5; N=64; CORE=1; MODELS="smollm2-135m.q4 qwen3moe-rand.q4"
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    -n) N="$2"; shift 2 ;;
    --busy-core) CORE="$2"; shift 2 ;;
    *) echo "usage: $0 [--rounds R] [--models LIST] [-n TOKENS] [--busy-core C]" >&2; exit 2 ;;
  esac
done
command -v taskset >/dev/null || { echo "error: taskset (util-linux) not found" >&2; exit 1; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "busy: a shell loop pinned to core $CORE (taskset -c $CORE) during every run"
echo "flint: $FLINT_BIN bench -m MODEL.flint -p 16 -n $N -t T -r 1"
echo "llama.cpp: $LLAMA_DIR/bin/llama-bench -m MODEL.gguf -p 0 -n $N -t T -r 1 -o json"
taskset -c "$CORE" bash -c 'while :; do :; done' &
BUSY=$!
trap 'kill $BUSY 2>/dev/null || true' EXIT
sleep 1
LOG="$(mktemp)"
gguf_of() { # smollm2-135m.q4 -> smollm2-135m.q4_0.gguf
  echo "$MODELS_DIR/${1%.*}.${1##*.}_0.gguf"
}
for m in $MODELS; do
  f="$MODELS_DIR/$m.flint"; g="$(gguf_of "$m")"
  [ -f "$f" ] || { echo "error: $f missing: run bench/prepare_models.sh" >&2; exit 1; }
  for r in $(seq "$ROUNDS"); do
    for t in 1 2; do
      v="$("$FLINT_BIN" bench -m "$f" -p 16 -n "$N" -t "$t" -r 1 | sed -n "s/^tg$N: \([0-9.]*\).*/\1/p")"
      echo "$m flint t$t round $r tg$N $v" | tee -a "$LOG"
      if [ -n "${FLINT_OLD:-}" ]; then
        v="$("$FLINT_OLD" bench -m "$f" -p 16 -n "$N" -t "$t" -r 1 | sed -n "s/^tg$N: \([0-9.]*\).*/\1/p")"
        echo "$m flint-old t$t round $r tg$N $v" | tee -a "$LOG"
      fi
      if [ -x "$LLAMA_DIR/bin/llama-bench" ] && [ -f "$g" ]; then
        v="$("$LLAMA_DIR/bin/llama-bench" -m "$g" -p 0 -n "$N" -t "$t" -r 1 -o json 2>/dev/null \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')"
        echo "$m llama.cpp t$t round $r tg$N $v" | tee -a "$LOG"
      fi
    done
  done
done
python3 - "$LOG" "$N" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    m, eng, t, _, _, _, v = line.split()
    runs[(m, eng, t)].append(float(v))
n = sys.argv[2]
print(f"\n| model | engine | 1 thread tg{n} (tok/s) | 2 threads tg{n} | 2 / 1 |")
print("|---|---|---|---|---|")
for (m, eng) in dict.fromkeys((k[0], k[1]) for k in runs):
    a, b = runs[(m, eng, "t1")], runs[(m, eng, "t2")]
    f = lambda x: f"{statistics.mean(x):.1f} ± {statistics.stdev(x) if len(x) > 1 else 0:.1f}"
    print(f"| {m} | {eng} | {f(a)} | {f(b)} | {statistics.mean(b) / statistics.mean(a):.2f}x |")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
