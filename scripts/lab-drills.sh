# Break-it drills for the namespace lab, sourced by scripts/lab.sh (which sets P, state,
# nodes, say, need_root, need_lab). Each scenario breaks one thing a CKA student meets, on node1
# (its pod1 unless the scenario needs another), the way it happens for real: by hand
# with iproute2, sysctl or nft, or by a pod that died without its DEL.
#
#   lab.sh break [SCENARIO]   break one thing (a random one, not named, without SCENARIO)
#   lab.sh check              healthy again? (vnet doctor on every node and pod, and the
#                             connectivity matrix); says nothing about what is wrong

drill_scenarios=(bridge-down veth-detached pod-down gateway-missing forwarding-off
  route-missing route-wrong duplicate-address pool-exhausted stale-reservation
  masquerade-missing)

node1_ns() { echo "$P-node1"; }
pod_ns_of() { echo "$P-node1-$1"; }
node_conf() { echo "$state/$1/etc/cni/net.d/10-bridge.conf"; }
node_vnet() { echo "$state/$1/opt/cni/bin/vnet"; }

# The IPv4 address (with prefix) on a pod's eth0.
pod_cidr_of() {
  ip -n "$(pod_ns_of "$1")" -j -4 addr show dev eth0 |
    python3 -c 'import json,sys; print(next(a["local"]+"/"+str(a["prefixlen"]) for l in json.load(sys.stdin) for a in l["addr_info"]))'
}

# The node's end of a pod's veth: the node1 link whose index the pod's eth0 names.
host_veth_of() {
  local idx
  idx=$(ip -n "$(pod_ns_of "$1")" -j link show dev eth0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["link_index"])')
  ip -n "$(node1_ns)" -j link show | python3 -c "import json,sys; print(next(l['ifname'] for l in json.load(sys.stdin) if l['ifindex'] == $idx))"
}

# Reservations for every free address of node1's pool, as ADDs that crashed after IPAM
# leave them (the reference store's format: "<container ID>\r\n<ifname>").
fill_pool() {
  local dir=$state/node1/ipam/v-net i
  for i in $(seq 2 254); do
    [ -e "$dir/10.244.1.$i" ] && continue
    printf '%s\r\n%s' "$P-crashed-$i" eth0 >"$dir/10.244.1.$i"
  done
}

# A pod whose ADD succeeded and whose namespace then went away without a DEL (a node
# crash, a runtime killed mid-way): its reservation and masquerade element stay.
crash_pod() {
  local ns=$P-node1-crashed rc=0 add=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_IFNAME=eth0
    CNI_CONTAINERID="$P-node1-crashed" CNI_PATH="$state/node1/opt/cni/bin")
  # The same drill twice: the first crash's leftovers go first (its DEL, without a netns).
  ip netns exec "$(node1_ns)" "${add[@]}" CNI_COMMAND=DEL CNI_NETNS= "$(node_vnet node1)" \
    <"$(node_conf node1)" >/dev/null || true
  ip netns add "$ns"
  ip netns exec "$(node1_ns)" "${add[@]}" CNI_COMMAND=ADD CNI_NETNS="/run/netns/$ns" \
    "$(node_vnet node1)" <"$(node_conf node1)" >/dev/null || rc=$?
  # The namespace goes whatever ADD did (a failed ADD, e.g. a full pool, too).
  ip netns del "$ns"
  return "$rc"
}

break_lab() {
  need_root break
  need_lab
  local s=${1:-} secret=0
  if [ -z "$s" ]; then
    s=${drill_scenarios[RANDOM % ${#drill_scenarios[@]}]}
    secret=1
  fi
  local n1
  n1=$(node1_ns)
  case "$s" in
    bridge-down) ip -n "$n1" link set v-net-0 down ;;
    veth-detached) ip -n "$n1" link set "$(host_veth_of pod1)" nomaster ;;
    pod-down) ip -n "$(pod_ns_of pod1)" link set eth0 down ;;
    gateway-missing) ip -n "$n1" addr del 10.244.1.1/24 dev v-net-0 ;;
    forwarding-off) ip netns exec "$n1" sysctl -qw net.ipv4.ip_forward=0 ;;
    route-missing) ip -n "$n1" route del 10.244.2.0/24 ;;
    # node3's pods sent to node2, as a typo in a hand-made route does.
    route-wrong) ip -n "$n1" route replace 10.244.3.0/24 via 192.168.1.12 proto 118 ;;
    duplicate-address) ip -n "$(pod_ns_of pod2)" addr add "$(pod_cidr_of pod1)" dev eth0 ;;
    pool-exhausted) fill_pool ;;
    stale-reservation) crash_pod ;;
    masquerade-missing) ip netns exec "$n1" nft flush chain inet vnet postrouting ;;
    *)
      echo "lab.sh break: unknown scenario $s (one of: ${drill_scenarios[*]})" >&2
      exit 2
      ;;
  esac
  echo "$s" >"$state/broken"
  if [ "$secret" = 1 ]; then
    say "something on node1 is broken now; find it (sudo $0 check says when the lab is healthy)"
  else
    say "broke: $s"
  fi
}

check_lab() {
  need_root check
  need_lab
  local bad=() n pod
  for n in "${nodes[@]}"; do
    ip netns exec "$P-$n" "$(node_vnet "$n")" doctor --conf "$(node_conf "$n")" >/dev/null 2>&1 ||
      bad+=("$n")
    for pod in pod1 pod2; do
      [ -e "/run/netns/$P-$n-$pod" ] || { bad+=("$n/$pod (gone)"); continue; }
      ip netns exec "$P-$n" "$(node_vnet "$n")" doctor --conf "$(node_conf "$n")" \
        --pod "$P-$n-$pod" >/dev/null 2>&1 || bad+=("$n/$pod")
    done
  done
  local matrix
  if ! matrix=$(status --json 2>&1); then bad+=("connectivity matrix"); fi
  if [ ${#bad[@]} -eq 0 ]; then
    rm -f "$state/broken"
    echo "lab $P: healthy"
    return 0
  fi
  echo "lab $P: NOT healthy: ${bad[*]} (vnet doctor on the node tells what)"
  return 1
}
