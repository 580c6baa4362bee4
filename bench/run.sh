#!/usr/bin/env bash
# Flint vs llama.cpp, side by side, on the same weights (issue 3): prefill (pp128) and decode (tg64) tok/s at
# 1 and 2 threads, q8 and q4, SmolLM2-135M and the random Qwen3-MoE; KL divergence of the quantized models;
# peak RSS on the MoE. Writes BENCHMARKS.md's "## Decode and prefill vs llama.cpp" section via bench/report.py.
#
# Usage: bench/run.sh [--rounds N] [--reps N] [--models "smollm2-135m qwen3moe-rand"] [--quants "q8 q4"]
#                     [--threads "1 2"] [--no-kl] [--no-write]
# Env: FLINT_BIN (default <repo>/target/release/flint), MODELS_DIR (default <repo>/.cache/models).
# Runs are interleaved A/B (flint, llama, flint, llama, ...) per model/quant/thread count so that drift in
# machine load hits both engines alike. Raw records go to bench/out/<timestamp>/ (gitignored).
# Needs a quiet machine: the load average is recorded next to the figures.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
FLINT_BIN="${FLINT_BIN:-$ROOT/target/release/flint}"
ROUNDS=2; REPS=3; MODELS="smollm2-135m qwen3moe-rand"; QUANTS="q8 q4"; THREADS="1 2"; DO_KL=1; WRITE=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --reps) REPS="$2"; shift 2 ;;
    --models) MODELS="$2"; shift 2 ;;
    --quants) QUANTS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --no-kl) DO_KL=0; shift ;;
    --no-write) WRITE=0; shift ;;
    *) echo "usage: $0 [--rounds N] [--reps N] [--models LIST] [--quants LIST] [--threads LIST] [--no-kl] [--no-write]" >&2; exit 2 ;;
  esac
done

export MODELS_DIR
bash "$ROOT/bench/build_llama.sh"
bash "$ROOT/bench/prepare_models.sh"

OUT="$ROOT/bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# GGUF file of the llama.cpp side for a model key and quant (q8 -> Q8_0, q4 -> Q4_0, ref -> unquantized).
gguf_of() {
  case "$2" in
    q8) echo "$MODELS_DIR/$1.q8_0.gguf" ;;
    q4) echo "$MODELS_DIR/$1.q4_0.gguf" ;;
    ref) [ "$1" = smollm2-135m ] && echo "$MODELS_DIR/$1.f32.gguf" || echo "$MODELS_DIR/$1.f16.gguf" ;;
  esac
}

# ============================== FLINT HOOK (begin) ==============================
# The Flint side. Everything Flint-specific is in these three functions; the rest of the script is generic.
#
# flint_model KEY QUANT: path of the .flint file for a model key (smollm2-135m | qwen3moe-rand) and quant
# (q8 | q4). bench/prepare_models.sh makes them with flint-quantize from the same sources as the GGUFs:
#   smollm2-135m: $MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf   qwen3moe-rand: $MODELS_DIR/qwen3moe-rand/ (HF, f16)
flint_model() { echo "$MODELS_DIR/$1.$2.flint"; }

# flint_bench FILE THREADS: must print lines `pp128: <tok/s>` and `tg64: <tok/s>` on stdout (flint bench prints the
# mean over its repetitions, then `± <sd>`; both are recorded).
flint_bench() { "$FLINT_BIN" bench -m "$1" -p 128 -n 64 -t "$2"; }

# flint_kl KEY QUANT: prints `kl: <mean KLD>` of the .flint model vs its unquantized reference on
# bench/calibration.txt (context 256, second half of each chunk, as llama-perplexity does).
flint_kl() {  # the quantizer stores its measurement (same text, ctx 256, late positions) in the file's metadata
  "$FLINT_BIN" info "$(flint_model "$1" "$2")" --meta quantization | python3 -c 'import json,sys
e = json.load(sys.stdin)["eval"]; late = e.get("late") or e
print("kl: %.6f" % late["kl_mean"]); print("top1: %.4f" % late["top1_agreement"])'
}
# ============================== FLINT HOOK (end) ================================

flint_ok() { [ -x "$FLINT_BIN" ] && [ -f "$(flint_model "$1" "$2")" ]; }

