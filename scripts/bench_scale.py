#!/usr/bin/env python3
"""Scale: 1,000 pods on one node, the driver behind `scripts/bench.sh --scale`.

Four configurations (vnet's shipped build and the reference `bridge` from /usr/lib/cni,
each with ipMasq off and on, the same config apart from `type`), each on a node network
namespace of its own with pod namespaces of its own, in the same run: N pods ADDed one
after another, then DELed in the same order (the first DEL finds the node full, the last
one almost empty). The configurations take turns call by call (call i of each, the first
to go rotating), so a busy moment of the machine, shared with other work, hits them
alike and the ratios between them stay fair; each node still holds only its own pods.

Calls are timed as in scripts/bench.py (whose helpers this imports): the driver's thread
enters the node namespace with setns (outside the timed part) and times posix_spawn ->
stdin -> stdout EOF -> wait4 of the plugin, with the CNI_* variables in its environment;
no `ip netns exec` or nsenter per call. Reported per configuration: medians of the first
and last `--edge` ADDs and DELs; the peak RSS of extra ADD + DEL pairs run under GNU time
(`/usr/bin/time -f %M`, whose own wait4 sees only the plugin and what it waits for) once
`--edge` pods are on the node and once all are; and, with all pods on the node, the
nftables ruleset's shape and how many rules a pod's new connection to an outside address
walks in the postrouting hook (counted by walking the ruleset that `nft -j list ruleset`
prints, see `rules_walked`).

Nothing is created in the machine's own namespace; every namespace is named
<prefix>-..., removed at the end, also on an exception or SIGTERM/SIGHUP/SIGINT.
scripts/bench.sh --scale checks the root namespace before and after and removes any
leftover of the prefix. Run as root.
"""

import argparse
import ipaddress
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import bench
from bench import ms, netns_add, netns_del, setns, spawn

CONFIGS = ("vnet-off", "ref-off", "vnet-on", "ref-on")
OUTSIDE = "198.51.100.7"  # a destination outside every pod network and exclusion
NODE_SELF = "192.0.2.1"  # a source that is no pod's (the node's own traffic)


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def no_ipv6(ns):
    """IPv6 off for the links made in `ns` from now on (an experiment: --no-ipv6)."""
    for key in ("all", "default"):
        bench.sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{key}.disable_ipv6=1")


class ScaleNode(bench.Node):
    """bench.Node with ipMasq set and a network of its own name and subnet."""

    def __init__(self, cfg, vnet_bin, data_dir, subnet, ipv6=True):
        impl, masq = cfg.split("-")
        super().__init__(impl, f"n{cfg}", vnet_bin, data_dir, subnet)
        if not ipv6:
            no_ipv6(self.name)
        conf = json.loads(self.conf)
        conf.update(name="scalenet", bridge="br-scale", ipMasq=masq == "on")
        self.conf = json.dumps(conf).encode()

    def out(self, *cmd):
        setns(self.fd)
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def ruleset(self):
        return json.loads(self.out("nft", "-j", "list", "ruleset"))["nftables"]

    def reserved(self):
        """The pod addresses the IPAM store holds, in address order."""
        d = os.path.join(self.data, "scalenet")
        if not os.path.isdir(d):
            return []
        return sorted((f for f in os.listdir(d) if f[0].isdigit()), key=ipaddress.ip_address)


def rotated(items, i):
    """items starting at position i % len: who goes first changes call by call."""
    k = i % len(items)
    return items[k:] + items[:k]


def timed(runs, command, lo, hi):
    """Calls lo..hi-1 of `command` on every configuration's node, alternating."""
    cfgs = list(runs)
    for i in range(lo, hi):
        for cfg in rotated(cfgs, i):
            r = runs[cfg]
            dt, code, out, _ = r["node"].call(command, f"c{i}", r["pods"][i])
            if code != 0:
                r["errors"].append(f"{command} c{i}: {out[:300]!r}")
            r[command].append(dt)


