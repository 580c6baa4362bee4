#!/usr/bin/env bash
# Muse Spark's towers on the random Muse-shaped model (bench/gen_muse.py), measured through `flint run` (issue 12):
#   - vision encode of a 640x480 camera frame at the processor's default cap (4096 tokens), at --image-tokens 256 and
#     at --image-tokens auto;
#   - audio encode of the spoken question (processors/audio/sign_question_24k.wav) and its real-time factor;
#   - the prompt of an image + audio question: prefill time, and end of speech -> first token as the glasses loop
#     will see it (the image encoded while the wearer speaks, the audio streamed: at the end of speech one 80 ms
#     token is left to encode, then the prefill and the first decode step).
# Each figure is the mean ± sd over --reps runs. Prints one markdown table.
# Usage: bench/muse.sh [--reps R] [-t THREADS] [--model FILE]
# Env: FLINT_BIN (default <repo>/target/release/flint), MODELS_DIR (default <repo>/.cache/models), FIXTURES
# (default <repo>/../shared/fixtures).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
FIX="${FIXTURES:-$ROOT/../shared/fixtures}"
REPS=3; T=1; MODEL="$MODELS_DIR/muse-rand.f16.flint"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    -t) T="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    *) echo "usage: $0 [--reps R] [-t THREADS] [--model FILE]" >&2; exit 2 ;;
  esac
done
[ -f "$MODEL" ] || { echo "error: $MODEL missing: python3 bench/gen_muse.py, then flint-quantize import" >&2; exit 1; }
IMG="$FIX/processors/images/astronaut_640x480_q90.jpg"
WAV="$FIX/processors/audio/sign_question_24k.wav"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: $MODEL | threads $T | reps $REPS"
run() { "$FLINT_BIN" run -m "$MODEL" -t "$T" -n 1 "$@" 2>&1 >/dev/null; }
{
  for r in $(seq "$REPS"); do
    echo "## default"; run --image "$IMG" -p "What is in the picture?"
    echo "## cap256"; run --image "$IMG" --image-tokens 256 -p "What is in the picture?"
    echo "## auto"; run --image "$IMG" --image-tokens auto -p "What is in the picture?"
    echo "## audio"; run --audio "$WAV" -p ""
    echo "## question"; run --image "$IMG" --image-tokens 256 --audio "$WAV" -p ""
  done
} > /tmp/muse_bench.$$.log
python3 - /tmp/muse_bench.$$.log <<'PY'
import re, statistics, sys
runs, cur = {}, None
for line in open(sys.argv[1]):
    if line.startswith("## "):
        cur = {}; runs.setdefault(line[3:].strip(), []).append(cur); continue
    m = re.match(r"(vision encode|audio encode|read audio|preprocess|decode image): ([0-9.]+) s \((.*)\)", line)
    if m:
        cur[m[1]] = float(m[2]); cur[m[1] + " what"] = m[3]
    m = re.search(r"prompt (\d+) tok, ([0-9.]+) tok/s \| decode (\d+) tok, ([0-9.]+) tok/s", line)
    if m:
        cur["prompt"] = int(m[1]); cur["prefill"] = int(m[1]) / float(m[2])
        cur["decode1"] = 1 / float(m[4]) if float(m[4]) > 0 else 0.0
    if line.startswith("error"):
        sys.exit("flint run failed: " + line)
def ms(xs):
    m = statistics.mean(xs); s = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:.3f} ± {s:.3f} s"
rows = []
for k, label in [("default", "640x480 frame, default cap (4096)"), ("cap256", "640x480 frame, --image-tokens 256"),
                 ("auto", "640x480 frame, --image-tokens auto")]:
    r = runs[k]
    rows.append(f"| vision encode, {label} | {r[0]['vision encode what']} | {ms([x['vision encode'] for x in r])} "
                f"| preprocess {ms([x['preprocess'] for x in r])} |")
a = runs["audio"]
secs = float(re.match(r"([0-9.]+)", a[0]["read audio what"])[1])
enc = [x["audio encode"] for x in a]
rows.append(f"| audio encode, {secs:.2f} s clip | {a[0]['audio encode what']} | {ms(enc)} "
            f"| real-time factor {statistics.mean(enc) / secs:.3f} |")
q = runs["question"]
ntok = int(re.match(r"(\d+)", q[0]["audio encode what"])[1])
last = [x["audio encode"] / ntok for x in q]
e2e = [l + x["prefill"] + x["decode1"] for l, x in zip(last, q)]
rows.append(f"| image (256 cap) + audio question: prefill | {q[0]['prompt']} tokens | {ms([x['prefill'] for x in q])} | |")
rows.append(f"| end of speech -> first token (last audio token + prefill + first step) | | {ms(e2e)} | |")
print("| measurement | tokens | time (mean ± sd) | note |\n|---|---|---|---|")
print("\n".join(rows))
PY
rm -f /tmp/muse_bench.$$.log
