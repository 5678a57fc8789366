#!/usr/bin/env bash
# Provision one lab VM (run by vagrant as root inside the VM):
#   provision.sh up NODE node1=IP,node2=IP,... [check]
#   provision.sh check NODE node1=IP,...
# The node work is scripts/node-setup.sh, the same code the namespace lab runs.
# `up ... check` (the last node) waits until every other node's pods answer before it
# prints the matrix: vagrant-libvirt brings the VMs up in parallel.
set -euo pipefail
src=/vnet
cmd=$1
node=$2
nodes=$3
export VNET_SPLIT=/etc/vnet-lab/split VNET_STATE=/run/vnet-lab/vm VNET_ROOT="" NODE_NS=""
export VNET_LAN_HOST=${VNET_LAN_HOST:-}
wait_s=${VNET_WAIT:-}
wait_s=${wait_s:-600}

packages() {
  local missing=()
  for p in iproute2 nftables python3; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# The vnet the host built: the shipped static build (scripts/build.sh) runs on any Linux
# of the same architecture; a dynamic target/release/vnet only where its glibc is at
# least the host's. With neither, build one in the VM, but only where that can work:
# Debian's own rustc is too old for vnet, so it takes rustup, which takes the internet.
vnet_binary() {
  local bin
  for bin in "$src/target/$(uname -m)-unknown-linux-musl/release/vnet" "$src/target/release/vnet"; do
    if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
      echo "$bin"
      return
    fi
    [ -e "$bin" ] && echo "provision: $bin does not run here; skipping it" >&2
  done
  if [ -x /root/.cargo/bin/cargo ] || timeout 10 bash -c 'exec 3<>/dev/tcp/sh.rustup.rs/443' 2>/dev/null; then
    echo "provision: no vnet from the host; building one in the VM" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends curl ca-certificates build-essential >&2
    if [ ! -x /root/.cargo/bin/cargo ]; then
      curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    fi
    rm -rf /root/vnet-src && cp -r "$src" /root/vnet-src
    (cd /root/vnet-src && /root/.cargo/bin/cargo build --release --quiet) >&2
    echo /root/vnet-src/target/release/vnet
    return
  fi
  cat >&2 <<EOF
provision: no vnet binary for this VM, and no way to build one here (no Rust toolchain
and no internet). On the host, in the repository, run
    scripts/build.sh
(it prints target/$(uname -m)-unknown-linux-musl/release/vnet), then
    vagrant rsync && vagrant provision
EOF
  return 1
}

check() {
  "$src/scripts/node-setup.sh" probe "$node" | python3 "$src/scripts/lab_echo.py" matrix
}

# Wait until the other nodes' pods answer from this node's first pod.
wait_for_nodes() {
  echo "$node: waiting up to ${wait_s}s for every node's pods to answer"
  ip netns exec "$node-pod1" python3 "$src/scripts/lab_echo.py" wait --state "$VNET_STATE" \
    --split "$VNET_SPLIT" --node "$node" --pod pod1 --timeout "$wait_s"
}

case "$cmd" in
  up)
    packages
    export VNET_BIN
    VNET_BIN=$(vnet_binary)
    echo "$node: vnet from $VNET_BIN"
    # dataDir under /run: a reboot takes the reservations with the pod namespaces (both
    # in /run), so re-provisioning after one hands out the same addresses again.
    "$VNET_BIN" cluster split --range 10.244.0.0/16 --per-node /24 --nodes "$nodes" \
      --out "$VNET_SPLIT" --data-dir /run/cni/networks
    "$src/scripts/node-setup.sh" install "$node"
    "$src/scripts/node-setup.sh" pods "$node"
    if [ "${4:-}" = check ]; then
      wait_for_nodes
      check
    fi
    ;;
  check) check ;;
  *) echo "provision.sh: unknown command $cmd" >&2; exit 2 ;;
esac
