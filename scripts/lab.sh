#!/usr/bin/env bash
# The CKA three-node picture on one Linux machine, each node a network namespace:
#
#   LAN 192.168.1.0/24: a bridge in a namespace of its own, plus a LAN host .100
#   node1 .11  bridge v-net-0 10.244.1.1/24   pods node1-pod1, node1-pod2
#   node2 .12  bridge v-net-0 10.244.2.1/24   pods node2-pod1, node2-pod2
#   node3 .13  bridge v-net-0 10.244.3.1/24   pods node3-pod1, node3-pod2
#
#   sudo scripts/lab.sh up       build it (idempotent) and print the connectivity matrix
#   sudo scripts/lab.sh status   print the matrix again (--json for machines)
#   sudo scripts/lab.sh down     remove everything it made
#   sudo scripts/lab.sh break [SCENARIO]   break one thing (drills: docs/walkthrough-6-drills.md)
#   sudo scripts/lab.sh check    healthy again? (vnet doctor on every node and pod, the matrix)
#   sudo scripts/lab.sh dhcp [leases|stop]   a DHCP server and the dhcp IPAM daemon on
#                                node1 (docs/walkthrough-8-dhcp.md); its leases; stop the daemon
#
# Each node runs vnet with its own config from `vnet cluster split` (per-node /24 of
# 10.244.0.0/16, ipMasq on): routes to the other nodes' pod subnets, masquerade to the LAN.
# Nothing is created in the machine's own network namespace.
# Environment: VNET_LAB_PREFIX (default "vlab": names of namespaces and /run/vnet-lab/<prefix>),
# VNET_BIN (a vnet binary to use instead of the one scripts/build.sh makes).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
P=${VNET_LAB_PREFIX:-vlab}
state=/run/vnet-lab/$P
lan_ns=$P-lan
host_ns=$P-host
lan_host=192.168.1.100
nodes=(node1 node2 node3)
declare -A node_ip=([node1]=192.168.1.11 [node2]=192.168.1.12 [node3]=192.168.1.13)

say() { echo "lab[$P]: $*" >&2; }

need_lab() {
  [ -d "$state/split" ] || { echo "lab.sh: no lab $P (run: sudo $0 up)" >&2; exit 1; }
}

need_root() {
  [ "$(id -u)" = 0 ] || { echo "lab.sh: needs root (network namespaces): sudo $0 $*" >&2; exit 1; }
}

# What a fresh Debian machine lacks.
install_packages() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
  command -v python3 >/dev/null || missing+=(python3)
  # Not needed by the lab itself: docs/lab.md and the walkthroughs watch the LAN with it.
  command -v tcpdump >/dev/null || [ -x /usr/bin/tcpdump ] || missing+=(tcpdump)
  apt_install "${missing[@]}"
}

