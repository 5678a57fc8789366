//! Hardening, black box: the plugin runs as root, and what an attacker or a clumsy
//! operator can put in its way (its own namespace as a pod's, symlinks, FIFOs and huge
//! files in the store or named by the config, a delegation loop, too few descriptors, a
//! program named `nft` in the working directory, ADD and DEL racing) must neither turn it
//! against the node nor make it lie about what it did. Each test failed on the code
//! before the hardening (docs/reliability.md, "Trust model").

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A call that must end on its own: run under `timeout`, so a hang is a failed assertion
/// (exit 124), not a stuck suite. `limit_as` caps the address space (prlimit), so an
/// unbounded read fails the call instead of eating the machine's memory.
struct Bounded<'a> {
    node: &'a Netns,
    env: Vec<(String, String)>,
    args: Vec<String>,
    limit_as: Option<u64>,
    nofile: Option<u64>,
    cwd: Option<PathBuf>,
    path_var: String,
}

const HANG: u64 = 20;

impl<'a> Bounded<'a> {
    fn new(node: &'a Netns) -> Self {
        Bounded {
            node,
            env: Vec::new(),
            args: Vec::new(),
            limit_as: None,
            nofile: None,
            cwd: None,
            path_var: "/usr/sbin:/usr/bin:/sbin:/bin".into(),
        }
    }
    fn pod(mut self, command: &str, id: &str, netns: &str, ifname: &str) -> Self {
        for (k, v) in [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", id),
            ("CNI_NETNS", netns),
            ("CNI_IFNAME", ifname),
            ("CNI_PATH", REF_DIR),
        ] {
            self.env.push((k.into(), v.into()));
        }
        self
    }
    fn env(mut self, k: &str, v: &str) -> Self {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }
    fn args(mut self, a: &[&str]) -> Self {
        self.args = a.iter().map(|s| s.to_string()).collect();
        self
    }
    fn run(&self, stdin: &[u8]) -> (Call, Duration) {
        let mut cmd = Command::new("timeout");
        cmd.args(["-s", "KILL", &HANG.to_string()]);
        cmd.args(["ip", "netns", "exec", &self.node.name]);
        if self.limit_as.is_some() || self.nofile.is_some() {
            cmd.arg("prlimit");
            if let Some(b) = self.limit_as {
                cmd.arg(format!("--as={b}"));
            }
            if let Some(n) = self.nofile {
                cmd.arg(format!("--nofile={n}"));
            }
            cmd.arg("--");
        }
        cmd.arg(BIN).args(&self.args);
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd.env_clear()
            .env("PATH", &self.path_var)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let t = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        let call = Call {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            out.status.code().is_some() && call.code != 124 && call.code != 137,
            "the call did not end on its own within {HANG} s (hung?): {call:?}"
        );
        (call, t.elapsed())
    }
    fn run_json(&self, conf: &Value) -> Call {
        self.run(conf.to_string().as_bytes()).0
    }
}

/// A link on the node that a pod call must never touch: one end of a veth pair.
fn node_link(node: &Netns, name: &str) {
    let peer = format!("{name}p");
    sh_ok(&[
        "ip", "-n", &node.name, "link", "add", name, "type", "veth", "peer", "name", &peer,
    ]);
}

fn has_link(ns: &Netns, name: &str) -> bool {
    ns.links().iter().any(|l| l == name)
}

/// What the node holds besides its bridge: addresses on links other than the bridge.
fn node_addrs_outside_bridge(node: &Netns) -> Vec<String> {
    node.links()
        .into_iter()
        .filter(|l| l != "v-net-0")
        .flat_map(|l| node.addrs(&l))
        .collect()
}

