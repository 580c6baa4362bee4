#!/usr/bin/env bash
# The Python the server tests drive flint serve with: a venv at .cache/venv-openai holding the official `openai`
# client, `jsonschema` (the validator the constrained-output tests check answers with) and `gguf` (llama.cpp's numpy
# dequantizer, the reference of the GGUF block types) and `pillow` (scripts/make-demo-recording.py draws the demo
# recording's frames with it) from PyPI (pinned).
# Idempotent. Prints the interpreter's path.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.cache/venv-openai"
OPENAI_VERSION="3.57.0"
JSONSCHEMA_VERSION="4.26.0"
GGUF_VERSION="0.19.0"
PILLOW_VERSION="13.0.0"
check="import openai, jsonschema, gguf, PIL, importlib.metadata as m, sys; \
sys.exit(openai.__version__ != '$OPENAI_VERSION' or m.version('jsonschema') != '$JSONSCHEMA_VERSION' \
or m.version('gguf') != '$GGUF_VERSION' or PIL.__version__ != '$PILLOW_VERSION')"
if ! "$VENV/bin/python" -c "$check" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "openai==$OPENAI_VERSION" \
    "jsonschema==$JSONSCHEMA_VERSION" "gguf==$GGUF_VERSION" "pillow==$PILLOW_VERSION"
fi
echo "$VENV/bin/python"
