#!/usr/bin/env python3
"""vnet against the reference bridge + host-local: the driver behind scripts/bench.sh.

Every figure is taken from the caller's side with the exec included: the driver enters
the node's network namespace itself (setns on its own thread, outside the timed part),
then times posix_spawn -> stdin -> stdout EOF -> wait4 of the plugin binary. wait4's
rusage gives the peak RSS of the call (the largest of the plugin and the children it
waited for, so bridge or host-local for the reference, whichever is bigger).

Nothing is created in the root namespace: nodes and pods are namespaces named
vb<pid>-..., removed at the end, also on failure. IPAM stores live under a temporary
directory. Run as root; see scripts/bench.sh.
"""

import argparse
import concurrent.futures as cf
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CLONE_NEWNET = 0x40000000
REF_DIR = "/usr/lib/cni"
LIBC = ctypes.CDLL(None, use_errno=True)
PREFIX = f"vb{os.getpid()}"
CREATED = []  # namespaces to remove at the end


def setns(fd):
    """Move the calling thread (only) into the network namespace behind fd."""
    if LIBC.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def netns_add(tag):
    name = f"{PREFIX}-{tag}"
    sh("ip", "netns", "add", name)
    CREATED.append(name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    return name


def netns_del(name):
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    if name in CREATED:
        CREATED.remove(name)


class Node:
    """A node namespace, the plugin to run there and its config."""

    def __init__(self, impl, tag, vnet_bin, data_dir, subnet):
        self.impl = impl
        self.name = netns_add(tag)
        self.fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        self.data = os.path.join(data_dir, tag)
        ptype = "vnet" if impl.startswith("vnet") else "bridge"
        self.bin = vnet_bin if impl.startswith("vnet") else os.path.join(REF_DIR, "bridge")
        conf = {
            "cniVersion": "1.0.0",
            "name": "benchnet",
            "type": ptype,
            "bridge": "br-bench",
            "isGateway": True,
            "isDefaultGateway": True,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": self.data},
        }
        self.conf = json.dumps(conf).encode()

    def close(self):
        os.close(self.fd)
        netns_del(self.name)

    def call(self, command, cid, pod, wrap=None):
        env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": f"/run/netns/{pod}",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": REF_DIR,
        }
        setns(self.fd)
        if wrap:
            return spawn(wrap[0], env, self.conf, argv=[*wrap, self.bin])
        return spawn(self.bin, env, self.conf)

    def reserved(self):
        d = os.path.join(self.data, "benchnet")
        if not os.path.isdir(d):
            return []
        return [f for f in os.listdir(d) if f[0].isdigit()]

    def veths(self):
        out = subprocess.run(
            ["ip", "-n", self.name, "-o", "link", "show"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines() if "veth" in ln]


def spawn(path, env, stdin, argv0=None, argv=None):
    """Run one plugin call; returns (seconds, exit code, stdout bytes, maxrss KiB)."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    actions = [
        (os.POSIX_SPAWN_DUP2, r_in, 0),
        (os.POSIX_SPAWN_DUP2, w_out, 1),
        (os.POSIX_SPAWN_CLOSE, r_in),
        (os.POSIX_SPAWN_CLOSE, w_in),
        (os.POSIX_SPAWN_CLOSE, r_out),
        (os.POSIX_SPAWN_CLOSE, w_out),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(path, argv or [argv0 or path], env, file_actions=actions)
    os.close(r_in)
    os.close(w_out)
    try:
        os.write(w_in, stdin)
    except BrokenPipeError:
        pass  # the program did not read its stdin
    os.close(w_in)
    chunks = []
    while True:
        b = os.read(r_out, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r_out)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter()
    return t1 - t0, os.waitstatus_to_exitcode(status), b"".join(chunks), ru.ru_maxrss


def address(out):
    try:
        return json.loads(out)["ips"][0]["address"]
    except (ValueError, KeyError, IndexError):
        return None


def ms(xs, q):
    xs = sorted(xs)
    if q == 50:
        return statistics.median(xs) * 1000
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] * 1000


class Result:
    def __init__(self):
        self.rows = []  # (label, vnet, ref, unit, note)
        self.raw = {}

    def add(self, label, v, r, unit, note=""):
        self.rows.append((label, v, r, unit, note))

    def table(self):
        lines = [
            "| measurement | vnet | reference | vnet/ref |",
            "|---|---:|---:|---:|",
        ]
        for label, v, r, unit, note in self.rows:
            ratio = f"{v / r:.3f}" if r else "–"
            text = f"| {label} | {fmt(v)} {unit} | {fmt(r)} {unit} | {ratio} |"
            if note:
                text = text[:-1] + f" {note} |"
            lines.append(text)
        return "\n".join(lines)


def fmt(x):
    if x is None:
        return "–"
    if isinstance(x, int) or x >= 100:
        return f"{x:.0f}"
    return f"{x:.2f}"


def sequential(res, nodes, n):
    """n ADDs then n DELs per implementation, one call of each in turn."""
    pods = {impl: [netns_add(f"s{impl}{i}") for i in range(n)] for impl in ("vnet", "ref")}
    lat = {"vnet": {"ADD": [], "DEL": []}, "ref": {"ADD": [], "DEL": []}}
    errors = {"vnet": 0, "ref": 0}
    for command in ("ADD", "DEL"):
        for i in range(n):
            order = ("vnet", "ref") if i % 2 == 0 else ("ref", "vnet")
            for impl in order:
                dt, code, out, _ = nodes[impl].call(command, f"c{i}", pods[impl][i])
                if code != 0:
                    errors[impl] += 1
                    print(f"{impl} {command} c{i} failed: {out[:300]!r}", file=sys.stderr)
                lat[impl][command].append(dt)
    k = max(1, n // 10)
    for command in ("ADD", "DEL"):
        v, r = lat["vnet"][command], lat["ref"][command]
        res.add(f"sequential {command}, {n} pods: median", ms(v, 50), ms(r, 50), "ms")
        res.add(f"sequential {command}, {n} pods: p95", ms(v, 95), ms(r, 95), "ms")
        # The store grows during the ADDs and shrinks during the DELs: both plugins read
        # every reservation file on each call, so the ends show what that costs.
        first, last = (v[:k], r[:k]), (v[-k:], r[-k:])
        res.add(f"  {command} median, first {k} calls", ms(first[0], 50), ms(first[1], 50), "ms")
        res.add(f"  {command} median, last {k} calls", ms(last[0], 50), ms(last[1], 50), "ms")
    res.raw["sequential_errors"] = errors
    for p in pods["vnet"] + pods["ref"]:
        netns_del(p)
    return errors


def parallel(res, nodes, n, conc, rounds):
    pods = {impl: [netns_add(f"p{impl}{i}") for i in range(n)] for impl in ("vnet", "ref")}
    wall = {(impl, c): [] for impl in ("vnet", "ref") for c in ("ADD", "DEL")}
    errs = {impl: 0 for impl in ("vnet", "ref")}
    uniq = {impl: [] for impl in ("vnet", "ref")}
    for rnd in range(rounds):
        order = ("vnet", "ref") if rnd % 2 == 0 else ("ref", "vnet")
        for impl in order:
            node = nodes[impl]
            for command in ("ADD", "DEL"):
                def one(i):
                    return node.call(command, f"k{conc}r{rnd}i{i}", pods[impl][i])

                t0 = time.perf_counter()
                with cf.ThreadPoolExecutor(conc) as ex:
                    outs = list(ex.map(one, range(n)))
                wall[(impl, command)].append(time.perf_counter() - t0)
                bad = [o for o in outs if o[1] != 0]
                errs[impl] += len(bad)
                for o in bad[:3]:
                    print(f"{impl} parallel {command} failed: {o[2][:300]!r}", file=sys.stderr)
                if command == "ADD":
                    addrs = {address(o[2]) for o in outs if o[1] == 0}
                    uniq[impl].append(len(addrs))
    for command in ("ADD", "DEL"):
        v = statistics.median(wall[("vnet", command)]) * 1000
        r = statistics.median(wall[("ref", command)]) * 1000
        res.add(f"{n} parallel {command}s at concurrency {conc}: wall", v, r, "ms")
    res.add(
        f"  errors / unique addresses (min over {rounds} rounds), concurrency {conc}",
        None,
        None,
        "",
        f"vnet {errs['vnet']} / {min(uniq['vnet'])}, ref {errs['ref']} / {min(uniq['ref'])}",
    )
    for p in pods["vnet"] + pods["ref"]:
        netns_del(p)
    return errs


def peak_rss(res, vnet_bin, data_dir, n, dynamic_bin=None):
    """Peak RSS of one ADD and one DEL from GNU time's wait4 (it forks from a process of
    about 2 MiB, unlike this driver, whose own RSS would be charged to a posix_spawn'd
    child by the kernel's exec-time high-water mark)."""
    out = os.path.join(data_dir, "rss")
    wrap = ["/usr/bin/time", "-f", "%M", "-o", out]
    impls = ("vnet", "ref", "vnet-dynamic") if dynamic_bin else ("vnet", "ref")
    bins = {"vnet": vnet_bin, "ref": vnet_bin, "vnet-dynamic": dynamic_bin}
    rss = {(impl, c): [] for impl in impls for c in ("ADD", "DEL")}
    nodes = {impl: Node(impl, f"rss-{impl}", bins[impl], data_dir, "10.252.0.0/16") for impl in impls}
    pods = {impl: [netns_add(f"r{impl}{i}") for i in range(n)] for impl in impls}
    for command in ("ADD", "DEL"):
        for i in range(n):
            for impl in impls if i % 2 == 0 else tuple(reversed(impls)):
                _, code, text, _ = nodes[impl].call(command, f"m{i}", pods[impl][i], wrap=wrap)
                if code != 0:
                    print(f"{impl} {command} under time failed: {text[:300]!r}", file=sys.stderr)
                with open(out) as f:
                    rss[(impl, command)].append(int(f.read().split()[-1]))
    for command in ("ADD", "DEL"):
        res.add(f"peak RSS of one {command} (median of {n})",
                statistics.median(rss[("vnet", command)]), statistics.median(rss[("ref", command)]), "KiB")
    if dynamic_bin:
        for command in ("ADD", "DEL"):
            res.add(f"peak RSS of one {command}, vnet linked dynamically (median of {n})",
                    statistics.median(rss[("vnet-dynamic", command)]),
                    statistics.median(rss[("ref", command)]), "KiB")
    floor = spawn("/usr/bin/time", {}, b"", argv=[*wrap, "/bin/true"])
    del floor
    with open(out) as f:
        res.raw["rss_floor_true_kib"] = int(f.read().split()[-1])
    for node in nodes.values():
        node.close()
    for impl in impls:
        for p in pods[impl]:
            netns_del(p)


def first_add(res, vnet_bin, data_dir, trials):
    """ADD into a node that has no bridge yet (creates it)."""
    lat = {"vnet": [], "ref": []}
    for t in range(trials):
        order = ("vnet", "ref") if t % 2 == 0 else ("ref", "vnet")
        for impl in order:
            node = Node(impl, f"f{impl}{t}", vnet_bin, data_dir, "10.251.0.0/16")
            pod = netns_add(f"fp{impl}{t}")
            dt, code, out, _ = node.call("ADD", "first", pod)
            if code != 0:
                print(f"{impl} first ADD failed: {out[:300]!r}", file=sys.stderr)
            lat[impl].append(dt)
            node.close()
            netns_del(pod)
    res.add(f"first ADD on a node (bridge created), {trials} nodes: median",
            ms(lat["vnet"], 50), ms(lat["ref"], 50), "ms")


def del_own_share(res, vnet_bin, data_dir, n):
    """DEL of pods whose interface is already gone: everything DEL does except the
    kernel's veth deletion, i.e. the plugin's own share of a DEL."""
    lat = {"vnet": [], "ref": []}
    nodes = {impl: Node(impl, f"dels-{impl}", vnet_bin, data_dir, "10.249.0.0/16") for impl in lat}
    pods = {impl: [netns_add(f"d{impl}{i}") for i in range(n)] for impl in lat}
    ip = shutil.which("ip")
    for i in range(n):
        for impl in ("vnet", "ref") if i % 2 == 0 else ("ref", "vnet"):
            _, code, out, _ = nodes[impl].call("ADD", f"d{i}", pods[impl][i])
            if code != 0:
                print(f"{impl} ADD d{i} failed: {out[:300]!r}", file=sys.stderr)
            spawn_ip(ip, ["-n", pods[impl][i], "link", "del", "eth0"])
            dt, code, out, _ = nodes[impl].call("DEL", f"d{i}", pods[impl][i])
            if code != 0:
                print(f"{impl} DEL d{i} failed: {out[:300]!r}", file=sys.stderr)
            lat[impl].append(dt)
    res.add(f"DEL with the interface already gone (plugin's own share), {n} pods: median",
            ms(lat["vnet"], 50), ms(lat["ref"], 50), "ms")
    for impl in lat:
        nodes[impl].close()
        for p in pods[impl]:
            netns_del(p)


def spawn_floor(res, trials):
    """What the driver itself costs: spawn + wait of /bin/true."""
    xs = [spawn("/bin/true", {}, b"")[0] for _ in range(trials)]
    res.raw["spawn_true_ms"] = ms(xs, 50)


def veth_del_floor(res, trials):
    """The kernel's share of DEL: `ip link del` of a veth pair in a namespace, timed the
    same way (exec included), beside `ip link show lo` (the same exec, no deletion)."""
    node = netns_add("floor")
    pod = netns_add("floorpod")
    dels, shows = [], []
    ip = shutil.which("ip")
    for i in range(trials):
        sh("ip", "-n", node, "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", pod)
        dels.append(spawn_ip(ip, ["-n", pod, "link", "del", "eth0"]))
        shows.append(spawn_ip(ip, ["-n", pod, "link", "show", "lo"]))
    netns_del(pod)
    netns_del(node)
    res.raw["ip_link_del_ms"] = ms(dels, 50)
    res.raw["ip_link_show_ms"] = ms(shows, 50)


def spawn_ip(ip, args):
    t0 = time.perf_counter()
    quiet = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)]
    pid = os.posix_spawn(ip, ["ip", *args], {"PATH": "/usr/sbin:/usr/bin"}, file_actions=quiet)
    _, status, _ = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"ip {args} failed")
    return dt