// 1. DEL and CHECK with the plugin's own namespace as CNI_NETNS.
#[test]
fn the_nodes_own_namespace_is_refused_for_add_check_and_del() {
    if !root_or_skip("own_namespace") {
        return;
    }
    let root = common::rootns::RootNs::snapshot();
    let node = Node::new("10.91.1.0/24");
    node_link(&node.ns, "nodelink0");
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [], "ips": []});
    for own in ["/proc/self/ns/net", "/proc/thread-self/ns/net"] {
        for cmd in ["ADD", "CHECK", "DEL"] {
            let conf = with_prev(&node.conf, &prev);
            let c = Bounded::new(&node.ns)
                .pod(cmd, "own1", own, "nodelink0")
                .run_json(&conf);
            let e = c.err(4);
            assert!(
                e["msg"].as_str().unwrap().contains("own network namespace"),
                "{cmd} {own}: {e}"
            );
            assert!(
                has_link(&node.ns, "nodelink0"),
                "{cmd} {own} deleted a node link"
            );
        }
    }
    assert!(node.reserved().is_empty(), "{:?}", node.reserved());
    drop(node);
    root.assert_unchanged();
}

// 2. The own-namespace check and the namespace entered are one descriptor.
#[test]
fn a_symlink_flipped_between_node_and_pod_never_lands_in_the_node() {
    if !root_or_skip("netns_flip") {
        return;
    }
    let node = Node::new("10.91.2.0/24");
    let pod = Netns::new("p");
    let dir = TempDir::new("flip");
    let flip = dir.path().join("ns");
    let to_node = dir.path().join("a");
    let to_pod = dir.path().join("b");
    symlink(node.ns.path(), &to_node).unwrap();
    symlink(pod.path(), &to_pod).unwrap();
    symlink(pod.path(), &flip).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (stop, flip, a, b) = (stop.clone(), flip.clone(), to_node.clone(), to_pod.clone());
        std::thread::spawn(move || {
            let tmp = flip.with_extension("tmp");
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                // A hard link of the symlink, renamed over: the name always exists.
                let src = if n % 2 == 0 { &a } else { &b };
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(src, &tmp).unwrap();
                std::fs::rename(&tmp, &flip).unwrap();
                n += 1;
            }
            n
        })
    };
    let (mut ok, mut refused) = (0, 0);
    for i in 0..60 {
        let id = format!("flip{i}");
        let c = Bounded::new(&node.ns)
            .pod("ADD", &id, flip.to_str().unwrap(), "eth0")
            .run_json(&node.conf);
        match c.code {
            0 => ok += 1,
            _ => {
                let e = c.json();
                assert_eq!(e["code"], 4, "{e}");
                refused += 1;
            }
        }
        assert!(
            !has_link(&node.ns, "eth0"),
            "round {i}: eth0 made in the node"
        );
        assert!(
            node_addrs_outside_bridge(&node.ns).is_empty(),
            "round {i}: a pod address on the node: {:?}",
            node_addrs_outside_bridge(&node.ns)
        );
        node.del(&id, &pod.path()).ok();
        assert!(!has_link(&pod, "eth0"), "round {i}: DEL left eth0");
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let flips = flipper.join().unwrap();
    assert!(flips > 0);
    eprintln!("flip: {ok} ADDs in the pod, {refused} refused, {flips} flips");
    assert!(node.reserved().is_empty(), "{:?}", node.reserved());
}