def peak_rss(node, extra, tag, workdir, errors):
    """Peak RSS (KiB) of an ADD and a DEL of each extra pod, under GNU time."""
    path = os.path.join(workdir, "rss")
    wrap = ["/usr/bin/time", "-f", "%M", "-o", path]
    rss = {"ADD": [], "DEL": []}
    for k, pod in enumerate(extra):
        for command in ("ADD", "DEL"):
            _, code, out, _ = node.call(command, f"x{tag}{k}", pod, wrap=wrap)
            if code != 0:
                errors.append(f"{command} under time x{tag}{k}: {out[:300]!r}")
            with open(path) as f:
                rss[command].append(int(f.read().split()[-1]))
    return rss


# ---------------------------------------------------------------------------------------
# Rules walked per new connection, from the ruleset's shape

def set_members(s):
    """A set's elements as ip_network objects (addresses, prefixes, ranges)."""
    nets = []
    for e in s.get("elem", []):
        v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
        if isinstance(v, dict) and "prefix" in v:
            nets.append(ipaddress.ip_network(f"{v['prefix']['addr']}/{v['prefix']['len']}"))
        elif isinstance(v, dict) and "range" in v:
            a, b = (ipaddress.ip_address(x) for x in v["range"])
            nets.extend(ipaddress.summarize_address_range(a, b))
        else:
            nets.append(ipaddress.ip_network(v))
    return nets


def matches(m, pkt, sets):
    """One `match` expression against pkt {"saddr", "daddr"}; None when it is not an
    IPv4 address match (the walk then treats it as matching)."""
    left = m["left"]
    if not (isinstance(left, dict) and "payload" in left
            and left["payload"].get("protocol") == "ip"
            and left["payload"].get("field") in ("saddr", "daddr")):
        return None
    addr = ipaddress.ip_address(pkt[left["payload"]["field"]])
    right = m["right"]
    if isinstance(right, str) and right.startswith("@"):
        hit = any(addr in n for n in sets.get(right[1:], []))
    elif isinstance(right, dict) and "prefix" in right:
        hit = addr in ipaddress.ip_network(f"{right['prefix']['addr']}/{right['prefix']['len']}")
    elif isinstance(right, dict) and "set" in right:
        hit = any(addr in ipaddress.ip_network(x if isinstance(x, str) else
                  f"{x['prefix']['addr']}/{x['prefix']['len']}") for x in right["set"])
    else:
        hit = addr == ipaddress.ip_address(right)
    return hit if m["op"] in ("==", "in") else not hit


TERMINAL = ("accept", "drop", "reject", "masquerade", "snat", "dnat", "redirect")


def walk(chain, pkt, rules, sets, count):
    """Rules of `chain` a packet is evaluated against; returns (count, verdict) where the
    verdict is None (fell through), "return" or a terminal one."""
    for expr in rules.get(chain, []):
        count += 1
        ok = True
        for e in expr:
            if "match" in e and matches(e["match"], pkt, sets) is False:
                ok = False
                break
        if not ok:
            continue
        for e in expr:
            (key, val), = e.items()
            if key in TERMINAL or (key == "xt" and val.get("type") == "target"):
                return count, "terminal"
            if key == "return":
                return count, "return"
            if key in ("jump", "goto"):
                count, verdict = walk(val["target"], pkt, rules, sets, count)
                if verdict == "terminal" or key == "goto":
                    return count, verdict
    return count, None


