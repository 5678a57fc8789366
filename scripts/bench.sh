#!/usr/bin/env bash
# vnet against the reference bridge + host-local (Debian containernetworking-plugins), on
# this machine, in alternation, inside throwaway network namespaces (never the root one).
#
#   sudo scripts/bench.sh                 # full run (about 5 minutes on 2 cores)
#   sudo scripts/bench.sh --quick         # fewer pods and rounds, for a smoke test
#   sudo scripts/bench.sh --write-doc     # also put the table into docs/performance.md
#
# Prints medians, p95 and the ratio vnet/reference. Figures come from scripts/bench.py
# (exec-included latency from the caller's side; see its header). The IPAM-only rows come
# from scripts/bench-ipam.sh when that script exists, else bench.py measures them itself.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
write_doc=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --write-doc) write_doc=1 ;;
    *) echo "usage: $0 [--quick] [--write-doc]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "bench.sh needs root (it creates network namespaces)" >&2
  exit 1
fi

need=()
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
command -v ip >/dev/null || need+=(iproute2)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The build scripts/install.sh ships (static, scripts/build.sh), and the plain dynamic
# `cargo build --release` for two RSS rows (see docs/performance.md).
vnet=$(scripts/build.sh)
dynamic=$(scripts/build.sh --dynamic)

args=(--vnet "$vnet" --vnet-dynamic "$dynamic")
if [ "$quick" = 1 ]; then
  args+=(--pods 30 --parallel 30 --rounds 1 --first 3 --ipam-trials 5 --ipam 10,2000)
fi
if [ -x scripts/bench-ipam.sh ]; then
  args+=(--ipam "")
fi

out="$(mktemp)"
trap 'rm -f "$out" "$out.ipam"' EXIT
python3 scripts/bench.py "${args[@]}" | tee "$out"

if [ -x scripts/bench-ipam.sh ]; then
  echo
  echo "IPAM-only rows (scripts/bench-ipam.sh):"
  scripts/bench-ipam.sh | tee "$out.ipam"
fi

if [ "$write_doc" = 1 ]; then
  python3 - "$out" docs/performance.md <<'EOF'
import sys, datetime, platform, os
out, doc = sys.argv[1], sys.argv[2]
body = open(out).read().rstrip()
ipam = out + ".ipam"
if os.path.exists(ipam):
    body += "\n\nIPAM-only rows (scripts/bench-ipam.sh):\n\n" + open(ipam).read().rstrip()
stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
block = (f"<!-- bench:begin -->\nRun {stamp} on {platform.node()} "
         f"({os.cpu_count()} CPUs, kernel {platform.release()}) by `scripts/bench.sh`:\n\n"
         f"{body}\n<!-- bench:end -->")
text = open(doc).read()
a, b = text.index("<!-- bench:begin -->"), text.index("<!-- bench:end -->") + len("<!-- bench:end -->")
open(doc, "w").write(text[:a] + block + text[b:])
print(f"updated {doc}")
EOF
fi
