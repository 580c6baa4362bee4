#!/usr/bin/env bash
# Muse Glimmer's vision tower (the random glimmer-rand: vision 1024 x 24 layers, patch 14) in Flint against
# llama.cpp's mtmd, same weights, same photo, same image tokens, same threads, same precision (issue 12).
# Files: bench/prepare_mtmd.sh. Per precision and thread count, the two engines run alternately, --reps runs each:
#   flint run -m glimmer-rand.<f16|q8>.flint --image IMG -n 1 -t T -p PROMPT        -> "vision encode: X s"
#   llama-mtmd-cli -m glimmer-rand.f16.gguf --mmproj mmproj-glimmer-rand.<f16|q8_0>.gguf --image IMG -n 1 -t T
#                  --jinja --chat-template "$(cat muse-glimmer.jinja)" -p PROMPT
# -> "mtmd batch encoding done in X ms". Both figures are the tower alone (patches to projected rows), after the model is loaded; Flint's includes its
# first touch of the mapped weights, llama.cpp's does not (it reads them in and runs a warm-up graph at load).
# Waits for an idle machine before each run. Prints the load average before each set, every sample with the cores
# other processes used during it, and one markdown table (mean ± sd, ratio of the means).
# Usage: bench/mtmd.sh [--reps R] [--threads "1 2"] [--quants "f16 q8"] [--image IMG]
# Env: FLINT_BIN, LLAMA_DIR, MODELS_DIR (defaults in bench/mtmd_env.sh), FIXTURES (default <repo>/../shared/fixtures).
set -euo pipefail
source "$(dirname "$0")/mtmd_env.sh"
FIX="${FIXTURES:-$ROOT/../shared/fixtures}"
REPS=5; THREADS="1 2"; QUANTS="f16 q8"; IMG="$FIX/processors/images/astronaut_640x480_q90.jpg"
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --quants) QUANTS="$2"; shift 2 ;;
    --image) IMG="$2"; shift 2 ;;
    *) echo "usage: $0 [--reps R] [--threads \"1 2\"] [--quants \"f16 q8\"] [--image IMG]" >&2; exit 2 ;;
  esac
done
MTMD="$LLAMA_DIR/bin/llama-mtmd-cli"
[ -x "$MTMD" ] || { echo "error: $MTMD missing: bench/build_llama.sh" >&2; exit 1; }
PROMPT="What is in the picture?"
# The converted text model has no chat template: llama-mtmd-cli gets the tree's muse-glimmer.jinja, the template
# Flint bundles for a Muse checkpoint without one.
TEMPLATE="$(cat "$TREE/models/templates/muse-glimmer.jinja")"
LOG="$(mktemp /tmp/mtmd_bench.XXXXXX)"
source "$ROOT/bench/idle.sh"
trap 'rm -f "$LOG"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') | $(nproc) cores | $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "image: $IMG | reps $REPS | llama.cpp: $(cat "$LLAMA_DIR/VERSION")"
for q in $QUANTS; do
  case "$q" in f16) mm=f16 ;; q8) mm=q8_0 ;; *) echo "error: quant $q (f16 or q8)" >&2; exit 2 ;; esac
  FL="$MODELS_DIR/glimmer-rand.$q.flint"
  TEXT="$MODELS_DIR/glimmer-rand.f16.gguf"
  MM="$MODELS_DIR/mmproj-glimmer-rand.$mm.gguf"
  for f in "$FL" "$TEXT" "$MM"; do [ -f "$f" ] || { echo "error: $f missing: bench/prepare_mtmd.sh" >&2; exit 1; }; done
  # Flint's grid: image_grid_thw as `flint preprocess` writes it (the processor run `flint run` does).
  "$FLINT_BIN" preprocess -m "$FL" --image "$IMG" -o "$LOG.st" >/dev/null 2>&1
  python3 -c "import sys; from safetensors.numpy import load_file; g = load_file(sys.argv[1])['image_grid_thw'][0]
