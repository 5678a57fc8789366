#!/usr/bin/env bash
# Installs vnet as a CNI plugin: the binary into <prefix>/opt/cni/bin, and
# conf/10-bridge.conf into <prefix>/etc/cni/net.d unless a config is already there.
#   scripts/install.sh [--prefix DIR] [--binary PATH] [--host-local]
# --host-local also links vnet as <bin>/host-local, so other plugins can use vnet's IPAM
# (it will replace a reference host-local found there only with --force).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
prefix=""
binary=""
host_local=0
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --host-local) host_local=1; shift ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  # The static build (scripts/build.sh, which finds a rustup cargo off sudo's PATH too);
  # cargo is a no-op when it is fresh. Without any cargo, what an earlier build left.
  if ! binary=$("$here/scripts/build.sh"); then
    for b in "$here"/target/*-musl/release/vnet "$here"/target/*/release/vnet "$here/target/release/vnet"; do
      [ -x "$b" ] && { binary=$b; break; }
    done
  fi
fi
[ -x "$binary" ] || { echo "install.sh: no vnet binary at $binary" >&2; exit 1; }

bindir="$prefix/opt/cni/bin"
confdir="$prefix/etc/cni/net.d"
install -d -m 0755 "$bindir" "$confdir"
# Copy then rename, so a runtime calling the plugin mid-install never sees half a file.
install -m 0755 "$binary" "$bindir/.vnet.new"
mv -f "$bindir/.vnet.new" "$bindir/vnet"
echo "installed $bindir/vnet"

if [ "$host_local" = 1 ]; then
  if [ -e "$bindir/host-local" ] && [ ! -L "$bindir/host-local" ] && [ "$force" != 1 ]; then
    echo "install.sh: $bindir/host-local exists and is not ours; keeping it (use --force)" >&2
  else
    ln -sfn vnet "$bindir/host-local"
    echo "linked $bindir/host-local -> vnet"
  fi
fi

existing=$(find "$confdir" -maxdepth 1 \( -name '*.conf' -o -name '*.conflist' -o -name '*.json' \) -print -quit 2>/dev/null)
if [ -n "$existing" ]; then
  echo "kept existing config $existing"
else
  install -m 0644 "$here/conf/10-bridge.conf" "$confdir/10-bridge.conf"
  echo "installed $confdir/10-bridge.conf"
fi