// 3. DEL never answers 0 without having done its job.
#[test]
fn del_short_of_descriptors_fails_rather_than_half_done() {
    if !root_or_skip("del_nofile") {
        return;
    }
    let node = Node::new("10.91.3.0/24");
    let (mut failed, mut done) = (0, 0);
    for limit in 4..=16u64 {
        let pod = Netns::new("p");
        let id = format!("nofile{limit}");
        node.add(&id, &pod).ok();
        let mut b = Bounded::new(&node.ns).pod("DEL", &id, &pod.path(), "eth0");
        b.nofile = Some(limit);
        let c = b.run_json(&node.conf);
        let eth0 = has_link(&pod, "eth0");
        let reserved = !node.reserved().is_empty();
        if c.code == 0 {
            done += 1;
            assert!(
                !eth0 && !reserved,
                "ulimit -n {limit}: DEL answered 0, eth0 {eth0}, reservation {reserved}"
            );
        } else {
            failed += 1;
            assert!(
                c.stdout.is_empty() || c.json()["code"].is_u64(),
                "ulimit -n {limit}: {c:?}"
            );
            // Never the address freed while the pod still holds it.
            assert!(
                !eth0 || reserved,
                "ulimit -n {limit}: reservation freed, pod keeps eth0: {c:?}"
            );
        }
        // A DEL with enough descriptors finishes the job.
        node.del(&id, &pod.path()).ok();
        assert!(!has_link(&pod, "eth0") && node.reserved().is_empty());
    }
    eprintln!("DEL under low ulimit: {failed} failed, {done} done");
    assert!(failed > 0, "no limit was low enough to fail DEL");
}

// 4. No write through a symlink in the store.
#[test]
fn symlinks_in_the_store_are_never_written_through() {
    if !root_or_skip("store_symlinks") {
        return;
    }
    let node = Node::new("10.91.4.0/24");
    let pod = Netns::new("p");
    let outside = TempDir::new("victim");
    let victims: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = outside.path().join(format!("victim{i}"));
            std::fs::write(&p, "precious\n").unwrap();
            p
        })
        .collect();
    let dir = node.net_dir();
    std::fs::create_dir_all(&dir).unwrap();
    symlink(&victims[0], dir.join("last_reserved_ip.0")).unwrap();
    symlink(&victims[1], dir.join(".vnet-index")).unwrap();
    // A symlink named like an address blocks that address; it is nobody's reservation.
    symlink(&victims[2], dir.join("10.91.4.2")).unwrap();
    let r = node.add("sym1", &pod).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.91.4.3/24", "{r}");
    for v in &victims {
        assert_eq!(std::fs::read_to_string(v).unwrap(), "precious\n", "{v:?}");
    }
    let hint = std::fs::symlink_metadata(dir.join("last_reserved_ip.0")).unwrap();
    assert!(
        hint.file_type().is_file(),
        "the hint was not replaced by a file"
    );
    node.del("sym1", &pod.path()).ok();
    // `vnet ipam release` of the symlinked address removes the symlink, not its target.
    let b = Bounded::new(&node.ns).args(&[
        "ipam",
        "release",
        "10.91.4.2",
        "--data-dir",
        node.data.path().to_str().unwrap(),
        "--network",
        "testnet",
    ]);
    b.run(b"");
    for v in &victims {
        assert_eq!(std::fs::read_to_string(v).unwrap(), "precious\n", "{v:?}");
    }
}

// 5. Delegation cannot loop.
#[test]
fn delegating_to_itself_is_refused_and_depth_is_bounded() {
    if !root_or_skip("self_delegation") {
        return;
    }
    let node = Node::new("10.91.5.0/24");
    let pod = Netns::new("p");
    let bin = TempDir::new("cnipath");
    symlink(BIN, bin.path().join("vnet")).unwrap();
    symlink(BIN, bin.path().join("myipam")).unwrap();
    // A wrapper that runs vnet again: no name or binary check can see through it.
    let wrapper = bin.path().join("loopipam");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec {BIN} \"$@\"\n")).unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = bin.path().to_str().unwrap();
    for (kind, code) in [("vnet", 7), ("myipam", 7), ("loopipam", 7)] {
        let mut conf = node.conf.clone();
        conf["ipam"] = json!({"type": kind});
        let (c, took) = Bounded::new(&node.ns)
            .pod("ADD", "deleg1", &pod.path(), "eth0")
            .env("CNI_PATH", path)
            .run(conf.to_string().as_bytes());
        let e = c.err(code);
        eprintln!("ipam.type {kind}: {} ms: {}", took.as_millis(), e["msg"]);
        assert!(!has_link(&pod, "eth0"), "{kind}");
        assert!(node.veths().is_empty(), "{kind}");
    }
}