def rules_walked(ruleset, saddrs):
    """Rules evaluated in the IPv4 postrouting hook by a new connection from each of
    `saddrs` to OUTSIDE: every base chain of that hook, jumps followed, stopping at the
    first terminal verdict (NAT chains see only a connection's first packet)."""
    rules, sets, base = {}, {}, []
    for obj in ruleset:
        if "set" in obj:
            s = obj["set"]
            sets[s["name"]] = set_members(s)
        elif "chain" in obj:
            c = obj["chain"]
            key = (c["family"], c["table"], c["name"])
            rules.setdefault(key, [])
            if c.get("hook") == "postrouting" and c["family"] in ("ip", "inet"):
                base.append((c.get("prio", 0), key))
        elif "rule" in obj:
            r = obj["rule"]
            rules.setdefault((r["family"], r["table"], r["chain"]), []).append(r["expr"])
    counts = []
    for saddr in saddrs:
        pkt = {"saddr": saddr, "daddr": OUTSIDE}
        total = 0
        for _, (fam, table, name) in sorted(base):
            local = {n: x for (f, t, n), x in rules.items() if (f, t) == (fam, table)}
            n, _ = walk(name, pkt, local, sets, 0)
            total += n
        counts.append(total)
    shape = {
        "rules": sum(1 for o in ruleset if "rule" in o),
        "chains": sum(1 for o in ruleset if "chain" in o),
        "set elements": sum(len(s) for s in sets.values()),
    }
    return counts, shape


# ---------------------------------------------------------------------------------------

def inspect(r):
    """The node with all pods on it: what it holds, the ruleset's shape, rules walked."""
    node = r["node"]
    addrs = node.reserved()
    r["on_node"] = {"reserved": len(addrs), "veths": len(node.veths())}
    ruleset = node.ruleset()
    walked, r["shape"] = rules_walked(ruleset, addrs)
    node_walk, _ = rules_walked(ruleset, [NODE_SELF])
    r["walked"] = {"first pod": walked[0] if walked else 0,
                   "last pod": walked[-1] if walked else 0,
                   "mean": statistics.mean(walked) if walked else 0,
                   "node's own": node_walk[0]}


