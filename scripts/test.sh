#!/usr/bin/env bash
# The test suite: formatting, lints, unit tests and the black-box namespace tests.
# Run as root: the namespace tests create network namespaces (never touching the
# machine's own network). Without root they print SKIPPED loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo test --all-targets "$@"
# The black-box tests once more, against the build scripts/install.sh ships (static, musl,
# release): it is what users run. Its own target dir keeps the two test builds apart.
shipped=$(scripts/build.sh)
VNET_TEST_BIN="$shipped" CARGO_TARGET_DIR=target/shipped-tests cargo test --test '*' "$@"
