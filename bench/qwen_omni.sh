#!/usr/bin/env bash
# The Qwen3-Omni-shaped thinker (bench/gen_qwen_omni.py: the released towers, a 16-layer MoE decoder) in Flint against
# llama.cpp's mtmd, same weights, same photo and speech, same threads, 8-bit everywhere (issue 14). Files:
# bench/prepare_qwen_omni.sh. Per thread count, the engines alternate run by run, --reps runs each:
#   image prompt: flint run -m qwen-omni-rand.q8.flint --image IMG -n 1 -t T -p PROMPT
#                 llama-mtmd-cli -m qwen-omni-rand-deepstack.q8_0.gguf --mmproj mmproj-qwen-omni-rand-vision.q8_0.gguf
#                   --image IMG -n 1 -t T -p PROMPT
#   audio prompt: flint run ... --audio WAV;  llama-mtmd-cli -m qwen-omni-rand.q8_0.gguf
#                   --mmproj mmproj-qwen-omni-rand-audio.q8_0.gguf --audio WAV ...
#   image + audio prompt (Flint only: this llama.cpp cannot load both towers of a Qwen3-Omni mmproj, see
#                 bench/llama_convert.py): flint run ... --image IMG --audio WAV
# Figures per run: Flint's stage lines (`vision encode: X s`, `audio encode: X s`, `prompt N tok, R tok/s`),
# llama.cpp's (`mtmd batch encoding done in X ms`, `<image|audio> decoded (batch 1/1) in X ms`, `prompt eval time`,
# which spans the encode and every prompt decode). Both engines' figures start after the model is loaded and the media
# preprocessed (Flint's preprocessing is reported apart).
# Waits for an idle machine before each run; prints every sample with the cores other processes used during it and
# one markdown table (mean ± sd, ratio of the means).
# Usage: bench/qwen_omni.sh [--reps R] [--threads "2 1"]
# Env: FLINT_BIN, LLAMA_DIR, MODELS_DIR (defaults in bench/mtmd_env.sh), FIXTURES (default <repo>/../shared/fixtures).
set -euo pipefail
source "$(dirname "$0")/mtmd_env.sh"
FIX="${FIXTURES:-$ROOT/../shared/fixtures}"
REPS=5; THREADS="2 1"
IMG="$FIX/processors/images/astronaut_640x480_q90.jpg"
WAV="$FIX/processors/audio/speech_22k_16k.wav"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "usage: $0 [--reps R] [--threads \"2 1\"]" >&2; exit 2 ;;
  esac
done
MTMD="$LLAMA_DIR/bin/llama-mtmd-cli"
[ -x "$MTMD" ] || { echo "error: $MTMD missing: bench/build_llama.sh" >&2; exit 1; }
M="$MODELS_DIR"
FL="$M/qwen-omni-rand.q8.flint"
TEXT_V="$M/qwen-omni-rand-deepstack.q8_0.gguf"; MM_V="$M/mmproj-qwen-omni-rand-vision.q8_0.gguf"
TEXT_A="$M/qwen-omni-rand.q8_0.gguf"; MM_A="$M/mmproj-qwen-omni-rand-audio.q8_0.gguf"
for f in "$FL" "$TEXT_V" "$MM_V" "$TEXT_A" "$MM_A"; do
  [ -f "$f" ] || { echo "error: $f missing: bench/prepare_qwen_omni.sh" >&2; exit 1; }
done
PROMPT="What is this?"
LOG="$(mktemp /tmp/qwen_omni_bench.XXXXXX)"
source "$ROOT/bench/idle.sh"
trap 'rm -f "$LOG"' EXIT
FPAT="encode|preprocess|read audio|decode image|prompt [0-9]+ tok|error"
LPAT="batch encoding done|decoded \(batch|prompt eval time|total [0-9]+ tokens|n_tokens = |input buffer|error|failed"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "image: $IMG | audio: $WAV | reps $REPS | llama.cpp: $(cat "$LLAMA_DIR/VERSION")"
for t in $THREADS; do
  echo "## set t=$t load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
  for r in $(seq "$REPS"); do
    timed "flint image $t" "$FPAT" "$FLINT_BIN" run -m "$FL" --image "$IMG" -n 1 -t "$t" -p "$PROMPT"
    timed "llama image $t" "$LPAT" "$MTMD" -m "$TEXT_V" --mmproj "$MM_V" --image "$IMG" -n 1 -t "$t" --temp 0 \
      -lv 5 -p "$PROMPT"
    timed "flint audio $t" "$FPAT" "$FLINT_BIN" run -m "$FL" --audio "$WAV" -n 1 -t "$t" -p "$PROMPT"
    timed "llama audio $t" "$LPAT" "$MTMD" -m "$TEXT_A" --mmproj "$MM_A" --audio "$WAV" -n 1 -t "$t" --temp 0 \
      -lv 5 -p "$PROMPT"
    timed "flint both $t" "$FPAT" "$FLINT_BIN" run -m "$FL" --image "$IMG" --audio "$WAV" -n 1 -t "$t" -p "$PROMPT"
  done
done
echo "## end load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
python3 "$ROOT/bench/qwen_omni_report.py" "$LOG"
