#!/usr/bin/env bash
# The three-node Vagrant lab, booted for real on this machine and checked:
#   sudo scripts/test-vagrant.sh
#
# 1. Installs what the host lacks (scripts/vagrant-deps.sh) and builds the static vnet
#    the VMs run (scripts/build.sh).
# 2. Builds the libvirt box from the Debian mirror (vagrant/build-box.sh), unless the one
#    cached in target/vagrant/ was built by the same build-box.sh (VNET_REBUILD_BOX=1
#    rebuilds it). The box file and its kernel are the only things kept between runs.
# 3. Starts its own virtlogd and libvirtd inside a network namespace of its own
#    (vnet-vg-PID) and a mount namespace of their own, where /etc/libvirt is a copy of
#    the machine's and /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt and
#    /run/libvirt are directories of this run: the libvirt networks' bridges, taps,
#    dnsmasq and firewall rules, the VMs, their disks and libvirt's definitions all live
#    and die there. A libvirtd the machine already runs is neither used nor disturbed.
#    vagrant runs in the same namespaces with its own VAGRANT_HOME and .vagrant
#    directory, so the user's boxes and the repository's vagrant/.vagrant are untouched.
# 4. `vagrant up` as a user would (vagrant-libvirt brings the three VMs up in parallel),
#    then checks: node3's provisioning printed a full matrix, `vagrant provision
#    --provision-with check` prints a full matrix on every node, node1's pod pings
#    node3's pod; node1 rebooted (`vagrant reload`) has no pods, reservations or vnet
#    routes left (all under /run), provisioned again gets its pods back on the same
#    addresses and every matrix is full again; the lab LAN is isolated (no forward), the
#    VMs run with the domain type vagrant/kvm-probe.sh chose; `vagrant destroy -f`
#    leaves no domain.
# 5. Whatever happens: destroys what is left, stops the daemons it started, kills what
#    still runs in its namespace, deletes the namespace, removes its work directory,
#    and fails if the machine's own network namespace (links, addresses, routes, rules,
#    nft ruleset, iptables) is not as it was (scripts/rootns-guard.sh).
# The last run's logs stay in target/vagrant/last-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t0=$SECONDS
say() { printf 'test-vagrant [%4ds]: %s\n' "$((SECONDS - t0))" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test-vagrant: run as root" >&2; exit 1; }

say "packages (scripts/vagrant-deps.sh)"
scripts/vagrant-deps.sh
say "vnet for the VMs (scripts/build.sh)"
bin=$(scripts/build.sh)
case "$bin" in
  "$repo"/target/*-linux-musl/release/vnet) ;;
  *) fail "scripts/build.sh gave $bin, not the static musl build the VMs run (rustup target add $(uname -m)-unknown-linux-musl)" ;;
esac

cache=$repo/target/vagrant
box=$cache/bookworm64-libvirt.box
stamp=$(sha256sum vagrant/build-box.sh | cut -d' ' -f1)
if [ "${VNET_REBUILD_BOX:-}" = 1 ] || [ ! -f "$box" ] || [ ! -f "${box%.box}.vmlinuz" ] ||
  [ "$(cat "$box.stamp" 2>/dev/null)" != "$stamp" ]; then
  say "building the box (vagrant/build-box.sh)"
  rm -f "$box.stamp"
  vagrant/build-box.sh --no-add --out "$box"
  echo "$stamp" >"$box.stamp"
else
  say "box: $box, cached (built by this build-box.sh)"
fi

ns=vnet-vg-$$
work=$(mktemp -d "$repo/target/vagrant-test.XXXXXX")
chmod 0755 "$work" # libvirt-qemu opens the disks below it
logs=$cache/last-run
made_run_libvirt=0
up_started=0
lvpid=
ok=0

# Run a command in the lab's network and mount namespaces.
inlab() { nsenter -t "$lvpid" -m -n -- "$@"; }
virsh_lab() { inlab virsh -q -c qemu:///system "$@"; }
# shellcheck disable=SC2016 # the single-quoted script is expanded by that bash
vagrant_lab() { # vagrant_lab SECONDS ARGS...
  local limit=$1
  shift
  inlab timeout "$limit" env VAGRANT_HOME="$work/vagrant-home" VAGRANT_DOTFILE_PATH="$work/dotvagrant" \
    TMPDIR="$work/tmp" VNET_BOX=vnet-test/bookworm64 \
    VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1 \
    bash -c 'cd "$0" && exec vagrant "$@"' "$repo/vagrant" "$@"
}

# check_all LOGNAME: the check provisioner on every node, each matrix 14 of 14.
check_all() {
  local log=$work/$1.log n line
  say "vagrant provision --provision-with check (the matrix from every node's pods)"
  if ! vagrant_lab 600 provision --provision-with check >"$log" 2>&1; then
    tail -40 "$log" >&2
    fail "the check provisioner failed (log: $logs/$1.log)"
  fi
  for n in node1 node2 node3; do
    line=$(grep -E "^ *$n: [0-9]+ checks" "$log" || true)
    say "  ${line#"${line%%[![:space:]]*}"}"
    [[ "$line" == *"$n: 14 checks, 14 as expected" ]] ||
      fail "$n's matrix is not 14 of 14 (log: $logs/$1.log)"
  done
}

stop_pid() { # stop_pid PID: TERM, up to 20 s, then KILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=0 pid
  if [ -n "$lvpid" ] && kill -0 "$lvpid" 2>/dev/null; then
    if [ "$up_started" = 1 ]; then
      say "cleanup: vagrant destroy -f"
      vagrant_lab 600 destroy -f >>"$work/destroy.log" 2>&1 || rc=1
    fi
    # Whatever vagrant left: all of it is this run's, in this run's libvirt.
    for d in $(virsh_lab list --all --name 2>/dev/null); do
      say "cleanup: domain $d left behind; removing it"
      virsh_lab destroy "$d" >/dev/null 2>&1 || true
      virsh_lab undefine "$d" --remove-all-storage >/dev/null 2>&1 || true
    done
    for n in $(virsh_lab net-list --all --name 2>/dev/null); do
      virsh_lab net-destroy "$n" >/dev/null 2>&1 || true
      virsh_lab net-undefine "$n" >/dev/null 2>&1 || true
    done
    for p in $(virsh_lab pool-list --all --name 2>/dev/null); do
      virsh_lab pool-destroy "$p" >/dev/null 2>&1 || true
      virsh_lab pool-undefine "$p" >/dev/null 2>&1 || true
    done
  fi
  for f in libvirtd virtlogd; do
    [ -f "$work/$f.pid" ] && stop_pid "$(cat "$work/$f.pid")"
  done
  # Anything still in the namespace is this run's (qemu, dnsmasq, ssh control masters).
  if [ -e "/run/netns/$ns" ]; then
    for pid in $(ip netns pids "$ns" 2>/dev/null); do stop_pid "$pid"; done
    ip netns del "$ns" || rc=1
  fi
  if [ "$made_run_libvirt" = 1 ]; then rmdir /run/libvirt 2>/dev/null || rc=1; fi
  rm -rf --one-file-system "$logs"
  mkdir -p "$logs"
  cp "$work"/*.log "$logs/" 2>/dev/null || true
  cp -r "$work/libvirt-log" "$logs/libvirt" 2>/dev/null || true
  if [ "$ok" != 1 ]; then
    say "logs of this run: $logs"
    rc=1
  fi
  return "$rc"
}

# shellcheck source=scripts/rootns-guard.sh
. scripts/rootns-guard.sh
rootns_guard "$work" test-vagrant.sh cleanup

say "libvirt in network namespace $ns and a mount namespace of its own"
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$work"/{libvirt-etc,libvirt-lib,libvirt-log,libvirt-cache,vagrant-home,dotvagrant,tmp}
cp -a /etc/libvirt/. "$work/libvirt-etc/"
cp -a /var/lib/libvirt/. "$work/libvirt-lib/"
rm -f "$work"/libvirt-etc/qemu/networks/autostart/*.xml # no default network
if [ ! -d /run/libvirt ]; then
  mkdir /run/libvirt
  made_run_libvirt=1
fi
# shellcheck disable=SC2016 # expanded by that bash
ip netns exec "$ns" bash -euc '
  w=$1
  mount --bind "$w/libvirt-etc" /etc/libvirt
  mount --bind "$w/libvirt-lib" /var/lib/libvirt
  mount --bind "$w/libvirt-log" /var/log/libvirt
  mount --bind "$w/libvirt-cache" /var/cache/libvirt
  mount -t tmpfs -o mode=0755 tmpfs /run/libvirt
  virtlogd -d -p "$w/virtlogd.pid"
  libvirtd -d -p "$w/libvirtd.pid"
' _ "$work"
for _ in $(seq 100); do [ -s "$work/libvirtd.pid" ] && break; sleep 0.1; done
lvpid=$(cat "$work/libvirtd.pid")
for _ in $(seq 100); do virsh_lab version >/dev/null 2>&1 && break; sleep 0.2; done
virsh_lab version >/dev/null || fail "libvirtd in $ns does not answer"

say "vagrant box add"
# Through a catalog, as build-box.sh adds it: a box with a version.
printf '{"name": "vnet-test/bookworm64", "versions": [{"version": "0", "providers": [{"name": "libvirt", "url": "file://%s"}]}]}\n' \
  "$box" >"$work/box.json"
vagrant_lab 300 box add "$work/box.json" >"$work/box-add.log" 2>&1 ||
  { cat "$work/box-add.log" >&2; fail "vagrant box add"; }

say "vagrant up (the three VMs in parallel, as vagrant-libvirt does)"
up_started=1
t_up=$SECONDS
if ! vagrant_lab 1800 up >"$work/up.log" 2>&1; then
  tail -40 "$work/up.log" >&2
  fail "vagrant up failed (log: $logs/up.log)"
fi
say "vagrant up: $((SECONDS - t_up)) s"
# The domain type the Vagrantfile chose (vagrant/kvm-probe.sh, kept in the .vagrant dir).
driver=$(cut -d' ' -f1 "$work/dotvagrant/vnet-libvirt-driver" 2>/dev/null || true)
[[ "$driver" == kvm || "$driver" == qemu ]] || fail "the Vagrantfile recorded no libvirt driver"
say "libvirt domain type chosen by the Vagrantfile: $driver"
for n in node1 node2 node3; do
  grep -q "$n: vnet from /vnet/target/$(uname -m)-unknown-linux-musl/release/vnet" "$work/up.log" ||
    fail "$n did not run the host's static build (log: $logs/up.log)"
done
grep -E '^ *node3: ' "$work/up.log" | grep -E 'checks|FAIL|WRONG' >&2 || true
grep -q 'node3: 14 checks, 14 as expected' "$work/up.log" ||
  fail "node3's provisioning did not print a full matrix (14 checks, 14 as expected)"

check_all check

say "cross-node ping: node1's pod1 to node3's pod1"
far=$(vagrant_lab 120 ssh node3 -c 'cat /run/vnet-lab/vm/pods/node3.pod1.json' 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["ip"])') ||
  fail "no address for node3's pod1"
[[ "$far" == 10.244.3.* ]] || fail "node3's pod1 has $far, not an address of 10.244.3.0/24"
vagrant_lab 120 ssh node1 -c "sudo ip netns exec node1-pod1 ping -c 3 -W 2 $far" >"$work/ping.log" 2>&1 ||
  { cat "$work/ping.log" >&2; fail "node1-pod1 cannot ping $far"; }
grep -E 'packets transmitted' "$work/ping.log" >&2
grep -q ' 0% packet loss' "$work/ping.log" || fail "packet loss from node1-pod1 to $far"

say "reboot node1 (vagrant reload): pods, reservations and routes go with /run"
# One line from a node: its pod namespaces, IPAM reservations, vnet's routes, its config.
read -r -d '' summary <<'EOF' || true
sudo sh -c 'echo netns $(ip netns list | wc -l) reservations $(ls /run/cni/networks/v-net 2>/dev/null | grep -c "^10\.") routes $(ip route show proto 118 | wc -l) conf $(ls /etc/cni/net.d/10-bridge.conf)'
EOF
node_summary() { # node_summary NODE
  local out
  out=$(vagrant_lab 120 ssh "$1" -c "$summary" 2>/dev/null) || fail "vagrant ssh $1"
  echo "${out//$'\r'/}"
}
before=$(node_summary node1)
say "  node1 before the reboot: $before"
[[ "$before" == "netns 2 reservations 2 routes 2 conf /etc/cni/net.d/10-bridge.conf"* ]] ||
  fail "node1 before the reboot: $before (expected 2 pods, 2 reservations, 2 vnet routes)"
vagrant_lab 900 reload node1 >"$work/reload.log" 2>&1 ||
  { tail -20 "$work/reload.log" >&2; fail "vagrant reload node1 failed"; }
after=$(node_summary node1)
say "  node1 after the reboot: $after"
[[ "$after" == "netns 0 reservations 0 routes 0 conf /etc/cni/net.d/10-bridge.conf"* ]] ||
  fail "node1 after the reboot: $after (expected no pods, reservations or vnet routes; the config kept)"
vagrant_lab 600 provision node1 --provision-with vnet >"$work/reprovision.log" 2>&1 ||
  { tail -20 "$work/reprovision.log" >&2; fail "provisioning node1 again failed"; }
for pod in "pod1 (node1-pod1) eth0 10.244.1.2" "pod2 (node1-pod2) eth0 10.244.1.3"; do
  grep -q "node1: $pod\$" "$work/reprovision.log" ||
    fail "node1's $pod is not back on its address after the reboot (log: $logs/reprovision.log)"
done
say "  node1's pods are back on 10.244.1.2 and .3"
check_all check-after-reboot

say "libvirt: the lab LAN is isolated, the domains are $driver"
lan=
for n in $(virsh_lab net-list --name); do
  xml=$(virsh_lab net-dumpxml "$n")
  if [[ "$xml" == *"192.168.1.1'"* ]]; then lan=$n; break; fi
done
[ -n "$lan" ] || fail "no libvirt network holds 192.168.1.1"
[[ "$xml" != *"<forward"* ]] || fail "libvirt network $lan forwards: $(grep '<forward' <<<"$xml")"
domains=$(virsh_lab list --name)
[ "$(wc -w <<<"$domains")" = 3 ] || fail "expected 3 running domains, found: $domains"
for d in $domains; do
  [[ "$(virsh_lab dumpxml "$d")" == *"<domain type='$driver'"* ]] ||
    fail "domain $d is not of type $driver"
done

say "vagrant destroy -f"
vagrant_lab 600 destroy -f >"$work/destroy.log" 2>&1 ||
  { tail -20 "$work/destroy.log" >&2; fail "vagrant destroy failed"; }
up_started=0
left=$(virsh_lab list --all --name)
[ -z "$left" ] || fail "domains left after vagrant destroy: $left"

ok=1
say "PASS: three VMs booted ($driver), matrix 14/14 on node1, node2 and node3, cross-node ping, node1 rebooted and back, destroyed"