// 6 and 7. FIFOs and endless files: nothing blocks, nothing reads without a bound.
#[test]
fn fifos_and_endless_files_neither_hang_nor_exhaust_memory() {
    if !root_or_skip("fifos") {
        return;
    }
    let node = Node::new("10.91.6.0/24");
    let pod = Netns::new("p");
    let tmp = TempDir::new("fifo");
    let fifo = |p: &Path| sh_ok(&["mkfifo", p.to_str().unwrap()]);
    let ns_fifo = tmp.path().join("netns");
    fifo(&ns_fifo);
    // 256 MiB of address space: plenty for a call, far from what an unbounded read takes.
    let bounded = |cmd: &str, id: &str, netns: &str| {
        let mut b = Bounded::new(&node.ns).pod(cmd, id, netns, "eth0");
        b.limit_as = Some(256 << 20);
        b
    };
    // CNI_NETNS a FIFO: ADD says it is no namespace, DEL finds nothing to delete.
    bounded("ADD", "f1", ns_fifo.to_str().unwrap())
        .run_json(&node.conf)
        .err(103);
    bounded("DEL", "f1", ns_fifo.to_str().unwrap())
        .run_json(&node.conf)
        .ok();
    // resolvConf and nodesFile: a FIFO and /dev/zero.
    for target in [ns_fifo.to_str().unwrap(), "/dev/zero"] {
        let mut conf = node.conf.clone();
        conf["ipam"]["resolvConf"] = json!(target);
        let e = bounded("ADD", "f2", &pod.path()).run_json(&conf).err(5);
        assert!(
            e["msg"].as_str().unwrap().contains("not a regular file"),
            "{e}"
        );
        let mut conf = node.conf.clone();
        conf["vnet"] = json!({"nodesFile": target});
        bounded("ADD", "f3", &pod.path()).run_json(&conf).err(5);
    }
    assert!(node.reserved().is_empty() && !has_link(&pod, "eth0"));
    // In the store: a FIFO as the hint, a reservation, then the lock.
    let dir = node.net_dir();
    std::fs::create_dir_all(&dir).unwrap();
    fifo(&dir.join("last_reserved_ip.0"));
    fifo(&dir.join("10.91.6.2"));
    symlink("/dev/zero", dir.join("10.91.6.3")).unwrap();
    // A sparse file of 3 GB named like an address: read whole, it took over 20 s.
    let sparse = std::fs::File::create(dir.join("10.91.6.4")).unwrap();
    sparse.set_len(3 << 30).unwrap();
    let r = bounded("ADD", "f4", &pod.path())
        .run_json(&node.conf)
        .ok()
        .json();
    assert_eq!(r["ips"][0]["address"], "10.91.6.5/24", "{r}");
    let status = Bounded::new(&node.ns)
        .args(&[
            "ipam",
            "status",
            "--data-dir",
            node.data.path().to_str().unwrap(),
        ])
        .run(b"")
        .0;
    assert_eq!(status.code, 1, "findings expected: {status:?}");
    for (what, args) in [
        ("release by address", vec!["10.91.6.2"]),
        ("release by container", vec!["--container", "nobody"]),
    ] {
        let mut a = vec!["ipam", "release"];
        a.extend(args);
        a.extend([
            "--data-dir",
            node.data.path().to_str().unwrap(),
            "--network",
            "testnet",
        ]);
        let mut b = Bounded::new(&node.ns).args(&a);
        b.limit_as = Some(256 << 20);
        let (c, took) = b.run(b"");
        assert!(c.code == 0 || c.code == 1, "{what}: {c:?}");
        eprintln!("{what}: {} ms", took.as_millis());
    }
    bounded("DEL", "f4", &pod.path()).run_json(&node.conf).ok();
    // The lock itself a FIFO: an error, not a hang.
    std::fs::remove_file(dir.join("lock")).unwrap();
    fifo(&dir.join("lock"));
    let e = bounded("ADD", "f5", &pod.path())
        .run_json(&node.conf)
        .err(5);
    assert!(e["msg"].as_str().unwrap().contains("lock"), "{e}");
    assert!(!has_link(&pod, "eth0"));
}