# sd LABEL TEXT: the standard deviation after "LABEL: <mean> tok/s ±" in TEXT (flint bench prints it), or nothing.
sd() { sed -n "s/^[[:space:]]*$1:[^±]*±[[:space:]]*\([0-9][0-9.eE+-]*\).*/\1/p" <<<"$2" | head -n1; }

# num LABEL TEXT: the number after "LABEL:" in TEXT, or nothing.
num() { sed -n "s/^[[:space:]]*$1:[[:space:]]*\([0-9][0-9.eE+-]*\).*/\1/p" <<<"$2" | head -n1; }

json_rec() {  # engine key quant threads round pp tg -> one JSON line
  python3 -c 'import json,sys; e,k,q,t,r,pp,tg=sys.argv[1:]; print(json.dumps({"engine":e,"model_key":k,"quant":q,
"threads":int(t),"round":int(r),"pp128":float(pp) if pp else None,"tg64":float(tg) if tg else None}))' "$@"
}

FLINT_USED=""
for key in $MODELS; do
  for q in $QUANTS; do
    g="$(gguf_of "$key" "$q")"
    for t in $THREADS; do
      for r in $(seq 1 "$ROUNDS"); do
        if flint_ok "$key" "$q"; then
          FLINT_USED="$FLINT_BIN"
          fo="$(flint_bench "$(flint_model "$key" "$q")" "$t")" || { echo "error: flint bench failed on $(flint_model "$key" "$q")" >&2; exit 1; }
          fpp="$(num pp128 "$fo")"; ftg="$(num tg64 "$fo")"
          [ -n "$fpp" ] && [ -n "$ftg" ] || { echo "error: flint bench printed no pp128:/tg64: lines:" >&2; echo "$fo" >&2; exit 1; }
          json_rec flint "$key" "$q" "$t" "$r" "$fpp" "$ftg" | python3 -c 'import json,sys
d = json.loads(sys.stdin.read()); a = sys.argv[1:]
d["pp128_sd"] = float(a[0]) if a[0] else None; d["tg64_sd"] = float(a[1]) if a[1] else None
print(json.dumps(d))' "$(sd pp128 "$fo")" "$(sd tg64 "$fo")" >> "$OUT/speed.jsonl"
          echo "$key $q t=$t round $r flint:     pp128 $fpp tg64 $ftg"
        fi
        lo="$(python3 "$ROOT/bench/peer.py" bench "$g" -t "$t" -r "$REPS")"
        lpp="$(num pp128 "$lo")"; ltg="$(num tg64 "$lo")"
        grep '^json: ' <<<"$lo" | sed 's/^json: //' >> "$OUT/llama-bench.jsonl"
        json_rec llama.cpp "$key" "$q" "$t" "$r" "$lpp" "$ltg" >> "$OUT/speed.jsonl"
        echo "$key $q t=$t round $r llama.cpp: pp128 $lpp tg64 $ltg"
      done
    done
  done
done

# Peak RSS on the MoE model, 1 thread, both engines when Flint is there.
if [ -x /usr/bin/time ]; then
  for q in $QUANTS; do
    key=qwen3moe-rand
    case " $MODELS " in *" $key "*) ;; *) continue ;; esac
    g="$(gguf_of "$key" "$q")"
    lo="$(python3 "$ROOT/bench/peer.py" bench "$g" -t 1 -r 1 --rss)"
    kib="$(num peak_rss_kib "$lo")"
    python3 -c 'import json,sys,os; k,q,e,kib,f=sys.argv[1:]; print(json.dumps({"model_key":k,"quant":q,"engine":e,
"peak_rss_kib":int(kib),"file_mib":os.path.getsize(f)/2**20}))' "$key" "$q" llama.cpp "$kib" "$g" >> "$OUT/rss.jsonl"
    echo "peak RSS $key $q llama.cpp: $kib KiB"
    if flint_ok "$key" "$q"; then
      fm="$(flint_model "$key" "$q")"
      kib="$( { /usr/bin/time -v "$FLINT_BIN" bench -m "$fm" -p 128 -n 64 -t 1 >/dev/null; } 2>&1 \
              | sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p')"
      python3 -c 'import json,sys,os; k,q,e,kib,f=sys.argv[1:]; print(json.dumps({"model_key":k,"quant":q,"engine":e,
"peak_rss_kib":int(kib),"file_mib":os.path.getsize(f)/2**20}))' "$key" "$q" flint "$kib" "$fm" >> "$OUT/rss.jsonl"
      echo "peak RSS $key $q flint: $kib KiB"
    fi
  done
