#!/usr/bin/env bash
# The Python environment of the peer glasses pipeline (bench/glasses_peer.py): faster-whisper on CTranslate2 for
# speech, rapidocr-onnxruntime for PP-OCRv4, onnxruntime for Silero VAD, and an HTTP client for llama-server.
# Idempotent; prints the venv's python.   Usage: bench/peer_glasses_env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.cache/venv-peer-glasses"
PINS=(faster-whisper==1.2.1 ctranslate2==4.8.5 rapidocr-onnxruntime==1.4.4 onnxruntime==1.31.1 numpy==2.4.6
      requests==2.34.2)
STAMP="$VENV/.pins"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "${PINS[*]}" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${PINS[@]}" >&2
  echo "${PINS[*]}" > "$STAMP"
fi
echo "$VENV/bin/python"