// 8. An owner 70,000 characters long.
#[test]
fn ipam_status_survives_a_huge_owner() {
    if !root_or_skip("huge_owner") {
        return;
    }
    let node = Node::new("10.91.8.0/24");
    let dir = node.net_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("10.91.8.7"),
        format!("{}\r\neth0", "a".repeat(70_000)),
    )
    .unwrap();
    std::fs::write(
        dir.join("10.91.8.8"),
        format!("{}\r\neth0", "b".repeat(4000)),
    )
    .unwrap();
    for args in [vec![], vec!["--json"]] {
        let mut a = vec![
            "ipam",
            "status",
            "--data-dir",
            node.data.path().to_str().unwrap(),
        ];
        a.extend(args);
        let c = Bounded::new(&node.ns).args(&a).run(b"").0;
        assert!(c.code == 0 || c.code == 1, "{c:?}");
        assert!(c.stdout.contains("10.91.8.7") && c.stdout.contains("10.91.8.8"));
    }
}

// 9. Every check before any change: a bad subnet with a node table.
#[test]
fn a_bad_ipam_config_changes_no_route() {
    if !root_or_skip("validate_first") {
        return;
    }
    let node = Node::new("10.95.1.0/24");
    let pod = Netns::new("p");
    sh_ok(&[
        "ip",
        "-n",
        &node.ns.name,
        "link",
        "add",
        "lan0",
        "type",
        "veth",
        "peer",
        "name",
        "lan1",
    ]);
    sh_ok(&[
        "ip",
        "-n",
        &node.ns.name,
        "addr",
        "add",
        "192.168.9.11/24",
        "dev",
        "lan0",
    ]);
    sh_ok(&["ip", "-n", &node.ns.name, "link", "set", "lan0", "up"]);
    sh_ok(&["ip", "-n", &node.ns.name, "link", "set", "lan1", "up"]);
    let mut conf = node.conf.clone();
    conf["vnet"] = json!({"nodes": [
        {"name": "n1", "ip": "192.168.9.11", "podCIDR": "10.95.1.0/24"},
        {"name": "n2", "ip": "192.168.9.12", "podCIDR": "10.95.2.0/24"}]});
    let before = node.ns.routes("-4");
    for bad in [
        json!({"subnet": "10.95.1.0/33"}),
        json!({"subnet": "10.95.1.0/24", "resolvConf": "/nonexistent/resolv.conf"}),
    ] {
        let mut c = conf.clone();
        for (k, v) in bad.as_object().unwrap() {
            c["ipam"][k] = v.clone();
        }
        let call = Bounded::new(&node.ns)
            .pod("ADD", "v1", &pod.path(), "eth0")
            .run_json(&c);
        assert_ne!(call.code, 0);
        assert_eq!(
            node.ns.routes("-4"),
            before,
            "routes changed by a refused ADD ({bad})"
        );
    }
    assert!(node.reserved().is_empty());
}