else
  echo "note: /usr/bin/time missing (Debian package 'time'): no peak RSS" >&2
fi

if [ "$DO_KL" = 1 ]; then
  for key in $MODELS; do
    files=(); for q in $QUANTS; do files+=("$(gguf_of "$key" "$q")"); done
    ko="$(python3 "$ROOT/bench/peer.py" kl "$(gguf_of "$key" ref)" "${files[@]}" -c 256)"
    for q in $QUANTS; do
      g="$(gguf_of "$key" "$q")"
      grep '^json: ' <<<"$ko" | sed 's/^json: //' | python3 -c 'import json,sys; k,q,g=sys.argv[1:]
for l in sys.stdin:
    r=json.loads(l)
    if r["model"]==g: r.update(model_key=k,quant=q); print(json.dumps(r))' "$key" "$q" "$g" >> "$OUT/kl.jsonl"
      if flint_ok "$key" "$q" && fk="$(flint_kl "$key" "$q")"; then
        v="$(num kl "$fk")"; t1="$(num top1 "$fk")"
        [ -n "$v" ] && python3 -c 'import json,sys; k,q,v,t=sys.argv[1:]; r={"engine":"flint","model_key":k,
"quant":q,"mean_kld":float(v),"base":"reference"}
if t: r["same_top_p_pct"]=100*float(t)
print(json.dumps(r))' "$key" "$q" "$v" "$t1" >> "$OUT/kl.jsonl"
      fi
    done
    echo "$ko" | grep '^kl '
  done
fi

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" "$LOAD_BEFORE" "$LOAD_AFTER" "$ROUNDS" "$REPS" "$FLINT_USED" "$ROOT" <<'PY'
import json, os, platform, re, subprocess, sys, datetime
out, lb, la, rounds, reps, flint, root = sys.argv[1:]
lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
cpu = re.search(r"Model name:\s*(.+)", lscpu)
mem = 0
with open("/proc/meminfo") as f:
    for l in f:
        if l.startswith("MemTotal:"):
            mem = int(l.split()[1]) / 2**20
build = "?"
try:
    with open(os.path.join(out, "llama-bench.jsonl")) as f:
        build = json.loads(f.readline()).get("build_commit", "?")
except (OSError, ValueError):
    pass
try:
    ver = open(os.path.join(root, ".cache", "llama.cpp", "VERSION")).read().strip()
except OSError:
    ver = "?"
osname = platform.platform()
try:
    osname = [l.split("=", 1)[1].strip().strip('"') for l in open("/etc/os-release") if l.startswith("PRETTY_NAME=")][0]
except (OSError, IndexError):
    pass
meta = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "cpu": cpu.group(1).strip() if cpu else platform.processor(),
    "cores": os.cpu_count(), "mem": f"{mem:.0f} GiB RAM", "os": f"{osname}, {platform.machine()}",
    "load_before": lb, "load_after": la, "rounds": int(rounds), "llama_reps": int(reps),
    "llama_version": ver, "llama_build": build, "flint": flint or None,
    "commands": [
        "bench/run.sh   # builds the peer, makes the GGUFs, then per model/quant/threads, interleaved:",
        "flint bench -m <model>.<q8|q4>.flint -p 128 -n 64 -t <1|2>",
        f"llama-bench -m <model>.<q8_0|q4_0>.gguf -t <1|2> -p 128 -n 64 -r {reps} -o json",
        "llama-quantize [--allow-requantize] --pure <source>.gguf <model>.<q8_0|q4_0>.gguf <Q8_0|Q4_0>",
        "llama-perplexity -m <reference>.gguf --kl-divergence-base <logits> -f bench/calibration.txt -c 256 -b 256",
        "llama-perplexity -m <model>.<q>.gguf --kl-divergence-base <logits> --kl-divergence -f bench/calibration.txt -c 256 -b 256",
        "/usr/bin/time -v llama-bench -m qwen3moe-rand.<q>.gguf -t 1 -p 128 -n 64 -r 1 -o json   # peak RSS",
    ],
}
with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump(meta, f, indent=2)
PY

if [ "$WRITE" = 1 ]; then
  python3 "$ROOT/bench/report.py" "$OUT"
else
  python3 "$ROOT/bench/report.py" "$OUT" --stdout
fi
echo "raw records: $OUT"
