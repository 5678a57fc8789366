#!/usr/bin/env bash
# Provision one lab VM (run by vagrant as root inside the VM):
#   provision.sh up NODE node1=IP,node2=IP,... [check]
#   provision.sh check NODE node1=IP,...
# The node work is scripts/node-setup.sh, the same code the namespace lab runs.
set -euo pipefail
src=/vnet
cmd=$1
node=$2
nodes=$3
export VNET_SPLIT=/etc/vnet-lab/split VNET_STATE=/run/vnet-lab/vm VNET_ROOT="" NODE_NS=""
export VNET_LAN_HOST=${VNET_LAN_HOST:-}

packages() {
  local missing=()
  for p in iproute2 nftables python3; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# The host's release build when it runs here; otherwise build one in the VM (Debian's
# own rustc is too old for vnet, so rustup's toolchain is used).
vnet_binary() {
  local bin=$src/target/release/vnet
  if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
    echo "$bin"
    return
  fi
  echo "provision: no usable $bin from the host; building in the VM" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends curl ca-certificates build-essential >&2
  if [ ! -x /root/.cargo/bin/cargo ]; then
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
  fi
  rm -rf /root/vnet-src && cp -r "$src" /root/vnet-src
  (cd /root/vnet-src && /root/.cargo/bin/cargo build --release --quiet) >&2
  echo /root/vnet-src/target/release/vnet
}

check() {
  "$src/scripts/node-setup.sh" probe "$node" | python3 "$src/scripts/lab_echo.py" matrix
}

case "$cmd" in
  up)
    packages
    export VNET_BIN
    VNET_BIN=$(vnet_binary)
    "$VNET_BIN" cluster split --range 10.244.0.0/16 --per-node /24 --nodes "$nodes" \
      --out "$VNET_SPLIT"
    "$src/scripts/node-setup.sh" install "$node"
    "$src/scripts/node-setup.sh" pods "$node"
    if [ "${4:-}" = check ]; then check; fi
    ;;
  check) check ;;
  *) echo "provision.sh: unknown command $cmd" >&2; exit 2 ;;
esac
