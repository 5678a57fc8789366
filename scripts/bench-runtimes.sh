#!/usr/bin/env bash
# Pod start and stop under real runtimes, with podman's netavark, the reference `bridge`
# and vnet, alternating round by round; and how much of it is the network plugin's.
#
#   sudo scripts/bench-runtimes.sh                  # full run (about 4 minutes on 2 cores)
#   sudo scripts/bench-runtimes.sh --rounds 3       # a short run, for a smoke test
#   sudo scripts/bench-runtimes.sh --write-doc      # also put the figures into docs/performance.md
#   options: --rounds N (default 30), --warmup N (default 2), --json FILE (every run and call),
#            --variants LIST (a subset, e.g. podman/vnet,cri/vnet; development only)
#
# Measured (scripts/bench_runtimes.py has the details):
#   podman 4.3: `podman run --rm --network NET IMAGE true` with netavark (podman's default
#     backend), with the CNI backend and the reference bridge, and with the CNI backend and
#     vnet (podman's default conflist: plugin → portmap → firewall → tuning), each on a
#     network that keeps another container running and on one where it is the last;
#   containerd 1.6's CRI: RunPodSandbox + StopPodSandbox + RemovePodSandbox with the
#     reference bridge and with vnet (plugin → portmap → loopback);
#   all ipMasq on, /24 subnets. Plain runs give the totals; separate wrapped runs (a
#   timing wrapper, scripts/cniwrap.c, in the runtime's plugin directory) give each plugin
#   call's time and the network's share of a pod start.
#
# Everything is private: each runtime runs in a network namespace made here (entered with
# nsenter), with its own configuration, storage, state, socket, CNI conf, plugin and IPAM
# directories under a temporary directory. On exit, whatever happened, everything is
# removed and the machine's own network namespace (links, addresses, routes, rules, nft
# ruleset, iptables) is compared with what it was before; a difference fails the run.
set -euo pipefail

write_doc=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --write-doc) write_doc=1 ;;
    --rounds|--warmup|--variants)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      args+=("$1" "$2"); shift ;;
    --json)
      [ $# -ge 2 ] || { echo "$1 needs a value" >&2; exit 2; }
      args+=("$1" "$(realpath -m "$2")"); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--rounds N] [--warmup N] [--json FILE] [--variants LIST] [--write-doc]" >&2
       exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "bench-runtimes.sh needs root (it creates network namespaces and runs podman and containerd)" >&2
  exit 1
fi

# What a Debian 12 machine may lack. netavark and aardvark-dns: podman's default network
# backend (aardvark-dns is its DNS helper, unused here but expected beside it).
need=()
for pkg in podman netavark aardvark-dns containerd runc conmon containernetworking-plugins \
  busybox-static nftables iptables iproute2 util-linux python3 python3-grpcio \
  python3-grpc-tools gcc libc6-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
missing=()
for f in /usr/bin/podman /usr/lib/podman/netavark /usr/bin/containerd /usr/bin/ctr \
  /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc /usr/bin/conmon /usr/bin/nsenter \
  /usr/sbin/nft /usr/sbin/iptables /usr/bin/gcc /usr/bin/python3; do
  [ -x "$f" ] || missing+=("$f")
done
for p in bridge host-local portmap firewall tuning loopback; do
  [ -x "/usr/lib/cni/$p" ] || missing+=("/usr/lib/cni/$p")
done
if [ ! -x /usr/bin/busybox ] || [[ "$(ldd /usr/bin/busybox 2>&1 || true)" != *"not a dynamic"* ]]; then
  missing+=("/usr/bin/busybox (static: busybox-static)")
fi
if ! /usr/bin/python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null; then
  missing+=("python3-grpcio/python3-grpc-tools for /usr/bin/python3")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-runtimes.sh: missing after installing: ${missing[*]}" >&2
  exit 1
fi

# The binary scripts/install.sh ships (static musl, scripts/build.sh).
vnet=$(scripts/build.sh)
[ -x "$vnet" ] || { echo "bench-runtimes.sh: scripts/build.sh gave no binary ($vnet)" >&2; exit 1; }

py=/usr/bin/python3   # Debian's, which sees python3-grpcio
driver=scripts/bench_runtimes.py
work=$(mktemp -d /var/tmp/vnet-bench-runtimes.XXXXXX)
# shellcheck source=scripts/rootns-guard.sh
. scripts/rootns-guard.sh
rootns_guard "$work" "bench-runtimes.sh" "$py" "$driver" --cleanup "$work"

"$py" "$driver" --workdir "$work" --vnet "$vnet" --markdown "$work/report.md" ${args[@]+"${args[@]}"}

if [ "$write_doc" = 1 ]; then
  "$py" scripts/reliability_doc.py docs/performance.md runtimes "$work/report.md"
fi
