#!/usr/bin/env python3
"""The lab's traffic check: a UDP echo server that answers with the source address it
saw, a prober that asks every target from one pod, and the matrix printer.

  lab_echo.py serve --pidfile F            (run inside a pod, node or LAN host namespace)
  lab_echo.py probe --state D --split S --node N --pod P [--lan-host IP]
  lab_echo.py matrix [--json] < probe lines
  lab_echo.py wait --state D --split S --node N --pod P --timeout SECONDS

The source address the far side saw is the point: pod to pod must arrive with the real
pod address (no NAT), pod to anything outside the pod network with the node's address
(masquerade).
"""
import argparse
import ipaddress
import json
import os
import socket
import sys
import time

PORT = 7357


def serve(args):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("0.0.0.0", PORT))
    with open(args.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(args.pidfile + ".tmp", args.pidfile)
    while True:
        # A reply can be undeliverable: a pod's packet that reached the LAN host without
        # masquerade (the drill that removes the rule) names a source the LAN host has no
        # route to, and sendto fails with ENETUNREACH. That must not end the server.
        try:
            data, peer = sock.recvfrom(512)
            sock.sendto(peer[0].encode(), peer)
        except OSError:
            continue


def load_pods(state, split):
    """Pods of every node: from the state directory when this machine started them,
    else (another VM's pods) the first two addresses after the gateway, which is what
    a fresh host-local store hands out."""
    with open(os.path.join(split, "nodes.json")) as f:
        table = json.load(f)
    pods = []
    for node in table["nodes"]:
        for k in (1, 2):
            path = os.path.join(state, "pods", "%s.pod%d.json" % (node["name"], k))
            if os.path.exists(path):
                with open(path) as f:
                    pods.append(json.load(f))
            else:
                net = ipaddress.ip_network(node["podCIDR"])
                pods.append({"node": node["name"], "pod": "pod%d" % k,
                             "ip": str(net.network_address + 1 + k)})
    return table["nodes"], pods


def targets(nodes, pods, me, lan_host):
    mine = next(p for p in pods if p["node"] == me["node"] and p["pod"] == me["pod"])
    node_ip = next(n["ip"] for n in nodes if n["name"] == me["node"])
    out = []
    for p in pods:
        if p is mine:
            continue
        kind = "same-node" if p["node"] == me["node"] else "cross-node"
        out.append((kind, "%s/%s" % (p["node"], p["pod"]), p["ip"], mine["ip"]))
    for n in nodes:
        if n["name"] != me["node"]:
            out.append(("remote-node", n["name"], n["ip"], node_ip))
    if lan_host:
        out.append(("lan-host", "lan-host", lan_host, node_ip))
    return mine, out


def ask(ip, tries=3, timeout=1.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        for _ in range(tries):
            try:
                sock.sendto(b"who am i", (ip, PORT))
                data, _ = sock.recvfrom(512)
                return data.decode()
            except (socket.timeout, OSError):
                continue
    finally:
        sock.close()
    return None


def probe(args):
    nodes, pods = load_pods(args.state, args.split)
    mine, tgts = targets(nodes, pods, {"node": args.node, "pod": args.pod}, args.lan_host)
    for kind, name, ip, expect in tgts:
        seen = ask(ip)
        print(json.dumps({
            "from": "%s/%s" % (args.node, args.pod), "from_ip": mine["ip"],
            "to": name, "to_ip": ip, "kind": kind, "seen": seen, "expect": expect,
            "ok": seen == expect,
        }))
        sys.stdout.flush()


def wait(args):
    """Until every pod and node answers (whatever source it saw), or the timeout: the VM
    lab's last node waits so for the others, which vagrant may still be bringing up."""
    nodes, pods = load_pods(args.state, args.split)
    _, tgts = targets(nodes, pods, {"node": args.node, "pod": args.pod}, "")
    pending = [(name, ip) for _, name, ip, _ in tgts]
    deadline = time.monotonic() + args.timeout
    while True:
        pending = [(name, ip) for name, ip in pending if ask(ip, tries=1) is None]
        if not pending:
            return 0
        if time.monotonic() >= deadline:
            print("%s/%s: after %d s no answer from %s: is every node up and provisioned "
                  "(vagrant status; vagrant provision NODE)?" % (
                      args.node, args.pod, args.timeout,
                      ", ".join("%s %s" % t for t in pending)), file=sys.stderr)
            return 1
        time.sleep(2)


WHY = {"same-node": "pod address (no NAT)", "cross-node": "pod address (no NAT)",
       "remote-node": "node address (masquerade)", "lan-host": "node address (masquerade)"}


def matrix(args):
    cells = [json.loads(line) for line in sys.stdin if line.strip()]
    bad = [c for c in cells if not c["ok"]]
    if args.json:
        print(json.dumps({"cells": cells, "ok": bool(cells) and not bad}))
        return 0 if cells and not bad else 1
    fmt = "%-22s %-24s %-12s %-6s %-16s %s"
    print(fmt % ("FROM", "TO", "KIND", "RESULT", "SOURCE SEEN", "EXPECTED"))
    for c in cells:
        result = "ok" if c["ok"] else ("WRONG" if c["seen"] else "FAIL")
        print(fmt % ("%s %s" % (c["from"], c["from_ip"]), "%s %s" % (c["to"], c["to_ip"]),
                     c["kind"], result, c["seen"] or "-",
                     "%s = %s" % (c["expect"], WHY[c["kind"]])))
    print("%d checks, %d as expected" % (len(cells), len(cells) - len(bad)))
    return 0 if cells and not bad else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--pidfile", required=True)
    p = sub.add_parser("probe")
    for a in ("--state", "--split", "--node", "--pod"):
        p.add_argument(a, required=True)
    p.add_argument("--lan-host", default="")
    m = sub.add_parser("matrix")
    m.add_argument("--json", action="store_true")
    w = sub.add_parser("wait")
    for a in ("--state", "--split", "--node", "--pod"):
        w.add_argument(a, required=True)
    w.add_argument("--timeout", type=int, default=600)
    args = ap.parse_args()
    if args.cmd == "serve":
        serve(args)
    elif args.cmd == "probe":
        probe(args)
    elif args.cmd == "wait":
        sys.exit(wait(args))
    else:
        sys.exit(matrix(args))


if __name__ == "__main__":
    main()