// 10. ADD and DEL of one container at once: the last DEL always cleans up.
#[test]
fn add_and_del_racing_never_leave_an_unreserved_address() {
    if !root_or_skip("add_del_race") {
        return;
    }
    let node = Node::new("10.91.10.0/24");
    let pod = Netns::new("p");
    for i in 0..40 {
        let id = format!("race{i}");
        let (a, d) = std::thread::scope(|s| {
            let a = s.spawn(|| node.add(&id, &pod));
            let d = s.spawn(|| node.del(&id, &pod.path()));
            (a.join().unwrap(), d.join().unwrap())
        });
        assert_eq!(d.code, 0, "round {i}: {d:?}");
        // Whatever order they ran in, a pod address is a reserved address.
        let held: Vec<String> = if has_link(&pod, "eth0") {
            pod.addrs("eth0")
        } else {
            Vec::new()
        };
        let reserved = node.reserved();
        for addr in &held {
            let ip = addr.split('/').next().unwrap().to_string();
            assert!(
                reserved.contains(&ip),
                "round {i}: pod holds {ip}, store {reserved:?} (ADD {}, DEL {})",
                a.code,
                d.code
            );
        }
        node.del(&id, &pod.path()).ok();
        assert!(!has_link(&pod, "eth0"), "round {i}");
        assert!(
            node.reserved().is_empty(),
            "round {i}: {:?}",
            node.reserved()
        );
    }
}

// 11. `nft` is never taken from the working directory.
#[test]
fn nft_is_never_run_from_a_relative_path_entry() {
    if !root_or_skip("nft_path") || !tool_or_skip("nft_path", "nft") {
        return;
    }
    let mut node = Node::new("10.91.11.0/24");
    node.conf["ipMasq"] = json!(true);
    let pod = Netns::new("p");
    let cwd = TempDir::new("cwd");
    let marker = cwd.path().join("ran");
    let fake = cwd.path().join("nft");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\ntouch {}\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for path_var in [
        ":/usr/sbin:/usr/bin:/sbin:/bin",
        ".:/usr/bin",
        "nft-dir:/bin",
    ] {
        let mut b = Bounded::new(&node.ns).pod("ADD", "nft1", &pod.path(), "eth0");
        b.cwd = Some(cwd.path().to_path_buf());
        b.path_var = path_var.into();
        b.run_json(&node.conf).ok();
        assert!(!marker.exists(), "PATH={path_var}: ./nft ran as root");
        let mut b = Bounded::new(&node.ns).pod("DEL", "nft1", &pod.path(), "eth0");
        b.cwd = Some(cwd.path().to_path_buf());
        b.path_var = path_var.into();
        b.run_json(&node.conf).ok();
        assert!(
            !marker.exists(),
            "PATH={path_var}: ./nft ran as root on DEL"
        );
    }
}

// 12 and 13. Config values the reference lets through.
#[test]
fn empty_bridge_means_cni0_and_bad_gateways_are_refused() {
    if !root_or_skip("bridge_gateway") {
        return;
    }
    let node = Node::new("10.91.12.0/24");
    let pod = Netns::new("p");
    let mut conf = node.conf.clone();
    conf["bridge"] = json!("");
    let r = Bounded::new(&node.ns)
        .pod("ADD", "br1", &pod.path(), "eth0")
        .run_json(&conf)
        .ok()
        .json();
    assert_eq!(r["interfaces"][0]["name"], "cni0", "{r}");
    assert!(has_link(&node.ns, "cni0"));
    Bounded::new(&node.ns)
        .pod("DEL", "br1", &pod.path(), "eth0")
        .run_json(&conf)
        .ok();
    for gw in [
        "2001:db8::1",
        "10.91.13.1",
        "0.0.0.0",
        "10.91.12.0",
        "10.91.12.255",
    ] {
        let mut conf = node.conf.clone();
        conf["ipam"]["gateway"] = json!(gw);
        let e = Bounded::new(&node.ns)
            .pod("ADD", "gw1", &pod.path(), "eth0")
            .run_json(&conf)
            .err(7);
        assert!(e["msg"].as_str().unwrap().contains(gw), "{gw}: {e}");
        assert!(node.reserved().is_empty(), "{gw}");
        assert!(!has_link(&pod, "eth0"), "{gw}");
        // A pod made under such a config (by earlier vnet, or the reference) must still
        // be deletable: only ADD judges the gateway.
        Bounded::new(&node.ns)
            .pod("DEL", "gw1", &pod.path(), "eth0")
            .run_json(&conf)
            .ok();
    }
}
