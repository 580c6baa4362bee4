#!/usr/bin/env bash
# Installs the system packages, rustup targets and Python packages Flint's build, tests and benchmarks need.
# Idempotent: safe to run again. Needs root (or sudo) for apt.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

need_apt=0
for bin in aarch64-linux-gnu-gcc qemu-aarch64-static pkg-config; do command -v "$bin" >/dev/null || need_apt=1; done
for pkg in libc6:arm64 libasound2-dev libudev-dev libasound2-dev:arm64 libudev-dev:arm64 hyperfine time clang libclang-dev espeak-ng; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  # qemu 7.2 from bookworm runs Rust code but newer qemu from backports is more faithful (see ENVIRONMENT.md).
  if [ ! -f /etc/apt/sources.list.d/bookworm-backports.sources ]; then
    $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq pkg-config gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6:arm64 >/dev/null
  # Dev packages for -sys crates (alsa-sys, libudev-sys), for the host and, as arm64 multiarch, for the cross build.
  # hyperfine times startup for BENCHMARKS.md; clang for bindgen (v4l2-sys); espeak-ng speaks the demo recording's questions.
  $SUDO apt-get install -y -qq libasound2-dev libudev-dev libasound2-dev:arm64 libudev-dev:arm64 hyperfine time clang libclang-dev espeak-ng >/dev/null
  $SUDO apt-get install -y -qq -t bookworm-backports qemu-user-static >/dev/null
fi
rustup target list --installed | grep -q aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
rustup target list --installed | grep -q thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
rustup component list --installed | grep -q clippy || rustup component add clippy rustfmt
