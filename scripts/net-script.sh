#!/usr/bin/env bash
# net-script.sh: the CKA course's pod networking script, made real and correct.
#
#   net-script.sh add <container-id> <netns-name> [ifname]
#   net-script.sh del <container-id> <netns-name> [ifname]
#
# It does, with iproute2 and a plain text file for IPAM, what vnet does through netlink:
# the same bridge, veth, addresses, routes and sysctls, so the two can be compared on the
# same lab (`vnet explain` prints vnet's version of each step).
#
# With CONF set it does IPAM the way the course says a plugin must ("our job to invoke the
# IPAM plugin"): it runs the IPAM plugin its config names ("ipam": {"type": ...}) from
# CNI_PATH, with the CNI_* variables a runtime would give it and the config on stdin, and
# takes the address and gateway from the plugin's JSON answer; DEL runs it again to
# release. host-local keeps a file per address under its dataDir, as vnet does.
#
# Settings, from the environment:
#   BRIDGE     bridge name                     (default v-net-0)
#   SUBNET     the node's pod subnet, IPv4     (default 10.244.1.0/24)
#   IPAM_FILE  one "address container ifname" line per pod
#              (default /var/lib/net-script/$BRIDGE.ips)
#   CONF       a CNI network config: IPAM by its plugin instead of IPAM_FILE
#              (SUBNET is then the plugin's answer, not a setting)
#   CNI_PATH   where the IPAM plugin is        (default /opt/cni/bin)
#   VERBOSE=1  print each command before running it
set -Eeuo pipefail   # -E: the rollback trap also fires inside functions

BRIDGE=${BRIDGE:-v-net-0}
SUBNET=${SUBNET:-10.244.1.0/24}
IPAM_FILE=${IPAM_FILE:-/var/lib/net-script/$BRIDGE.ips}
CONF=${CONF:-}
CNI_PATH=${CNI_PATH:-/opt/cni/bin}

