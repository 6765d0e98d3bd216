#!/usr/bin/env bash
# Static tinynode binaries for small hosts, built on this Debian machine
# from registry packages only:
#
#   scripts/build-static.sh [TARGET...]
#
# Default targets: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl,
# armv7-unknown-linux-musleabihf (hard-float 32-bit ARM: Raspberry Pi 2
# and later). Each lands in target/TARGET/release/tinynode, statically
# linked against musl, stripped, and is checked and listed with its size.
#
# What it installs when missing: the rustup targets, Zig (the `ziglang`
# package from PyPI) as the C compiler and linker for every target (the
# crypto backends build C), and `cargo-zigbuild` from crates.io. Where
# rustup has no standard library for a target (this workplace's mirror
# has none for armv7-unknown-linux-musleabihf), the standard library is
# built from source with nightly's `-Z build-std` (rust-src), and Zig's
# musl start files are used instead of Rust's self-contained ones.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf)
fi

if ! python3 -m ziglang version >/dev/null 2>&1; then
  echo "installing zig (PyPI ziglang)"
  python3 -m pip install --quiet ziglang
fi
if ! command -v cargo-zigbuild >/dev/null 2>&1; then
  echo "installing cargo-zigbuild (crates.io)"
  cargo install --quiet --locked cargo-zigbuild
fi
if ! command -v file >/dev/null 2>&1; then
  echo "file(1) is needed to check the binaries: apt-get install file" >&2
  exit 1
fi

for target in "${targets[@]}"; do
  echo "building $target"
  if rustup target add "$target" >/dev/null 2>&1; then
    cargo zigbuild --quiet --locked --release --target "$target" --bin tinynode
  else
    echo "  rustup has no standard library for $target here: building it with nightly -Z build-std"
    rustup component add rust-src --toolchain nightly >/dev/null
    RUSTFLAGS="-C link-self-contained=no -A linker-messages" cargo +nightly zigbuild --quiet --locked \
      -Z build-std=std,panic_abort --release --target "$target" --bin tinynode
  fi
done

echo
printf '%-34s %10s  %s\n' target bytes kind
for target in "${targets[@]}"; do
  binary="target/$target/release/tinynode"
  kind=$(file -b "$binary")
  case "$kind" in
    *"statically linked"*) ;;
    *) echo "$binary is not statically linked: $kind" >&2; exit 1 ;;
  esac
  printf '%-34s %10d  %s\n' "$target" "$(stat -c %s "$binary")" "$(echo "$kind" | cut -d, -f1-2), static"
done