# apt_install PACKAGE...: install them (none: nothing to do), or say what to install.
apt_install() {
  [ $# -gt 0 ] || return 0
  command -v apt-get >/dev/null || { echo "lab.sh: please install $*" >&2; exit 1; }
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

vnet_bin() {
  if [ -n "${VNET_BIN:-}" ]; then echo "$VNET_BIN"; return; fi
  local bin b
  # The build install.sh ships (build.sh finds a rustup cargo off sudo's PATH too); cargo
  # is a no-op when it is fresh. Without any cargo, what an earlier build left.
  if ! bin=$("$here/scripts/build.sh"); then
    for b in "$here"/target/*-musl/release/vnet "$here"/target/*/release/vnet "$here/target/release/vnet"; do
      [ -x "$b" ] && { bin=$b; break; }
    done
  fi
  [ -x "${bin:-}" ] || { echo "lab.sh: no vnet binary and no cargo to build it" >&2; exit 1; }
  echo "$bin"
}

ns_add() { [ -e "/run/netns/$1" ] || ip netns add "$1"; ip -n "$1" link set lo up; }

# Environment for scripts/node-setup.sh, the code the Vagrant lab runs on each VM.
node_env() {
  echo VNET_SPLIT="$state/split" VNET_STATE="$state" VNET_ROOT="$state/$1" \
    NODE_NS="$P-$1" POD_PREFIX="$P-" VNET_LAN_HOST="$lan_host"
}

node_setup() { # node_setup COMMAND NODE
  env $(node_env "$2") VNET_BIN="${bin:-}" "$here/scripts/node-setup.sh" "$1" "$2"
}

build_lan() {
  ns_add "$lan_ns"
  ip -n "$lan_ns" link show lan >/dev/null 2>&1 || ip -n "$lan_ns" link add lan type bridge
  ip -n "$lan_ns" link set lan up
  ns_add "$host_ns"
  if ! ip -n "$host_ns" link show eth0 >/dev/null 2>&1; then
    ip -n "$lan_ns" link add host type veth peer name eth0 netns "$host_ns"
    ip -n "$host_ns" addr add "$lan_host/24" dev eth0
  fi
  ip -n "$lan_ns" link set host master lan up
  ip -n "$host_ns" link set eth0 up
}

build_node() {
  local n=$1 ns=$P-$1
  ns_add "$ns"
  if ! ip -n "$ns" link show lan0 >/dev/null 2>&1; then
    ip -n "$lan_ns" link add "$n" type veth peer name lan0 netns "$ns"
    ip -n "$ns" addr add "${node_ip[$n]}/24" dev lan0
  fi
  ip -n "$lan_ns" link set "$n" master lan up
  ip -n "$ns" link set lan0 up
}

up() {
  need_root up
  install_packages
  bin=$(vnet_bin)
  mkdir -p "$state/pids"
  local spec=""
  for n in "${nodes[@]}"; do spec+="${spec:+,}$n=${node_ip[$n]}"; done
  "$bin" cluster split --range 10.244.0.0/16 --per-node /24 --nodes "$spec" \
    --out "$state/split" --data-dir "$state/{node}/ipam" >&2
  build_lan
  for n in "${nodes[@]}"; do build_node "$n"; done
  for n in "${nodes[@]}"; do
    node_setup install "$n" >&2
    node_setup pods "$n" >&2
  done
  start_lan_echo
  link_vnet
  status
}

# The walkthroughs type `vnet …`, under sudo, whose PATH is its secure_path: put a link in
# /usr/local/bin unless something is there already; `down` removes only our link.
vnet_link=/usr/local/bin/vnet
link_vnet() {
  if [ ! -e "$vnet_link" ] && [ ! -L "$vnet_link" ] && [ -d "${vnet_link%/*}" ]; then
    ln -s "$bin" "$vnet_link"
    echo "$bin" >"$state/vnet-link"
    say "vnet: $vnet_link -> $bin (removed by: $0 down)"
  fi
}

unlink_vnet() {
  [ -f "$state/vnet-link" ] || return 0
  if [ "$(readlink "$vnet_link" 2>/dev/null)" = "$(cat "$state/vnet-link")" ]; then
    rm -f "$vnet_link"
  fi
}

start_lan_echo() {
  local pidfile=$state/pids/lan-host.pid
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  rm -f "$pidfile"
  ip netns exec "$host_ns" setsid python3 "$here/scripts/lab_echo.py" serve --pidfile "$pidfile" \
    </dev/null >/dev/null 2>&1 &
  wait_for "$pidfile" "LAN host echo server"
}

# wait_for FILE WHAT: up to 5 s for FILE, which WHAT makes once it runs.
wait_for() {
  for _ in $(seq 50); do [ -e "$1" ] && return 0; sleep 0.1; done
  echo "lab.sh: $2 did not start" >&2
  return 1
}

status() {
  need_root status
  need_lab
  local lines=""
  for n in "${nodes[@]}"; do
    lines+=$(node_setup probe "$n")$'\n'
  done
  printf '%s' "$lines" | python3 "$here/scripts/lab_echo.py" matrix "$@"
}

down() {
  need_root down
  for n in "${nodes[@]}"; do
    if [ -d "$state/$n" ]; then node_setup teardown "$n" >&2 || true; fi
  done
  local pidfile=$state/pids/lan-host.pid
  if [ -f "$pidfile" ] && grep -q lab_echo.py "/proc/$(cat "$pidfile")/cmdline" 2>/dev/null; then
    kill "$(cat "$pidfile")" || true
  fi
  # The lab's own namespaces, and every other "$P-…" one: the walkthroughs' pods
  # ($P-web-1, $P-tiny-3, $P-hand…) go with the lab, so down leaves the machine as up
  # found it.
  local extra
  extra=$(ls /run/netns 2>/dev/null | grep "^$P-" || true)
  for ns in "$host_ns" "$lan_ns" "${nodes[@]/#/$P-}" $extra; do
    # Anything still running in a namespace of ours would keep it alive after `del`.
    [ -e "/run/netns/$ns" ] || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  unlink_vnet
  rm -rf "$state"
  rmdir /run/vnet-lab 2>/dev/null || true
  say "down"
}

# shellcheck source=scripts/lab-drills.sh
. "$here/scripts/lab-drills.sh"
# shellcheck source=scripts/lab-dhcp.sh
. "$here/scripts/lab-dhcp.sh"

case "${1:-}" in
  up) up ;;
  break) shift; break_lab "$@" ;;
  check) check_lab ;;
  status) shift; status "$@" ;;
  down) down ;;
  dhcp) shift; dhcp_cmd "$@" ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