print(f'## grid {g[2] * 14}x{g[1] * 14}')" "$LOG.st" >> "$LOG"
  rm -f "$LOG.st"
  for t in $THREADS; do
    echo "## set $q t=$t load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
    for r in $(seq "$REPS"); do
      timed "flint $q $t" "vision encode|error" "$FLINT_BIN" run -m "$FL" --image "$IMG" -n 1 -t "$t" -p "$PROMPT"
      # -lv 5 for the debug lines with the resized image size and the token count (printed outside the timing).
      timed "llama $q $t" "batch encoding done|total [0-9]+ tokens|input buffer|error|failed" \
        "$MTMD" -m "$TEXT" --mmproj "$MM" --jinja --chat-template "$TEMPLATE" --image "$IMG" -n 1 -t "$t" --temp 0 \
        -lv 5 -p "$PROMPT"
    done
  done
done
echo "## end load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
python3 - "$LOG" <<'PY'
import re, statistics, sys
runs, cur, loads, order = {}, None, {}, []
for line in open(sys.argv[1]):
    m = re.match(r"## set (\S+) t=(\d+) load (.*)", line)
    if m:
        loads[(m[1], m[2])] = m[3].strip(); continue
    m = re.match(r"## grid (\S+)", line)
    if m:
        grid = m[1]; continue
    m = re.match(r"## others (-?[0-9.]+)", line)
    if m:
        cur["others"] = float(m[1]); continue
    if line.startswith("## warning"):
        print(line.strip()[3:]); continue
    m = re.match(r"## (flint|llama) (\S+) (\d+)", line)
    if m:
        cur = {}; key = (m[2], m[3]); runs.setdefault((m[1],) + key, []).append(cur)
        if key not in order: order.append(key)
        continue
    if re.search(r"error|failed", line, re.I):
        sys.exit("run failed: " + line.strip())
    m = re.match(r"vision encode: ([0-9.]+) s \((\d+) tokens\)", line)
    if m: cur["s"] = float(m[1]); cur["tok"] = int(m[2]); cur["px"] = grid
    m = re.search(r"mtmd batch encoding done in (\d+) ms", line)
    if m: cur["s"] = int(m[1]) / 1000
    m = re.search(r"total (\d+) tokens", line)
    if m: cur["tok"] = int(m[1])
    m = re.search(r"input buffer \(nx=(\d+), ny=(\d+)\)", line)
    if m: cur["px"] = f"{m[1]}x{m[2]}"
    if line.startswith("## end load"): print(line.strip()[3:])
def ms(xs):
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f} s (n {len(xs)})"
print("samples (s, and in brackets the cores other processes used during the run; run order):")
for q, t in order:
    for e in ("flint", "llama"):
        print(f"- {q} t={t} {e}: " + ", ".join(f"{x['s']:.2f} ({x.get('others', 0):.2f})" for x in runs[(e, q, t)]))
# A run during which other processes kept more than MAX_OTHERS cores busy is listed but left out of the table.
MAX_OTHERS = 0.2
print(f"\nTable: the runs during which other processes used at most {MAX_OTHERS} cores (n: runs kept).")
print("\n| precision | threads | load before | resized image, tokens: Flint / llama.cpp | Flint | llama.cpp | "
      "Flint speed / llama.cpp |\n|---|---:|---|---|---:|---:|---:|")
for q, t in order:
    clean = lambda e: [x["s"] for x in runs[(e, q, t)] if x.get("others", 0) <= MAX_OTHERS]
    f, l = clean("flint"), clean("llama")
    if not f or not l:
        print(f"| {q} | {t} | {loads[(q, t)]} | no clean runs | | | |"); continue
    ft = {f"{x.get('px')}, {x.get('tok')}" for x in runs[("flint", q, t)]}
    lt = {f"{x.get('px')}, {x.get('tok')}" for x in runs[("llama", q, t)]}
    mm = "f16 towers / f16 mmproj" if q == "f16" else "q8 towers / q8_0 mmproj"
    print(f"| {mm} | {t} | {loads[(q, t)]} | {'/'.join(map(str, ft))} / {'/'.join(map(str, lt))} | {ms(f)} | {ms(l)} "
          f"| {statistics.mean(l) / statistics.mean(f):.2f}x |")
PY
