# Sourced by the benchmarks that make network namespaces (bench.sh --scale,
# bench-runtimes.sh): record the machine's own network namespace (links, addresses,
# routes, rules, nft ruleset, iptables; scripts/bench_runtimes.py --snapshot) and, on
# exit, whatever happened, run the caller's cleanup, compare the namespace with the record
# (a difference fails the run) and remove the work directory.
#
#   rootns_guard WORK WHAT CLEANUP...   # WHAT names the script in the error message
#
# Uses $py when set (bench-runtimes.sh wants Debian's /usr/bin/python3), else python3.

rootns_guard() {
  _rootns_work=$1
  _rootns_what=$2
  shift 2
  _rootns_cleanup=("$@")
  "${py:-python3}" scripts/bench_runtimes.py --snapshot "$_rootns_work.rootns.json"
  trap _rootns_finish EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
}

_rootns_finish() {
  local rc=$?
  trap - EXIT INT TERM HUP
  "${_rootns_cleanup[@]}" || rc=1
  if ! "${py:-python3}" scripts/bench_runtimes.py --check "$_rootns_work.rootns.json"; then
    echo "ERROR: $_rootns_what changed the machine's own network namespace (see above)" >&2
    rc=1
  fi
  rm -rf --one-file-system "$_rootns_work" "$_rootns_work.rootns.json"
  exit "$rc"
}
