#!/usr/bin/env bash
# The long reliability runs, on throwaway namespaces (never the root one):
#   - load: 1,000 ADD/DEL cycles at random concurrency 1-32 on one node;
#   - faults: 400 SIGKILLs at random points of ADD and DEL (over half land while the
#     plugin runs; the rest just after it ended), each followed by the runtime's DEL,
#     then a GC;
#   - the scenario suites (netns gone, bridge deleted, read-only/full store, two networks
#     on one bridge, bad input, security, hardening) from cargo test, built optimised.
# and writes the figures into docs/reliability.md (section "run").
#
#   sudo scripts/reliability.sh [--cycles N] [--kills N] [--seed N] [--no-doc]
set -euo pipefail
cd "$(dirname "$0")/.."

cycles=1000
kills=400
seed=$(date +%s)
doc=1
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles) cycles="$2"; shift 2 ;;
    --kills) kills="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --no-doc) doc=0; shift ;;
    *) echo "usage: $0 [--cycles N] [--kills N] [--seed N] [--no-doc]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "reliability.sh needs root (it creates network namespaces)" >&2
  exit 1
fi
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v python3 >/dev/null || need+=(python3)
command -v strace >/dev/null || need+=(strace)
[ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

vnet=$(scripts/build.sh)
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
python3 scripts/reliability.py --vnet "$vnet" \
  --cycles "$cycles" --kills "$kills" --seed "$seed" | tee "$out"

echo "scenario suites:"
suites=""
for t in faults bad_input security hardening; do
  log=$(cargo test --release --quiet --test "$t" -- --nocapture 2>&1 || true)
  line=$(echo "$log" | grep -E "^test result" | tail -1)
  # grep finds nothing in a suite that counts no inputs: not a failure (pipefail).
  inputs=$(echo "$log" | { grep -o "inputs: [0-9]*" || true; } | awk '{s+=$2} END {print s+0}')
  if [ "$inputs" -gt 0 ]; then what="$inputs inputs, "; else what=""; fi
  echo "  $t: $what${line#test result: }"
  suites="$suites $t: $what${line#test result: };"
done

status=0
python3 - "$out" "$suites" <<'EOF' || status=$?
import json, sys
path, suites = sys.argv[1], sys.argv[2].strip()
lines = open(path).read().strip().splitlines()
s = json.loads(lines[-1])
s["tests"] = suites
lines[-1] = json.dumps(s)
open(path, "w").write("\n".join(lines) + "\n")
bad = (s["load"]["errors"] or s["load"]["duplicates"] or s["faults"]["problems"]
       or s["faults"]["del_failures"] or any(s["load"]["left"].values())
       or any(s["faults"]["left"].values()) or "FAILED" in suites)
print("reliability: FAILED" if bad else "reliability: ok"
      + (f" (but {s['faults']['torn_reservations']} empty reservation files: src/ipam defect)"
         if s["faults"]["torn_reservations"] else ""))
sys.exit(1 if bad else 0)
EOF
if [ "$doc" = 1 ]; then
  python3 scripts/reliability_doc.py docs/reliability.md run "$out"
fi
exit "$status"
