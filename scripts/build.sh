#!/usr/bin/env bash
# Builds the vnet binary that scripts/install.sh ships and prints its path on stdout.
#   scripts/build.sh [--dynamic]
#
# The shipped build is linked statically (glibc's libc.a) and not position-independent:
# a plugin lives for a few milliseconds, so its exec, dynamic loading and the pages the
# kernel maps for it are most of what it costs (docs/performance.md). `--target` is given
# explicitly so the RUSTFLAGS reach vnet and its dependencies but not the proc-macros and
# build scripts, which must stay dynamic. Where no static libc is installed it falls back
# to the plain `cargo build --release` (target/release/vnet) and says so on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != --dynamic ]; then
  triple=$(rustc -vV | sed -n 's/^host: //p')
  if RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --quiet --target "$triple" >&2; then
    echo "$PWD/target/$triple/release/vnet"
    exit 0
  fi
  echo "build.sh: static build failed (is libc6-dev installed?); building dynamically" >&2
fi
cargo build --release --quiet >&2
echo "$PWD/target/release/vnet"
