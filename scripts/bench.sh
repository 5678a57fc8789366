#!/usr/bin/env bash
# vnet against the reference bridge + host-local (Debian containernetworking-plugins), on
# this machine, in alternation, inside throwaway network namespaces (never the root one).
#
#   sudo scripts/bench.sh                 # full run (about 5 minutes on 2 cores)
#   sudo scripts/bench.sh --quick         # fewer pods and rounds, for a smoke test
#   sudo scripts/bench.sh --write-doc     # also put the table into docs/performance.md
#   sudo scripts/bench.sh --scale         # 1,000 pods on one node instead (about 8 minutes)
#   sudo scripts/bench.sh --scale --quick # its smoke test (40 pods, under 15 s)
#
# --scale (scripts/bench_scale.py): sequential ADD then DEL of --pods pods (1,000 by
# default) on a node namespace with a /22 subnet, ipMasq off and on, vnet and the
# reference, in the same run, each configuration on a node of its own and their calls in
# turn; medians of the first and last 20 calls, the ratios against issue 14's targets and
# against the reference, nft rules walked per new connection, peak RSS. Options with it:
# --pods N, --quick (40 pods unless --pods, 10-call edges, 2 RSS pairs), --configs LIST
# (e.g. vnet-off,vnet-on), --json FILE, --vnet BIN (another build instead of
# scripts/build.sh's), --no-ipv6 (an experiment: IPv6 off in the node and pod namespaces,
# so the veths get no link-local address). The machine's own network namespace is compared
# before and after (scripts/rootns-guard.sh); a difference fails the run.
#
# Prints medians, p95 and the ratio vnet/reference. Figures come from scripts/bench.py
# (exec-included latency from the caller's side; see its header). The IPAM-only rows come
# from scripts/bench-ipam.sh when that script exists, else bench.py measures them itself.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
write_doc=0
scale=0
scale_args=()
vnet=""
usage="usage: $0 [--quick] [--write-doc] | --scale [--pods N] [--quick] [--configs LIST] [--json FILE] [--no-ipv6] [--vnet BIN]"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --write-doc) write_doc=1 ;;
    --scale) scale=1 ;;
    --no-ipv6) scale_args+=("$1") ;;
    --vnet)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      vnet=$(realpath "$2"); shift ;;
    --pods|--configs)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      scale_args+=("$1" "$2"); shift ;;
    --json)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      scale_args+=("$1" "$(realpath -m "$2")"); shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
if [ "$scale" = 0 ] && { [ ${#scale_args[@]} -gt 0 ] || [ -n "$vnet" ]; }; then
  echo "--pods, --configs, --json, --no-ipv6 and --vnet go with --scale; $usage" >&2; exit 2
fi
if [ "$scale" = 1 ] && [ "$write_doc" = 1 ]; then
  echo "--scale has no --write-doc: its figures are written into docs/performance.md by hand" >&2
  exit 2
fi

if [ "$(id -u)" != 0 ]; then
  echo "bench.sh needs root (it creates network namespaces)" >&2
  exit 1
fi

need=()
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
command -v nft >/dev/null || need+=(nftables)
command -v iptables >/dev/null || need+=(iptables)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The build scripts/install.sh ships (static, scripts/build.sh), and the plain dynamic
# `cargo build --release` for two RSS rows (see docs/performance.md).
[ -n "$vnet" ] || vnet=$(scripts/build.sh)

if [ "$scale" = 1 ]; then
  prefix="vsc$$"
  # The driver removes its namespaces itself; these are what a killed driver left.
  leftovers() {
    local ns rc=0
    for ns in $(ip netns list | awk -v p="$prefix-" 'index($1, p) == 1 { print $1 }'); do
      ip netns del "$ns" || rc=1
    done
    return "$rc"
  }
  work=$(mktemp -d /tmp/vnet-scale.XXXXXX)
  # shellcheck source=scripts/rootns-guard.sh
  . scripts/rootns-guard.sh
  rootns_guard "$work" "bench.sh --scale" leftovers
  if [ "$quick" = 1 ]; then
    scale_args=(--pods 40 --edge 10 --rss-pods 2 ${scale_args[@]+"${scale_args[@]}"})
  fi
  python3 scripts/bench_scale.py --vnet "$vnet" --prefix "$prefix" --workdir "$work" \
    ${scale_args[@]+"${scale_args[@]}"}
  exit 0
fi

dynamic=$(scripts/build.sh --dynamic)

args=(--vnet "$vnet" --vnet-dynamic "$dynamic")
if [ "$quick" = 1 ]; then
  args+=(--pods 30 --parallel 30 --rounds 1 --first 3 --ipam-trials 5 --ipam 10,2000)
fi
if [ -x scripts/bench-ipam.sh ]; then
  args+=(--ipam "")
fi

out="$(mktemp)"
trap 'rm -f "$out" "$out.ipam"' EXIT
python3 scripts/bench.py "${args[@]}" | tee "$out"

if [ -x scripts/bench-ipam.sh ]; then
  echo
  echo "IPAM-only rows (scripts/bench-ipam.sh):"
  scripts/bench-ipam.sh | tee "$out.ipam"
fi

if [ "$write_doc" = 1 ]; then
  python3 - "$out" docs/performance.md <<'EOF'
import sys, datetime, platform, os
out, doc = sys.argv[1], sys.argv[2]
body = open(out).read().rstrip()
ipam = out + ".ipam"
if os.path.exists(ipam):
    body += "\n\nIPAM-only rows (scripts/bench-ipam.sh):\n\n" + open(ipam).read().rstrip()
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
block = (f"<!-- bench:begin -->\nRun {stamp} on {platform.node()} "
         f"({os.cpu_count()} CPUs, kernel {platform.release()}) by `scripts/bench.sh`:\n\n"
         f"{body}\n<!-- bench:end -->")
text = open(doc).read()
a, b = text.index("<!-- bench:begin -->"), text.index("<!-- bench:end -->") + len("<!-- bench:end -->")
open(doc, "w").write(text[:a] + block + text[b:])
print(f"updated {doc}")
EOF
fi
