# DHCP IPAM in the namespace lab, sourced by scripts/lab.sh (which sets P, state, here,
# say, need_root, need_lab, apt_install, wait_for). node1 gets a DHCP server (busybox
# udhcpd) on its bridge v-net-0 and the reference `dhcp` IPAM daemon, both running inside
# the node's namespace, and a network config that delegates to that daemon
# (docs/walkthrough-8-dhcp.md).
#
#   lab.sh dhcp          start both (idempotent), install the plugin, write the config
#   lab.sh dhcp leases   the server's lease table, read fresh
#   lab.sh dhcp stop     stop the daemon (to see ADD fail without it); `lab.sh dhcp` restarts it
#
# Everything lives in /run/vnet-lab/<prefix>/dhcp; `lab.sh down` stops both (they run in
# the lab's namespace) and removes the directory.

dhcp_plugin=/usr/lib/cni/dhcp

dhcp_packages() {
  local missing=()
  command -v busybox >/dev/null || missing+=(busybox-static)
  [ -x "$dhcp_plugin" ] || missing+=(containernetworking-plugins)
  apt_install "${missing[@]}"
}

# dhcp_alive PIDFILE WORD: the pid in PIDFILE runs, and its command line has WORD.
dhcp_alive() {
  [ -f "$1" ] && grep -qa -- "$2" "/proc/$(cat "$1")/cmdline" 2>/dev/null
}

dhcp_up() {
  need_root dhcp
  need_lab
  dhcp_packages
  local d=$state/dhcp ns=$P-node1
  mkdir -p "$d"
  # The server answers broadcasts on node1's bridge, which holds the pods' gateway
  # statically (lab.sh up put it there). Its pool is a slice of node1's pod subnet that
  # host-local has not handed out in the lab. auto_time 0: the lease file is written
  # only when asked (SIGUSR1, `lab.sh dhcp leases`), never while being read.
  cat >"$d/udhcpd.conf" <<EOF
interface v-net-0
start 10.244.1.200
end 10.244.1.209
option subnet 255.255.255.0
option router 10.244.1.1
option lease 20
lease_file $d/udhcpd.leases
pidfile $d/udhcpd.pid
auto_time 0
EOF
  if ! dhcp_alive "$d/udhcpd.pid" udhcpd; then
    rm -f "$d/udhcpd.pid"
    [ -e "$d/udhcpd.leases" ] || : >"$d/udhcpd.leases"
    ip netns exec "$ns" setsid busybox udhcpd -f "$d/udhcpd.conf" \
      </dev/null >"$d/udhcpd.log" 2>&1 &
    wait_for "$d/udhcpd.pid" "udhcpd (log: $d/udhcpd.log)"
  fi
  if ! dhcp_alive "$d/dhcp.pid" daemon; then
    rm -f "$d/dhcp.pid" "$d/dhcp.sock"
    ip netns exec "$ns" setsid "$dhcp_plugin" daemon -socketpath "$d/dhcp.sock" \
      -pidfile "$d/dhcp.pid" </dev/null >"$d/daemon.log" 2>&1 &
    wait_for "$d/dhcp.sock" "the dhcp daemon (log: $d/daemon.log)"
  fi
  # The plugin where the node's runtime looks for plugins (CNI_PATH).
  ln -sf "$dhcp_plugin" "$state/node1/opt/cni/bin/dhcp"
  cat >"$d/dhcp.conf" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "dhcp-net",
  "type": "vnet",
  "bridge": "v-net-0",
  "isGateway": true,
  "ipam": { "type": "dhcp", "daemonSocketPath": "$d/dhcp.sock" }
}
EOF
  echo "node1: udhcpd on v-net-0, pool 10.244.1.200-209, 20 s leases (log: $d/udhcpd.log)"
  echo "node1: dhcp daemon on $d/dhcp.sock (log: $d/daemon.log)"
  echo "node1: $state/node1/opt/cni/bin/dhcp -> $dhcp_plugin"
  echo "config: $d/dhcp.conf"
}

# udhcpd keeps its leases in memory: have it write them out, wait until two reads agree
# (it rewrites the file in place), print expiry times as UTC.
dhcp_leases() {
  need_root dhcp
  local d=$state/dhcp out="" prev=x
  dhcp_alive "$d/udhcpd.pid" udhcpd || { echo "lab.sh: no DHCP server (run: sudo $0 dhcp)" >&2; exit 1; }
  rm -f "$d/udhcpd.leases"
  kill -USR1 "$(cat "$d/udhcpd.pid")"
  for _ in $(seq 50); do
    sleep 0.1
    out=$(busybox dumpleases -a -d -f "$d/udhcpd.leases" 2>/dev/null) || continue
    [ "$out" = "$prev" ] && break
    prev=$out
  done
  [ "$out" = "$prev" ] || { echo "lab.sh: could not read $d/udhcpd.leases" >&2; exit 1; }
  printf '%-18s %-14s %s\n' MAC IP EXPIRES
  local mac ip rest when
  printf '%s\n' "$out" | tail -n +2 | while read -r mac ip rest; do
    when=${rest##* }
    [ "$when" = expired ] || when=$(date -u -d "@$when" +%Y-%m-%dT%H:%M:%SZ)
    printf '%-18s %-14s %s\n' "$mac" "$ip" "$when"
  done
}

# Stops the daemon and returns once it is gone (or a zombie, which holds no socket): its
# socket file stays behind, as the daemon leaves it, and refuses connections.
dhcp_stop() {
  need_root dhcp
  local d=$state/dhcp pid stat
  dhcp_alive "$d/dhcp.pid" daemon || { echo "node1: no dhcp daemon running"; return 0; }
  pid=$(cat "$d/dhcp.pid")
  kill "$pid"
  for _ in $(seq 100); do
    stat=$(ps -o stat= -p "$pid" || true)
    case "$stat" in "" | Z*) echo "node1: dhcp daemon stopped"; return 0 ;; esac
    sleep 0.1
  done
  echo "lab.sh: the dhcp daemon (pid $pid) did not stop" >&2
  return 1
}

dhcp_cmd() {
  case "${1:-up}" in
    up) dhcp_up ;;
    leases) dhcp_leases ;;
    stop) dhcp_stop ;;
    *) sed -n '7,9p' "$here/scripts/lab-dhcp.sh"; exit 2 ;;
  esac
}
