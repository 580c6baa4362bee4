# Shared by bench/mix.sh and bench/q4km.sh (sourced): paths, the --models / --threads options, the model files.
# Expects ROOT and USAGE set; sets MODELS_DIR, FQ, FLINT, MODELS, THREADS, OUT.
MODELS_DIR="${MODELS_DIR:-$ROOT/.cache/models}"
FQ="${FLINT_QUANTIZE_BIN:-$ROOT/target/release/flint-quantize}"
FLINT="${FLINT_BIN:-$(dirname "$FQ")/flint}"
MODELS="smollm2-135m qwen3moe-rand qwen3moe-skew"; THREADS=2
while [ $# -gt 0 ]; do
  case "$1" in
    --models) MODELS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    *) echo "usage: $USAGE [--models \"M ...\"] [--threads N]" >&2; exit 2 ;;
  esac
done
OUT="$MODELS_DIR/mix"; mkdir -p "$OUT"
# The float reference of a model (SmolLM2: f32 from its GGUF; the bench MoEs: f16 from their HF folders), and the
# GGUF of the same weights.
src_of() { case "$1" in smollm2-135m) echo "$MODELS_DIR/smollm2-135m.f32.flint" ;; *) echo "$MODELS_DIR/$1.f16.flint" ;; esac; }
gguf_of() { case "$1" in smollm2-135m) echo "$MODELS_DIR/smollm2-135m.f32.gguf" ;; *) echo "$MODELS_DIR/$1.f16.gguf" ;; esac; }
