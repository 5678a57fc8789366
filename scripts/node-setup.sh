#!/usr/bin/env bash
# One node of the three-node lab. The same code runs in both labs: scripts/lab.sh (each
# node a network namespace of one machine) and vagrant/Vagrantfile (each node a VM).
#   node-setup.sh install NODE    install vnet and this node's config, sync its routes
#   node-setup.sh pods NODE       two pods (network namespaces), CNI ADD for each through
#                                 the installed plugin, echo servers in pods and node
#   node-setup.sh probe NODE      from each of this node's pods, ask every target which
#                                 source address it saw (JSON lines on stdout)
#   node-setup.sh teardown NODE   stop the echo servers, CNI DEL, delete the pod namespaces
# Environment:
#   VNET_SPLIT     output of `vnet cluster split --out` (nodes.json, NODE/10-bridge.conf)
#   VNET_STATE     directory for pod addresses and echo-server pid files
#   VNET_ROOT      install prefix: "" on a VM (/opt/cni/bin, /etc/cni/net.d)
#   VNET_BIN       the vnet binary to install (install only)
#   NODE_NS        the network namespace that is the node (namespace lab); "" on a VM
#   POD_PREFIX     prefix of pod namespace names (default: none: node1-pod1)
#   VNET_LAN_HOST  an address outside the pod network to probe too (optional)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: node-setup.sh install|pods|probe|teardown NODE}
node=${2:?usage: node-setup.sh $cmd NODE}
split=${VNET_SPLIT:?VNET_SPLIT must name the split directory}
state=${VNET_STATE:?VNET_STATE must name a state directory}
root=${VNET_ROOT:-}
node_ns=${NODE_NS:-}
pod_prefix=${POD_PREFIX:-}
bindir="$root/opt/cni/bin"
conf="$root/etc/cni/net.d/10-bridge.conf"

# Run a command on the node: inside its namespace in the namespace lab, as is on a VM.
innode() {
  if [ -n "$node_ns" ]; then ip netns exec "$node_ns" "$@"; else "$@"; fi
}

pod_ns() { echo "${pod_prefix}$node-$1"; }

cni() { # cni COMMAND POD
  local ns
  ns=$(pod_ns "$2")
  innode env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$1" CNI_CONTAINERID="$ns" \
    CNI_NETNS="/run/netns/$ns" CNI_IFNAME=eth0 CNI_PATH="$bindir" "$bindir/vnet" <"$conf"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# start_echo PIDFILE [ip netns exec NS]: a UDP echo server reporting the peer address.
start_echo() {
  local pidfile=$1
  shift
  alive "$pidfile" && return 0
  rm -f "$pidfile"
  "$@" setsid python3 "$here/lab_echo.py" serve --pidfile "$pidfile" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 50); do [ -f "$pidfile" ] && return 0; sleep 0.1; done
  echo "node-setup: echo server $pidfile did not start" >&2
  return 1
}

stop_echo() {
  local pidfile=$1 pid
  if alive "$pidfile"; then
    pid=$(cat "$pidfile")
    # Only our own server: the pid must still run lab_echo.py.
    if grep -q lab_echo.py "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid"; fi
  fi
  rm -f "$pidfile"
}

install_node() {
  local bin=${VNET_BIN:?VNET_BIN must name the vnet binary}
  install -d -m 0755 "$bindir" "$(dirname "$conf")"
  install -m 0755 "$bin" "$bindir/.vnet.new" && mv -f "$bindir/.vnet.new" "$bindir/vnet"
  install -m 0644 "$split/$node/10-bridge.conf" "$conf"
  echo "$node: installed $bindir/vnet and $conf"
  # ADD syncs the routes too; doing it now makes them visible before the first pod.
  innode "$bindir/vnet" routes sync "$conf" | sed "s/^/$node: /"
}

start_pods() {
  mkdir -p "$state/pods" "$state/pids"
  for pod in pod1 pod2; do
    local ns ip
    ns=$(pod_ns "$pod")
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    ip -n "$ns" link set lo up
    if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
      if ! cni ADD "$pod" >"$state/pods/$node.$pod.result" 2>"$state/pods/$node.$pod.err"; then
        echo "$node: ADD $pod failed:" >&2
        cat "$state/pods/$node.$pod.result" "$state/pods/$node.$pod.err" >&2
        return 1
      fi
    fi
    ip=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)
    printf '{"node": "%s", "pod": "%s", "ip": "%s", "netns": "%s"}\n' \
      "$node" "$pod" "$ip" "$ns" >"$state/pods/$node.$pod.json"
    start_echo "$state/pids/$node.$pod.pid" ip netns exec "$ns"
    echo "$node: $pod ($ns) eth0 $ip"
  done
  if [ -n "$node_ns" ]; then
    start_echo "$state/pids/$node.pid" ip netns exec "$node_ns"
  else
    start_echo "$state/pids/$node.pid"
  fi
}

probe() {
  for pod in pod1 pod2; do
    ip netns exec "$(pod_ns "$pod")" python3 "$here/lab_echo.py" probe --state "$state" \
      --split "$split" --node "$node" --pod "$pod" --lan-host "${VNET_LAN_HOST:-}"
  done
}

teardown() {
  stop_echo "$state/pids/$node.pid"
  for pod in pod1 pod2; do
    local ns
    ns=$(pod_ns "$pod")
    stop_echo "$state/pids/$node.$pod.pid"
    if [ -x "$bindir/vnet" ] && [ -f "$conf" ]; then
      cni DEL "$pod" >/dev/null 2>&1 || echo "$node: DEL $pod failed (continuing)" >&2
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$state/pods/$node.$pod."*
  done
}

case "$cmd" in
  install) install_node ;;
  pods) start_pods ;;
  probe) probe ;;
  teardown) teardown ;;
  *) echo "node-setup.sh: unknown command $cmd" >&2; exit 2 ;;
esac
