#!/usr/bin/env bash
# Builds the llama.cpp peer (llama-bench, llama-perplexity, llama-quantize, llama-imatrix (issue 16: Q4_K_M made with
# an importance matrix), llama-tokenize, llama-mtmd-cli for
# the vision-tower comparison in bench/mtmd.sh, and llama-server for bench/serve.sh; its web UI is not built, as
# the prebuilt one would be downloaded) for Flint's side-by-side benchmark, from the llama.cpp tree
# vendored in the llama-cpp-python sdist on PyPI (the only registry we can reach that ships llama.cpp source).
#
# Output: $LLAMA_DIR/bin/{llama-bench,llama-perplexity,llama-quantize,llama-tokenize,llama-mtmd-cli,llama-server},
# statically linked against libllama/libggml/libmtmd, plus $LLAMA_DIR/gguf-py (the matching gguf Python package) and
# $LLAMA_DIR/VERSION (the pin) and $LLAMA_DIR/TOOLS (the tool list: adding a tool changes it, so the next run
# rebuilds), and $LLAMA_DIR/TREE (the source tree's path, for its convert_hf_to_gguf.py). Idempotent: does nothing
# if the binaries, VERSION and TOOLS match.
# Takes ~15 min on 2 cores. Needs: python3 + pip, a C/C++ compiler; installs cmake from PyPI if absent.
set -euo pipefail

PIN="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LLAMA_DIR="${LLAMA_DIR:-$ROOT/.cache/llama.cpp}"
JOBS="${JOBS:-2}"
TOOLS=(llama-bench llama-perplexity llama-quantize llama-tokenize llama-mtmd-cli llama-server llama-imatrix)

have_all() {
  [ -f "$LLAMA_DIR/VERSION" ] && [ "$(cat "$LLAMA_DIR/VERSION")" = "llama-cpp-python==$PIN" ] || return 1
  [ -f "$LLAMA_DIR/TOOLS" ] && [ "$(cat "$LLAMA_DIR/TOOLS")" = "${TOOLS[*]}" ] || return 1
  for t in "${TOOLS[@]}"; do [ -x "$LLAMA_DIR/bin/$t" ] || return 1; done
}
if have_all; then
  echo "llama.cpp peer already built in $LLAMA_DIR ($(cat "$LLAMA_DIR/VERSION"))"
  exit 0
fi

# cmake from PyPI rather than apt: apt may be busy with the system install job.
command -v cmake >/dev/null || python3 -m pip install -q cmake

mkdir -p "$LLAMA_DIR"
SRC="$LLAMA_DIR/src"
if [ ! -f "$SRC/llama_cpp_python-$PIN/vendor/llama.cpp/CMakeLists.txt" ]; then
  rm -rf "$SRC"; mkdir -p "$SRC"
  # --no-binary only for llama-cpp-python: applying it to :all: would also build its build
  # dependencies (cmake itself) from source just to prepare metadata.
  python3 -m pip download -q --no-deps --no-binary llama-cpp-python -d "$SRC" "llama-cpp-python==$PIN"
  tar -xzf "$SRC/llama_cpp_python-$PIN.tar.gz" -C "$SRC"
fi
TREE="$SRC/llama_cpp_python-$PIN/vendor/llama.cpp"
BUILD="$LLAMA_DIR/build"

start=$(date +%s)
# LLAMA_CURL is deprecated in this tree (warning only), kept OFF for older pins.
cmake -S "$TREE" -B "$BUILD" \
  -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF
cmake --build "$BUILD" -j "$JOBS" --target "${TOOLS[@]}"
end=$(date +%s)

mkdir -p "$LLAMA_DIR/bin"
for t in "${TOOLS[@]}"; do
  cp "$BUILD/bin/$t" "$LLAMA_DIR/bin/$t.tmp" && mv "$LLAMA_DIR/bin/$t.tmp" "$LLAMA_DIR/bin/$t"
done
rm -rf "$LLAMA_DIR/gguf-py"; cp -r "$TREE/gguf-py" "$LLAMA_DIR/gguf-py"
echo "$TREE" > "$LLAMA_DIR/TREE"
echo "${TOOLS[*]}" > "$LLAMA_DIR/TOOLS"
echo "llama-cpp-python==$PIN" > "$LLAMA_DIR/VERSION.tmp" && mv "$LLAMA_DIR/VERSION.tmp" "$LLAMA_DIR/VERSION"
echo "built llama.cpp (llama-cpp-python==$PIN) in $((end - start)) s into $LLAMA_DIR/bin"
