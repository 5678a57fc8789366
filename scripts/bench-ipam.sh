#!/usr/bin/env bash
# IPAM-only ADD and DEL latency at several store sizes: vnet (as `host-local`, the IPAM
# plugin alone) beside the reference /usr/lib/cni/host-local, on the same pre-filled data.
#
#   scripts/bench-ipam.sh                       # sizes 10,1000,10000,60000; 30 calls each
#   scripts/bench-ipam.sh --sizes 10,60000      # just these sizes (scripts/bench.sh uses this)
#   scripts/bench-ipam.sh --iterations 50 --format tsv
#
# Options: --sizes LIST, --iterations N (ADD+DEL pairs per plugin and size), --bin PATH
# (vnet binary; default the build scripts/build.sh makes), --reference PATH (default
# /usr/lib/cni/host-local; installed with apt if missing and root; skipped otherwise),
# --dir DIR (where the throwaway store lives; default a temp dir under $TMPDIR or /tmp),
# --format table|tsv.
#
# Each call is one process, timed from the shell (bash $EPOCHREALTIME), so the figures
# include process start-up, as a runtime sees them. The store is pre-filled by writing
# reservation files directly (<id>\r\n<ifname>, as host-local does) in 10.200.0.0/16, with
# last_reserved_ip.0 pointing after them, then synced. vnet's first call after that is a
# foreign change to its index and rebuilds it: reported apart as "first". Before the
# reference runs, vnet's index file is removed, so the reference walks only reservations.
#
# TSV lines: op<TAB>plugin<TAB>reservations<TAB>median_ms<TAB>p95_ms<TAB>calls, where op is
# add, del or first (vnet's first call, an ADD that rebuilds the index; one sample).
# Everything made here is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes="10,1000,10000,60000"
iterations=30
bin=""
reference="/usr/lib/cni/host-local"
base="${TMPDIR:-/tmp}"
format="table"
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes="$2"; shift 2 ;;
    --iterations) iterations="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --reference) reference="$2"; shift 2 ;;
    --dir) base="$2"; shift 2 ;;
    --format) format="$2"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "bench-ipam: unknown option $1" >&2; exit 2 ;;
  esac
done

if [ -z "$bin" ]; then
  bin=$(scripts/build.sh)
fi
[ -x "$bin" ] || { echo "bench-ipam: no vnet binary at $bin" >&2; exit 2; }
if [ ! -x "$reference" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "bench-ipam: installing containernetworking-plugins for the reference host-local" >&2
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containernetworking-plugins >&2 || true
fi
[ -x "$reference" ] || { echo "bench-ipam: $reference missing: reference not measured" >&2; reference=""; }

work="$(mktemp -d "$base/vnet-bench-ipam.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$(readlink -f "$bin")" "$work/bin/host-local"
net="bench"
conf="{\"cniVersion\":\"1.0.0\",\"name\":\"$net\",\"type\":\"bridge\",\"ipam\":{\"type\":\"host-local\",\"subnet\":\"10.200.0.0/16\",\"dataDir\":\"$work/data\"}}"

# The i-th address handed out in 10.200.0.0/16 (from .0.2; .0.1 is the gateway).
addr() { local n=$(($1 + 2)); echo "10.200.$((n / 256)).$((n % 256))"; }

prefill() {
  local n="$1" dir="$work/data/$net" i
  rm -rf "$work/data"
  mkdir -p "$dir"
  for ((i = 0; i < n; i++)); do
    printf 'prefill-%d\r\neth0' "$i" >"$dir/$(addr "$i")"
  done
  printf '%s' "$(addr $((n - 1)))" >"$dir/last_reserved_ip.0"
  sync
}

# call PLUGIN COMMAND ID: one CNI call; prints its duration in ms.
call() {
  local start end
  start=$EPOCHREALTIME
  CNI_COMMAND="$2" CNI_CONTAINERID="$3" CNI_NETNS=/run/netns/bench CNI_IFNAME=eth0 \
    CNI_PATH=/usr/lib/cni "$1" <<<"$conf" >"$work/out" 2>&1 ||
    { echo "bench-ipam: $2 $3 failed: $(cat "$work/out")" >&2; exit 1; }
  end=$EPOCHREALTIME
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", (e - s) * 1000 }'
}

# stats FILE: median and p95 (nearest rank) of the numbers in FILE.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = int(NR * 0.95 + 0.999); if (p > NR) p = NR
    printf "%.2f %.2f\n", m, v[p] }'
}

results="$work/results"
: >"$results"
# series PLUGIN NAME SIZE: ITERATIONS pairs of ADD then DEL of a new container.
series() {
  local plugin="$1" name="$2" size="$3" i
  : >"$work/add"; : >"$work/del"
  for ((i = 0; i < iterations; i++)); do
    call "$plugin" ADD "bench-$name-$i" >>"$work/add"
    call "$plugin" DEL "bench-$name-$i" >>"$work/del"
  done
  read -r am ap < <(stats "$work/add")
  read -r dm dp < <(stats "$work/del")
  printf 'add\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$am" "$ap" "$iterations" >>"$results"
  printf 'del\t%s\t%s\t%s\t%s\t%s\n' "$name" "$size" "$dm" "$dp" "$iterations" >>"$results"
}

for size in ${sizes//,/ }; do
  echo "bench-ipam: $size reservations" >&2
  prefill "$size"
  first=$(call "$work/bin/host-local" ADD bench-first)
  call "$work/bin/host-local" DEL bench-first >/dev/null
  printf 'first\tvnet\t%s\t%s\t%s\t1\n' "$size" "$first" "$first" >>"$results"
  series "$work/bin/host-local" vnet "$size"
  if [ -n "$reference" ]; then
    rm -f "$work/data/$net/.vnet-index"
    sync
    series "$reference" host-local "$size"
  fi
done

if [ "$format" = tsv ]; then
  cat "$results"
  exit 0
fi
echo "IPAM-only latency in ms, median / p95 over $iterations calls (one process per call, cniVersion 1.0.0)"
awk -F'\t' '
  { key = $3 "\t" $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    val[key, $1] = sprintf("%s / %s", $4, $5) }
  END {
    printf "%-13s %-11s %-17s %-17s %s\n", "reservations", "plugin", "ADD", "DEL", "first ADD (index rebuild)"
    for (i = 1; i <= n; i++) {
      split(order[i], k, "\t")
      f = ((order[i], "first") in val) ? val[order[i], "first"] : ""
      sub(/ \/.*/, "", f)
      printf "%-13s %-11s %-17s %-17s %s\n", k[1], k[2], val[order[i], "add"], val[order[i], "del"], f
    }
  }' "$results"