def fill_store(d, n, subnet_base):
    """n reservations in the reference layout, .0.2 upwards, as a busy node would have."""
    net = os.path.join(d, "benchnet")
    os.makedirs(net, exist_ok=True)
    a, b = subnet_base
    last = None
    for k in range(n):
        host = k + 2
        ip = f"{a}.{b}.{host >> 8}.{host & 255}"
        with open(os.path.join(net, ip), "w") as f:
            f.write(f"filler{k}\r\neth0")
        last = ip
    if last:
        with open(os.path.join(net, "last_reserved_ip.0"), "w") as f:
            f.write(last)


def ipam_only(res, vnet_bin, data_dir, sizes, trials):
    """IPAM alone (host-local ADD then DEL of a new container) over a pre-filled store."""
    link_dir = os.path.join(data_dir, "bin")
    os.makedirs(link_dir, exist_ok=True)
    ours = os.path.join(link_dir, "host-local")
    if not os.path.exists(ours):
        os.symlink(vnet_bin, ours)
    bins = {"vnet": ours, "ref": os.path.join(REF_DIR, "host-local")}
    for n in sizes:
        lat = {"vnet": [], "ref": []}
        for impl in ("vnet", "ref"):
            d = os.path.join(data_dir, f"ipam-{impl}-{n}")
            fill_store(d, n, (10, 128))
        for t in range(trials):
            order = ("vnet", "ref") if t % 2 == 0 else ("ref", "vnet")
            for impl in order:
                d = os.path.join(data_dir, f"ipam-{impl}-{n}")
                conf = json.dumps({
                    "cniVersion": "1.0.0", "name": "benchnet", "type": "bridge",
                    "ipam": {"type": "host-local", "subnet": "10.128.0.0/16", "dataDir": d},
                }).encode()
                env = {
                    "CNI_CONTAINERID": f"ipam{t}", "CNI_NETNS": "/run/netns/none",
                    "CNI_IFNAME": "eth0", "CNI_PATH": REF_DIR,
                }
                dt, code, out, _ = spawn(bins[impl], {**env, "CNI_COMMAND": "ADD"}, conf, argv0=bins[impl])
                if code != 0:
                    print(f"{impl} IPAM ADD at {n} failed: {out[:300]!r}", file=sys.stderr)
                lat[impl].append(dt)
                _, code, out, _ = spawn(bins[impl], {**env, "CNI_COMMAND": "DEL"}, conf, argv0=bins[impl])
                if code != 0:
                    print(f"{impl} IPAM DEL at {n} failed: {out[:300]!r}", file=sys.stderr)
        res.add(f"IPAM-only ADD at {n} reservations: median",
                ms(lat["vnet"], 50), ms(lat["ref"], 50), "ms",
                "(measured by bench.py)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vnet", required=True, help="the vnet build scripts/install.sh ships")
    ap.add_argument("--vnet-dynamic", help="plain `cargo build --release` (RSS rows only)")
    ap.add_argument("--pods", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--first", type=int, default=10)
    ap.add_argument("--ipam", default="10,60000", help="store sizes; empty: skip")
    ap.add_argument("--ipam-trials", type=int, default=20)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    a.vnet = os.path.abspath(a.vnet)
    data_dir = tempfile.mkdtemp(prefix="vnet-bench-")
    res = Result()
    try:
        spawn_floor(res, 50)
        nodes = {
            impl: Node(impl, f"node-{impl}", a.vnet, data_dir, "10.250.0.0/16")
            for impl in ("vnet", "ref")
        }
        sequential(res, nodes, a.pods)
        for impl, node in nodes.items():
            res.raw[f"{impl}_left_after_sequential"] = {
                "reserved": len(node.reserved()),
                "veths": len(node.veths()),
            }
        for conc in (8, 32):
            parallel(res, nodes, a.parallel, conc, a.rounds)
        for node in nodes.values():
            node.close()
        peak_rss(res, a.vnet, data_dir, 20,
                 os.path.abspath(a.vnet_dynamic) if a.vnet_dynamic else None)
        del_own_share(res, a.vnet, data_dir, 20)
        first_add(res, a.vnet, data_dir, a.first)
        veth_del_floor(res, 30)
        if a.ipam:
            sizes = [int(s) for s in a.ipam.split(",")]
            ipam_only(res, a.vnet, data_dir, sizes, a.ipam_trials)
    finally:
        for name in list(CREATED):
            netns_del(name)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(res.table())
    print()
    print(f"driver overhead (spawn+wait of /bin/true): {res.raw['spawn_true_ms']:.2f} ms")
    if "rss_floor_true_kib" in res.raw:
        print(f"RSS floor (GNU time's report for /bin/true): {res.raw['rss_floor_true_kib']} KiB")
    if "ip_link_del_ms" in res.raw:
        print(
            f"veth deletion floor: `ip -n pod link del eth0` {res.raw['ip_link_del_ms']:.2f} ms, "
            f"`ip -n pod link show lo` {res.raw['ip_link_show_ms']:.2f} ms (same exec, no deletion)"
        )
    print(f"raw: {json.dumps(res.raw)}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": res.rows, "raw": res.raw}, f, indent=1)


if __name__ == "__main__":
    main()