usage() { sed -n '4,5p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
cmd=$1 id=$2 netns=$3 ifname=${4:-eth0}

# With VERBOSE=1 every command is printed before it runs, on the script's own stderr (fd
# 3): a command whose stderr is silenced (`run sysctl … 2>/dev/null`) is still shown.
exec 3>&2
say() { [ "${VERBOSE:-0}" = 1 ] && echo "+ $*" >&3 || true; }
run() {
  say "$@"
  "$@"
}

# --- IPv4 arithmetic, so the script needs nothing but bash and iproute2 -------------
to_int() { local IFS=.; set -- $1; echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }
to_ip() { echo "$(( $1 >> 24 & 255 )).$(( $1 >> 16 & 255 )).$(( $1 >> 8 & 255 )).$(( $1 & 255 ))"; }

subnet() { # subnet CIDR (any address in it): sets prefix, first (the gateway), last, gateway
  local base
  prefix=${1#*/}
  base=$(( $(to_int "${1%/*}") & (0xffffffff << (32 - prefix)) & 0xffffffff ))
  first=$(( base + 1 ))
  last=$(( base + (1 << (32 - prefix)) - 2 ))   # the broadcast address is not a host
  gateway=$(to_ip "$first")
}
subnet "$SUBNET"

# --- IPAM: who gets which address is a line in a file, guarded by a lock ------------
lock_ipam() {
  mkdir -p "$(dirname "$IPAM_FILE")"
  touch "$IPAM_FILE"
  exec 9>>"$IPAM_FILE.lock"
  flock 9                                # one allocation at a time on this node
}

allocate() {
  if grep -q " $id $ifname\$" "$IPAM_FILE"; then
    echo "net-script: $id/$ifname already has an address" >&2; exit 1
  fi
  local i ip
  for (( i = first + 1; i <= last; i++ )); do
    ip=$(to_ip "$i")
    if ! grep -q "^$ip " "$IPAM_FILE"; then
      say "echo '$ip $id $ifname' >> $IPAM_FILE"
      echo "$ip $id $ifname" >> "$IPAM_FILE"   # the line IS the reservation
      echo "$ip"
      return
    fi
  done
  echo "net-script: no free address in $SUBNET" >&2; exit 1
}

release() {
  local tmp
  tmp=$(mktemp "$IPAM_FILE.XXXXXX")
  say "grep -v ' $id $ifname\$' $IPAM_FILE > $tmp && mv $tmp $IPAM_FILE"
  grep -v " $id $ifname\$" "$IPAM_FILE" > "$tmp" || true
  mv "$tmp" "$IPAM_FILE"
}

# --- IPAM by a plugin (CONF): the chain a real CNI plugin runs --------------------------
# The first "type" after "ipam" in the config, read with sed so the script needs no JSON
# tool; it is the IPAM object's own type in any config whose "ipam" opens with "type".
ipam_type() {
  local t
  t=$(tr -d '\n' < "$CONF" | sed -n 's/.*"ipam"[[:space:]]*:[[:space:]]*{[^}]*"type"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
  [ -n "$t" ] || { echo "net-script: no ipam.type in $CONF" >&2; exit 1; }
  case $t in */*|.*) echo "net-script: ipam.type $t is not a plugin name" >&2; exit 1 ;; esac
  echo "$t"
}

ipam_exec() { # ipam_exec ADD|DEL: the IPAM plugin's answer on stdout
  local plugin
  plugin=$CNI_PATH/$(ipam_type)
  [ -x "$plugin" ] || { echo "net-script: no IPAM plugin $plugin (set CNI_PATH)" >&2; exit 1; }
  say "CNI_COMMAND=$1 CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$netns CNI_IFNAME=$ifname CNI_PATH=$CNI_PATH $plugin < $CONF"
  CNI_COMMAND=$1 CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$netns CNI_IFNAME=$ifname \
    CNI_PATH=$CNI_PATH "$plugin" < "$CONF"
}

# The first value of "key" in the plugin's JSON (host-local prints one field a line).
json_field() { sed -n "/\"$1\"/{s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p;q}"; }

# Sets ip, prefix and gateway from the plugin's answer; a CNI error is printed and fatal.
plugin_allocate() {
  local answer address
  if ! answer=$(ipam_exec ADD); then
    echo "net-script: the IPAM plugin failed: $(json_field msg <<<"$answer")" >&2; exit 1
  fi
  address=$(json_field address <<<"$answer")
  [ -n "$address" ] || { echo "net-script: no address in the IPAM answer: $answer" >&2; exit 1; }
  subnet "$address"                 # the pod's prefix, and the first host as a default gateway
  ip=${address%/*}
  gateway=$(json_field gateway <<<"$answer")
  gateway=${gateway:-$(to_ip "$first")}
}

release_any() {
  if [ -n "$CONF" ]; then ipam_exec DEL >/dev/null; else release; fi
}

add() {
  local ip veth
  if [ -n "$CONF" ]; then
    plugin_allocate                  # the plugin locks its own store
  else
    lock_ipam
    ip=$(allocate)
  fi
  veth=veth$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  # If any step fails, take back what was done: the veth (its peer goes with it) and
  # the address. The bridge is shared by every pod of the node and stays.
  trap 'ip link del "$veth" 2>/dev/null || true; release_any' ERR

  # 1. A bridge per node: the virtual switch all its pods plug into.
  ip link show "$BRIDGE" >/dev/null 2>&1 || run ip link add "$BRIDGE" type bridge
  run sysctl -qw "net.ipv6.conf.$BRIDGE.accept_ra=0" 2>/dev/null || true
  run ip link set "$BRIDGE" up
  # 2. The pod's "cable": a veth pair, one end created straight inside the pod.
  run ip link add "$veth" type veth peer name "$ifname" netns "$netns"
  run sysctl -qw "net.ipv6.conf.$veth.accept_ra=0" 2>/dev/null || true
  # A bridge port needs no IPv6 address of its own (each would add routes the kernel
  # walks at every link change on the node).
  run ip link set "$veth" addrgenmode none
  run ip netns exec "$netns" sysctl -qw "net.ipv4.conf.$ifname.arp_notify=1"
  # 3. Plug the node end into the bridge and bring it up.
  run ip link set "$veth" master "$BRIDGE"
  run ip link set "$veth" up
  # 4. The pod's address and its way out.
  run ip -n "$netns" addr add "$ip/$prefix" dev "$ifname"
  run ip -n "$netns" link set "$ifname" up
  run ip -n "$netns" route add default via "$gateway" dev "$ifname"
  # 5. The gateway lives on the bridge; the node forwards between pods and beyond.
  # (grep reads a string, not a pipe: under pipefail `ip … | grep -q` fails when grep
  # exits at its first match and ip gets SIGPIPE, and the address would be added twice.)
  grep -q " $gateway/$prefix " <<<"$(ip addr show dev "$BRIDGE")" ||
    run ip addr add "$gateway/$prefix" dev "$BRIDGE"
  run sysctl -qw net.ipv4.ip_forward=1
  # 6. Pin the bridge MAC, or it follows its lowest port's MAC and ARP caches go stale.
  run ip link set "$BRIDGE" address "$(cat "/sys/class/net/$BRIDGE/address")"
  trap - ERR
  echo "$ifname $ip/$prefix via $gateway (host end $veth on $BRIDGE)"
}

del() {
  # Deleting one end of a veth pair deletes both. A pod whose namespace is gone has no
  # interface left to delete; its address is released all the same.
  if grep -qw "^$netns" <<<"$(ip netns list)"; then
    run ip -n "$netns" link del "$ifname" 2>/dev/null || true
  fi
  [ -n "$CONF" ] || lock_ipam        # a plugin locks its own store
  release_any                        # host-local: a DEL of an unknown id is not an error
}

case "$cmd" in
  add|ADD) add ;;
  del|DEL) del ;;
  *) usage ;;
esac