def run(configs, a, workdir):
    """Every configuration on a node of its own, in the same run: call i of each in turn
    (the first to go rotates), so a busy moment of the machine hits all of them alike."""
    n, k = a.pods, a.edge
    runs = {}
    t0 = time.monotonic()
    for cfg in configs:
        pods = [netns_add(f"p{cfg}{i}") for i in range(n)]
        extra = [netns_add(f"x{cfg}{i}") for i in range(a.rss_pods)]
        if a.no_ipv6:
            for ns in pods + extra:
                no_ipv6(ns)
        runs[cfg] = {"node": ScaleNode(cfg, a.vnet, workdir, a.subnet, ipv6=not a.no_ipv6),
                     "pods": pods, "extra": extra, "errors": [], "ADD": [], "DEL": []}
    print(f"bench_scale: {len(configs)} nodes and {len(configs) * n} pod namespaces made in "
          f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    meta = {"spawn_true_ms": [ms([spawn("/bin/true", {}, b"")[0] for _ in range(30)], 50)],
            "load": [os.getloadavg()[0]]}
    t0 = time.monotonic()
    timed(runs, "ADD", 0, k)
    for cfg, r in runs.items():
        r["rss_edge"] = peak_rss(r["node"], r["extra"], "e", workdir, r["errors"])
    timed(runs, "ADD", k, n)
    for cfg, r in runs.items():
        r["rss_full"] = peak_rss(r["node"], r["extra"], "f", workdir, r["errors"])
        inspect(r)
    meta["load"].append(os.getloadavg()[0])
    timed(runs, "DEL", 0, n)
    meta["seconds"] = time.monotonic() - t0
    meta["load"].append(os.getloadavg()[0])
    meta["spawn_true_ms"].append(ms([spawn("/bin/true", {}, b"")[0] for _ in range(30)], 50))
    for cfg, r in runs.items():
        node = r.pop("node")
        r["left"] = {"reserved": len(node.reserved()), "veths": len(node.veths()),
                     "rules": sum(1 for o in node.ruleset() if "rule" in o)}
        node.close()
        r["add"], r["del"] = r.pop("ADD"), r.pop("DEL")
        del r["pods"], r["extra"]
    return runs, meta


def med(xs):
    return ms(xs, 50)


def f2(x):
    return f"{x:.2f}"


def report(results, meta, a, n):
    k = a.edge
    rows = {}
    for cfg, r in results.items():
        rows[cfg] = {
            "add1": med(r["add"][:k]), "addN": med(r["add"][-k:]),
            # DELs run in ADD order: the first ones find the node full
            "delN": med(r["del"][:k]), "del1": med(r["del"][-k:]),
            "add": med(r["add"]), "del": med(r["del"]),
        }
    load = " → ".join(f"{x:.2f}" for x in meta["load"])
    floor = " → ".join(f"{x:.2f}" for x in meta["spawn_true_ms"])
    lines = [f"Per call in ms (median of {k}); pods ADDed one after another, then DELed "
             f"in the same order, the configurations' calls in turn. Calls took "
             f"{meta['seconds']:.0f} s; load average at start → after the ADDs → end: {load}; "
             f"the driver's spawn of /bin/true, start → end: {floor} ms.", ""]
    cfgs = [c for c in CONFIGS if c in results]
    head = {"vnet-off": "vnet, ipMasq off", "vnet-on": "vnet, ipMasq on",
            "ref-off": "reference, ipMasq off", "ref-on": "reference, ipMasq on"}
    lines.append("| | " + " | ".join(head[c] for c in cfgs) + " |")
    lines.append("|---|" + "---:|" * len(cfgs))
    labels = [
        ("add1", f"ADD, pods 1–{k}"),
        ("addN", f"ADD, pods {n - k + 1}–{n}"),
        ("delN", f"DEL, pods {n}–{n - k + 1} (first {k} DELs)"),
        ("del1", f"DEL, pods {k}–1 (last {k} DELs)"),
        ("add", f"ADD, all {n}"),
        ("del", f"DEL, all {n}"),
    ]
    for key, label in labels:
        lines.append(f"| {label} | " + " | ".join(f2(rows[c][key]) for c in cfgs) + " |")

    def rss(c, when, command):
        xs = results[c][when][command]
        return f"{statistics.median(xs):.0f} / {max(xs)}"

    for when, label in (("rss_edge", f"{k}"), ("rss_full", f"{n}")):
        for command in ("ADD", "DEL"):
            cells = " | ".join(rss(c, when, command) for c in cfgs)
            lines.append(f"| peak RSS of {command} at {label} pods, KiB (median / max of "
                         f"{a.rss_pods}) | {cells} |")
    for key, label in (("first pod", "first pod's"), ("last pod", "last pod's"),
                       ("mean", "mean over the pods'"), ("node's own", "the node's own")):
        lines.append(f"| rules walked by {label} new connection to outside, {n} pods | "
                     + " | ".join(f"{results[c]['walked'][key]:.0f}" for c in cfgs) + " |")
    lines.append(f"| ruleset at {n} pods: rules / chains / set elements | " + " | ".join(
        "{rules} / {chains} / {set elements}".format(**results[c]["shape"]) for c in cfgs) + " |")
    lines.append("| errors | " + " | ".join(str(len(results[c]["errors"])) for c in cfgs) + " |")
    lines += ["", "Targets (issue 14) and the same ratios for the reference:", "",
              "| target | vnet | met? | reference |", "|---|---:|---|---:|"]

    def ratio(impl, x, y):
        if f"{impl}-{x[0]}" not in rows or f"{impl}-{y[0]}" not in rows:
            return None
        return rows[f"{impl}-{x[0]}"][x[1]] / rows[f"{impl}-{y[0]}"][y[1]]

    targets = [
        (f"ADD on/off ≤ 1.2 at pod 1 (first {k})", ("on", "add1"), ("off", "add1"), 1.2),
        (f"ADD on/off ≤ 1.2 at pod {n} (last {k})", ("on", "addN"), ("off", "addN"), 1.2),
        (f"DEL on/off ≤ 1.1 at pod 1 (last {k} DELs)", ("on", "del1"), ("off", "del1"), 1.1),
        (f"DEL on/off ≤ 1.1 at pod {n} (first {k} DELs)", ("on", "delN"), ("off", "delN"), 1.1),
        (f"ADD pod {n}/pod 1 ≤ 1.1, ipMasq off", ("off", "addN"), ("off", "add1"), 1.1),
        (f"ADD pod {n}/pod 1 ≤ 1.1, ipMasq on", ("on", "addN"), ("on", "add1"), 1.1),
    ]
    for label, x, y, bound in targets:
        v, rf = ratio("vnet", x, y), ratio("ref", x, y)
        if v is None:
            continue
        met = "met" if v <= bound else "**missed**"
        lines.append(f"| {label} | {v:.3f} | {met} | {'–' if rf is None else f'{rf:.3f}'} |")

    pairs = [(c, c.replace("vnet", "ref")) for c in cfgs if c.startswith("vnet")
             and c.replace("vnet", "ref") in results]
    if pairs:
        lines += ["", "vnet/reference, same ipMasq:", "",
                  "| | " + " | ".join(f"ipMasq {v.split('-')[1]}" for v, _ in pairs) + " |",
                  "|---|" + "---:|" * len(pairs)]
        for key, label in labels:
            lines.append(f"| {label} | " + " | ".join(
                f"{rows[v][key] / rows[r][key]:.3f}" for v, r in pairs) + " |")
    lines.append("")
    for cfg in cfgs:
        r = results[cfg]
        lines.append(f"{cfg}: on the node at {n} pods {r['on_node']}, left after the DELs "
                     f"{r['left']}")
        for e in r["errors"][:5]:
            lines.append(f"  error: {e}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vnet", required=True, help="the vnet build scripts/install.sh ships")
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--edge", type=int, default=20, help="calls in each first/last median")
    ap.add_argument("--rss-pods", type=int, default=5, help="extra ADD+DEL pairs under time")
    ap.add_argument("--subnet", default="10.246.0.0/22")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--prefix", default=f"vsc{os.getpid()}", help="namespace name prefix")
    ap.add_argument("--workdir", help="IPAM stores and scratch (default: a new temp dir)")
    ap.add_argument("--json", help="also write every call's time here")
    ap.add_argument("--no-ipv6", action="store_true",
                    help="experiment: IPv6 disabled in the node and pod namespaces (no "
                         "link-local addresses, DAD or MLD on the veths)")
    a = ap.parse_args()
    a.vnet = os.path.abspath(a.vnet)
    configs = [c for c in a.configs.split(",") if c]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown configuration {c}; known: {','.join(CONFIGS)}")
    hosts = ipaddress.ip_network(a.subnet).num_addresses - 3  # network, gateway, broadcast
    if a.pods + a.rss_pods > hosts or a.edge > a.pods or a.edge < 1:
        ap.error(f"{a.pods} pods + {a.rss_pods} extra do not fit {a.subnet}, or bad --edge")
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, on_signal)
    bench.PREFIX = a.prefix
    own_workdir = a.workdir is None
    workdir = a.workdir or tempfile.mkdtemp(prefix="vnet-scale-")
    try:
        results, meta = run(configs, a, workdir)
    finally:
        for name in list(bench.CREATED):
            netns_del(name)
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"Run {stamp} on {platform.node()} ({os.cpu_count()} CPUs, kernel "
          f"{platform.release()}): {a.pods} pods, subnet {a.subnet}, vnet {a.vnet}, "
          f"reference {os.path.join(bench.REF_DIR, 'bridge')}"
          + (", IPv6 disabled in every namespace (--no-ipv6)" if a.no_ipv6 else ""))
    print()
    print(report(results, meta, a, a.pods))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "results": results}, f)
    bad = sum(len(r["errors"]) for r in results.values())
    left = [c for c, r in results.items()
            if r["left"]["reserved"] or r["left"]["veths"]
            or (r["left"]["rules"] > (1 if c == "vnet-on" else 0))]
    if bad or left:
        print(f"bench_scale: {bad} failed calls; leftovers after DEL in {left}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
