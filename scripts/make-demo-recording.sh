#!/usr/bin/env bash
# Makes the bundled demo recording of `flint glasses` (scripts/make_demo_recording.py says what is in it) at
# .cache/demo-recording (or $1): scikit-image 0.26.0's photos from its PyPI wheel, questions spoken by espeak-ng.
# Idempotent: an existing recording made by the same script is kept.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/.cache/demo-recording}"
command -v espeak-ng >/dev/null || { echo "make-demo-recording: espeak-ng missing: run scripts/install-system.sh" >&2; exit 2; }
PY="$("$ROOT/scripts/python-env.sh")"
stamp="$(sha256sum "$ROOT/scripts/make_demo_recording.py" | cut -c1-16)"
if [ -f "$OUT/.made-by-$stamp" ] && [ -f "$OUT/audio.wav" ]; then echo "have $OUT"; exit 0; fi
WHEELS="$ROOT/.cache/models/.pip-scikit-image-0.26.0"
mkdir -p "$WHEELS"
ls "$WHEELS"/scikit_image-*.whl >/dev/null 2>&1 ||
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" scikit-image==0.26.0
mkdir -p "$OUT"
rm -f "$OUT"/.made-by-*
"$PY" "$ROOT/scripts/make_demo_recording.py" "$(ls "$WHEELS"/scikit_image-*.whl | head -n1)" "$OUT"
touch "$OUT/.made-by-$stamp"
