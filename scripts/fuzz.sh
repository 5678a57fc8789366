#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (stdin config, IPAM config, CNI_ARGS, the
# CNI_* environment) for a fixed time: the proptest properties of tests/fuzz_parsers.rs,
# built optimised, looping until the time is up. Any panic or unfitting error code fails
# the run with the smallest input proptest can shrink it to.
#
#   scripts/fuzz.sh [SECONDS]        # default 300
#   scripts/fuzz.sh 600 --write-doc  # also record the figures in docs/reliability.md
#
# Needs no root: nothing here touches the kernel or the disk.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-300}"
write_doc=0
[ "${2:-}" = "--write-doc" ] && write_doc=1

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
echo "fuzz: building the property tests (release)..."
cargo test --release --no-run --quiet --test fuzz_parsers
echo "fuzz: running for ${secs}s"
VNET_FUZZ_SECS="$secs" VNET_FUZZ_REPORT="$report" \
  cargo test --release --quiet --test fuzz_parsers -- --nocapture 2>&1 | grep -E "^fuzz:|panicked|FAILED|test result" || true
if ! grep -q "^panics=0" "$report"; then
  echo "fuzz: FAILED (see above)" >&2
  exit 1
fi
cat "$report"

if [ "$write_doc" = 1 ]; then
  python3 scripts/reliability_doc.py docs/reliability.md fuzz "$report"
fi
