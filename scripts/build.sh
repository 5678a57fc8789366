#!/usr/bin/env bash
# Builds the vnet binary that scripts/install.sh ships and prints its path on stdout.
#   scripts/build.sh [--dynamic]
#
# The shipped build is linked statically against musl and not position-independent: a
# plugin lives for a few milliseconds, so its exec and start-up are much of what it costs
# (docs/performance.md). glibc's start-up reads the CPU's cache sizes with a run of CPUID
# instructions, and in a VM each CPUID traps to the hypervisor: that alone was 0.5 ms of
# every call here; musl's start-up does none of it. The musl target's standard library
# comes from rustup (added here when missing). Without it the build falls back to glibc's
# libc.a, and without that to the plain dynamic `cargo build --release`
# (target/release/vnet), saying so on stderr. `--target` is given explicitly so the
# RUSTFLAGS reach vnet and its dependencies but not the proc-macros and build scripts,
# which must stay dynamic.
set -euo pipefail
cd "$(dirname "$0")/.."

# Under sudo, a rustup toolchain of the user (or root's) is not on PATH: look where rustup
# puts it, and use that user's rustup home with it.
find_cargo() {
  command -v cargo >/dev/null && return 0
  local home
  for home in "${CARGO_HOME:+$CARGO_HOME/..}" "${HOME:-}" \
    "${SUDO_USER:+$(getent passwd "$SUDO_USER" | cut -d: -f6)}" /root; do
    [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ] || continue
    export PATH="$home/.cargo/bin:$PATH"
    [ -d "$home/.rustup" ] && export RUSTUP_HOME="${RUSTUP_HOME:-$home/.rustup}"
    return 0
  done
  echo "build.sh: no cargo on PATH or in ~/.cargo/bin (install Rust with rustup)" >&2
  return 127
}
find_cargo || exit 127

static_flags="-C target-feature=+crt-static -C relocation-model=static"

has_std() {
  local dir
  dir=$(rustc --print target-libdir --target "$1" 2>/dev/null) || return 1
  compgen -G "$dir/libstd-*.rlib" >/dev/null
}

if [ "${1:-}" != --dynamic ]; then
  musl="$(uname -m)-unknown-linux-musl"
  if ! has_std "$musl" && command -v rustup >/dev/null; then
    rustup target add "$musl" >/dev/null 2>&1 || true
  fi
  if has_std "$musl"; then
    if RUSTFLAGS="$static_flags" cargo build --release --quiet --target "$musl" >&2; then
      echo "$PWD/target/$musl/release/vnet"
      exit 0
    fi
    echo "build.sh: the musl build failed; trying glibc's static libc" >&2
  else
    echo "build.sh: no Rust standard library for $musl (rustup target add $musl); using glibc's static libc" >&2
  fi
  triple=$(rustc -vV | sed -n 's/^host: //p')
  if RUSTFLAGS="$static_flags" cargo build --release --quiet --target "$triple" >&2; then
    echo "$PWD/target/$triple/release/vnet"
    exit 0
  fi
  echo "build.sh: static build failed (is libc6-dev installed?); building dynamically" >&2
fi
cargo build --release --quiet >&2
echo "$PWD/target/release/vnet"
