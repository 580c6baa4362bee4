#!/usr/bin/env bash
# Builds the stripped release `flint` for a board profile in targets/boards/.
#
# Usage: scripts/build-board.sh BOARD        BOARD: a file stem in targets/boards/ (raspberry-pi-5, rk3588, ...)
# Output: ${CARGO_TARGET_DIR:-target}/boards/BOARD/flint (stripped), its size and `file` line on stdout.
#
# The binary is built for the profile's target triple with no CPU-specific codegen: it runs on any core of that
# architecture and picks its kernels (dotprod, i8mm, ...) at run time, so target-cpu=native is refused.
set -euo pipefail
cd "$(dirname "$0")/.."

board=${1:?"usage: scripts/build-board.sh BOARD  (one of: $(cd targets/boards && ls ./*.toml | sed 's|^\./||; s|\.toml$||' | tr '\n' ' '))"}
profile=targets/boards/$board.toml
[ -f "$profile" ] || { echo "build-board: no profile $profile" >&2; exit 2; }
triple=$(sed -n 's/^triple *= *"\([^"]*\)".*/\1/p' "$profile")
[ -n "$triple" ] || { echo "build-board: $profile: key \`target.triple\` not found" >&2; exit 2; }

triple_env=$(echo "$triple" | tr 'a-z-' 'A-Z_')
for v in RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS "CARGO_TARGET_${triple_env}_RUSTFLAGS"; do
  case "${!v:-}" in *target-cpu=native*) echo "build-board: $v has target-cpu=native; shipped builds must not" >&2; exit 2 ;; esac
done
if grep -v '^[[:space:]]*#' .cargo/config.toml 2>/dev/null | grep -q 'target-cpu=native'; then
  echo "build-board: .cargo/config.toml sets target-cpu=native; shipped builds must not" >&2; exit 2
fi

case "$triple" in
  aarch64-unknown-linux-gnu) strip_tool=aarch64-linux-gnu-strip ;;
  "$(rustc -vV | sed -n 's/^host: //p')") strip_tool=strip ;;
  *) echo "build-board: no strip tool known for $triple" >&2; exit 2 ;;
esac

echo "== cargo build --release --locked --target $triple -p flint-cli --bin flint"
cargo build --release --locked --target "$triple" -p flint-cli --bin flint

target_dir=${CARGO_TARGET_DIR:-target}
out_dir=$target_dir/boards/$board
mkdir -p "$out_dir"
# Strip into a temporary file beside the output, then rename: a reader never sees a half-written binary.
tmp=$(mktemp "$out_dir/.flint.XXXXXX")
"$strip_tool" -o "$tmp" "$target_dir/$triple/release/flint"
chmod 755 "$tmp"
mv -f "$tmp" "$out_dir/flint"
echo "== $out_dir/flint: $(stat -c %s "$out_dir/flint") bytes"
command -v file >/dev/null && file "$out_dir/flint" || true
