#!/usr/bin/env python3
"""Writes measured figures into a marked section of a doc (used by reliability.sh,
fuzz.sh and bench-runtimes.sh), so the figures in a doc are always the ones a script printed.

    reliability_doc.py DOC SECTION FILE

replaces the text between `<!-- SECTION:begin -->` and `<!-- SECTION:end -->` in DOC with
FILE rendered as Markdown: a JSON summary from reliability.py (section "run"), a Markdown
file as it is (FILE ending in .md), or the key=value report of fuzz.sh (any other).
"""
import datetime
import json
import os
import platform
import sys


def render_run(s):
    load, faults = s["load"], s["faults"]
    lines = [
        f"- Load: {load['cycles']} ADD/DEL cycles in {load['batches']} batches at random "
        f"concurrency {load['concurrency_min']}–{load['concurrency_max']}, {load['seconds']} s: "
        f"**{load['errors']} errors, {load['duplicates']} duplicate addresses** "
        f"({load['store_checks']} store snapshots checked while it ran); left at the end: "
        f"{load['left']['reservations']} reservations, {load['left']['veths']} veths, "
        f"{load['left']['pod_eth0']} pod interfaces.",
        f"- Faults: {faults['kills']} SIGKILLs at random points (half during ADD, half during "
        f"DEL; {faults['landed_while_running']['ADD']} ADD and "
        f"{faults['landed_while_running']['DEL']} DEL kills landed while the plugin ran, kill "
        f"windows ADD {faults['kill_window_ms']['ADD']} ms, DEL {faults['kill_window_ms']['DEL']} ms), "
        f"each followed by the runtime's DEL: **{faults['del_failures']} failed DELs; "
        f"{faults['torn_reservations']} reservation files without owner** (what a kill between "
        f"creating a reservation and writing its owner would leave); "
        f"**{faults['problems']} leaks, leaked veths or duplicates** in all. Left after GC and the "
        f"live pods' DEL: {faults['left']['reservations']} reservations, "
        f"{faults['left']['veths']} veths.",
        f"- Seed: {s['seed']} (`scripts/reliability.sh --seed {s['seed']}` replays the "
        f"same concurrency and kill delays; kernel timing still varies).",
    ]
    for key in ("error_samples", "duplicate_samples"):
        if load.get(key):
            lines.append(f"- Load {key}: `{load[key]}`")
    if faults.get("problem_samples"):
        lines.append(f"- Fault problems: `{faults['problem_samples']}`")
    if s.get("tests"):
        lines.append(f"- Scenario suites (`cargo test --release --test ...`): {s['tests']}")
    return "\n".join(lines)


def render_kv(text):
    kv = dict(l.split("=", 1) for l in text.split() if "=" in l)
    return (f"- {kv['executions']} executions in {kv['seconds']} s ({kv['passes']} passes "
            f"over the six input families), **{kv['panics']} panics**, every refusal with a "
            f"fitting code.")


def main():
    doc, section, src = sys.argv[1:4]
    text = open(src).read()
    if section == "run":
        body = render_run(json.loads(text.strip().splitlines()[-1]))
    elif src.endswith(".md"):
        body = text.strip()
    else:
        body = render_kv(text)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    block = (f"<!-- {section}:begin -->\nMeasured {stamp} on {platform.node()} "
             f"({os.cpu_count()} CPUs, kernel {platform.release()}):\n\n{body}\n<!-- {section}:end -->")
    d = open(doc).read()
    a = d.index(f"<!-- {section}:begin -->")
    b = d.index(f"<!-- {section}:end -->") + len(f"<!-- {section}:end -->")
    open(doc, "w").write(d[:a] + block + d[b:])
    print(f"updated {doc} ({section})")


if __name__ == "__main__":
    main()
