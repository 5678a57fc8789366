#!/usr/bin/env python3
"""Long reliability runs behind scripts/reliability.sh: load and SIGKILL faults.

load:   N ADD/DEL cycles on one node at a random concurrency 1-32 per batch. After every
        ADD the pod's eth0 must hold the answered address and no other live pod may hold
        it; a monitor thread reads the store over and over and checks that no container
        holds two addresses. At the end: store empty, no veth left, no eth0 left.
faults: K kills (SIGKILL at a random point of an ADD or a DEL, exec included), each
        followed by the runtime's DEL, beside a few pods that stay up. After each: only the
        live pods hold addresses (one each), no leaked veth, no duplicate. At the end a GC
        with the live pods as valid attachments, then their DELs.

Prints a JSON summary on the last line. Run as root; nodes and pods are throwaway
namespaces (bench.py's helpers), never the root namespace.
"""

import argparse
import concurrent.futures as cf
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (spawn, Node, netns helpers)


def pod_addrs(pod):
    out = subprocess.run(["ip", "-n", pod, "-j", "addr", "show", "dev", "eth0"],
                         capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        return []
    return [f"{a['local']}/{a['prefixlen']}" for l in json.loads(out.stdout)
            for a in l.get("addr_info", []) if a.get("scope") == "global"]


def store(node):
    """{ip: owner id} of the reservation files ('' for an empty file)."""
    d = os.path.join(node.data, "benchnet")
    out = {}
    if not os.path.isdir(d):
        return out
    for f in os.listdir(d):
        if not f[0].isdigit() or f.startswith("last"):
            continue
        try:
            with open(os.path.join(d, f), "rb") as fh:
                out[f] = fh.read().split(b"\r\n")[0].decode(errors="replace").strip()
        except FileNotFoundError:
            pass
    return out


class Load:
    def __init__(self, node, pods):
        self.node = node
        self.free = list(pods)
        self.lock = threading.Lock()
        self.live = {}  # address -> container id
        self.errors = []
        self.duplicates = []
        self.store_checks = 0
        self.cycles = 0
        self.done = False

    def cycle(self, cid):
        with self.lock:
            pod = self.free.pop()
        try:
            _, code, out, _ = self.node.call("ADD", cid, pod)
            if code != 0:
                self.errors.append(f"ADD {cid}: {out[:200]!r}")
                self.node.call("DEL", cid, pod)
                return
            addr = bench.address(out)
            with self.lock:
                if addr in self.live:
                    self.duplicates.append((addr, self.live[addr], cid))
                self.live[addr] = cid
            if pod_addrs(pod) != [addr]:
                self.errors.append(f"{cid}: pod holds {pod_addrs(pod)}, answer {addr}")
            # Forget it before the DEL: from then on the store may hand it out again.
            with self.lock:
                self.live.pop(addr, None)
            _, code, out, _ = self.node.call("DEL", cid, pod)
            if code != 0:
                self.errors.append(f"DEL {cid}: {out[:200]!r}")
        finally:
            with self.lock:
                self.free.append(pod)
                self.cycles += 1

    def monitor(self):
        while not self.done:
            owners = list(store(self.node).values())
            if len(owners) != len(set(owners)):
                self.duplicates.append(("store", sorted(owners)))
            self.store_checks += 1
            time.sleep(0.01)


def run_load(vnet, data_dir, cycles, seed):
    rng = random.Random(seed)
    node = bench.Node("vnet", "load", vnet, data_dir, "10.253.0.0/16")
    pods = [bench.netns_add(f"l{i}") for i in range(32)]
    load = Load(node, pods)
    mon = threading.Thread(target=load.monitor)
    mon.start()
    started = 0
    conc_used = []
    t0 = time.time()
    try:
        while started < cycles:
            c = min(rng.randint(1, 32), cycles - started)
            conc_used.append(c)
            with cf.ThreadPoolExecutor(c) as ex:
                list(ex.map(load.cycle, [f"load{started + i}" for i in range(c)]))
            started += c
    finally:
        load.done = True
        mon.join()
    left = {"reservations": len(store(node)), "veths": len(node.veths()),
            "pod_eth0": sum(1 for p in pods if pod_addrs(p))}
    node.close()
    for p in pods:
        bench.netns_del(p)
    return {
        "cycles": load.cycles, "batches": len(conc_used),
        "concurrency_min": min(conc_used), "concurrency_max": max(conc_used),
        "seconds": round(time.time() - t0, 1), "errors": len(load.errors),
        "error_samples": load.errors[:5], "duplicates": len(load.duplicates),
        "duplicate_samples": load.duplicates[:5], "store_checks": load.store_checks,
        "left": left,
    }


def kill_call(node, command, cid, pod, delay):
    """Start one call and SIGKILL it after `delay` seconds; True if it was still running."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command,
           "CNI_CONTAINERID": cid, "CNI_NETNS": f"/run/netns/{pod}",
           "CNI_IFNAME": "eth0", "CNI_PATH": bench.REF_DIR}
    bench.setns(node.fd)
    r_in, w_in = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY)
    pid = os.posix_spawn(node.bin, [node.bin], env, file_actions=[
        (os.POSIX_SPAWN_DUP2, r_in, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
        (os.POSIX_SPAWN_DUP2, devnull, 2), (os.POSIX_SPAWN_CLOSE, w_in)])
    os.close(r_in)
    os.close(devnull)
    try:
        os.write(w_in, node.conf)
    except BrokenPipeError:
        pass
    os.close(w_in)
    time.sleep(delay)
    ran = os.waitpid(pid, os.WNOHANG)[0] == 0
    if ran:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    return ran


def run_faults(vnet, data_dir, kills, seed):
    rng = random.Random(seed)
    node = bench.Node("vnet", "kill", vnet, data_dir, "10.254.0.0/16")
    live = {}
    live_pods = []
    durations = {"ADD": [], "DEL": []}
    for i in range(3):
        pod = bench.netns_add(f"kl{i}")
        live_pods.append(pod)
        dt, code, out, _ = node.call("ADD", f"live{i}", pod)
        assert code == 0, out
        live[f"live{i}"] = (pod, bench.address(out))
    for i in range(20):  # how long each call takes: the kill points spread over it
        pod = bench.netns_add(f"kw{i}")
        durations["ADD"].append(node.call("ADD", f"warm{i}", pod)[0])
        durations["DEL"].append(node.call("DEL", f"warm{i}", pod)[0])
        bench.netns_del(pod)
    span = {c: sorted(d)[len(d) // 2] * 1.3 for c, d in durations.items()}
    pod = bench.netns_add("kp")
    landed = {"ADD": 0, "DEL": 0}
    problems, torn = [], []
    del_failures = 0
    for k in range(kills):
        command = "ADD" if k % 2 == 0 else "DEL"
        cid = f"kill{k}"
        if command == "DEL":
            _, code, out, _ = node.call("ADD", cid, pod)
            if code != 0:
                problems.append(f"setup ADD {cid}: {out[:200]!r}")
        landed[command] += kill_call(node, command, cid, pod, rng.uniform(0, span[command]))
        _, code, out, _ = node.call("DEL", cid, pod)  # the runtime's DEL
        if code != 0:
            del_failures += 1
            problems.append(f"DEL after killed {command} {cid}: {out[:200]!r}")
        held = store(node)
        owners = sorted(held.values())
        want = sorted(live)
        if owners != want:
            # Empty files included: a kill between creating a reservation and writing
            # its owner must not leave one (the store links a finished file into place).
            torn.extend(ip for ip, o in held.items() if o == "")
            problems.append(f"after killed {command} {cid}: store {held}")
        veths = node.veths()
        if len(veths) != len(live):
            problems.append(f"after killed {command} {cid}: veths {veths}")
        if pod_addrs(pod):
            problems.append(f"after killed {command} {cid}: pod still has eth0")
        for lid, (lpod, addr) in live.items():
            if pod_addrs(lpod) != [addr]:
                problems.append(f"live pod {lid} lost {addr}")
    # GC as a runtime would, with the live pods as the valid attachments.
    gc_conf = json.loads(node.conf)
    gc_conf["cniVersion"] = "1.1.0"
    gc_conf["cni.dev/valid-attachments"] = [{"containerID": c, "ifname": "eth0"} for c in live]
    bench.setns(node.fd)
    _, code, out, _ = bench.spawn(node.bin, {"CNI_COMMAND": "GC", "CNI_PATH": bench.REF_DIR},
                                  json.dumps(gc_conf).encode())
    if code != 0:
        problems.append(f"GC: {out[:200]!r}")
    if sorted(store(node).values()) != sorted(live):
        problems.append(f"after GC: store {store(node)}")
    for lid, (lpod, _) in live.items():
        node.call("DEL", lid, lpod)
    left = {"reservations": len(store(node)), "veths": len(node.veths())}
    node.close()
    for p in live_pods + [pod]:
        bench.netns_del(p)
    return {
        "kills": kills, "landed_while_running": landed, "kill_window_ms": {c: round(v * 1000, 2) for c, v in span.items()},
        "del_failures": del_failures, "problems": len(problems), "problem_samples": problems[:5],
        "torn_reservations": len(torn), "left": left,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vnet", required=True)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--kills", type=int, default=400)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    a = ap.parse_args()
    vnet = os.path.abspath(a.vnet)
    data_dir = tempfile.mkdtemp(prefix="vnet-rel-")
    summary = {"seed": a.seed}
    try:
        summary["load"] = run_load(vnet, data_dir, a.cycles, a.seed)
        print(f"load: {json.dumps(summary['load'])}", flush=True)
        summary["faults"] = run_faults(vnet, data_dir, a.kills, a.seed)
        print(f"faults: {json.dumps(summary['faults'])}", flush=True)
    finally:
        for name in list(bench.CREATED):
            bench.netns_del(name)
        subprocess.run(["rm", "-rf", data_dir])
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
