//! Faults, black box: the plugin killed with SIGKILL at random points of ADD and DEL
//! (a short run; scripts/reliability.sh does hundreds), the pod netns gone before DEL,
//! the bridge deleted by hand, a read-only or full IPAM directory, two networks on one
//! bridge. After the runtime's DEL nothing may leak and no address may be held twice.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// xorshift64*: enough randomness for kill delays, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn from_time() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("faults: seed {seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// Starts one plugin call and SIGKILLs it after `delay` unless it ended first.
/// Returns whether the kill landed while it ran.
fn kill_after(node: &Node, command: &str, id: &str, pod: &Netns, delay: Duration) -> bool {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &node.ns.name, BIN])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", REF_DIR)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(node.conf.to_string().as_bytes());
    std::thread::sleep(delay);
    let ran = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    ran
}

/// Reservation files by owner container ID.
fn owners(node: &Node) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for ip in node.reserved() {
        let text = std::fs::read_to_string(node.net_dir().join(&ip)).unwrap_or_default();
        let id = text.split("\r\n").next().unwrap_or("").trim().to_string();
        out.entry(id).or_default().push(ip);
    }
    out
}

/// Reservation files with no owner in them. A kill between creating a reservation and
/// writing its owner used to leave one that nothing freed; the store now writes the file
/// aside and links it into place, so there must never be any.
fn torn_reservations(node: &Node) -> Vec<String> {
    node.reserved()
        .into_iter()
        .filter(|ip| std::fs::metadata(node.net_dir().join(ip)).is_ok_and(|m| m.len() == 0))
        .collect()
}

/// Only the live pods hold addresses, one each, and they are the ones in their netns.
fn assert_consistent(node: &Node, live: &[(String, &Netns, String)], what: &str) {
    let owners = owners(node);
    let mut expected: Vec<&str> = live.iter().map(|(id, _, _)| id.as_str()).collect();
    expected.sort();
    let mut held: Vec<&str> = owners.keys().map(String::as_str).collect();
    held.sort();
    assert_eq!(held, expected, "{what}: reservations {owners:?}");
    for (id, pod, addr) in live {
        assert_eq!(owners[id].len(), 1, "{what}: {id} holds {:?}", owners[id]);
        assert_eq!(pod.addrs("eth0"), vec![addr.clone()], "{what}: {id}");
    }
    assert_eq!(
        node.veths().len(),
        live.len(),
        "{what}: veths {:?}",
        node.veths()
    );
}

#[test]
fn sigkill_at_random_points_of_add_and_del_leaks_nothing() {
    if !root_or_skip("sigkill") {
        return;
    }
    let mut rng = Rng::from_time();
    let node = Node::new("10.248.1.0/24");
    // Three pods stay up throughout, so a duplicate address would show.
    let live_pods: Vec<Netns> = (0..3).map(|_| Netns::new("l")).collect();
    let mut live = Vec::new();
    let mut slowest = Duration::ZERO;
    for (i, pod) in live_pods.iter().enumerate() {
        let t = Instant::now();
        let r = node.add(&format!("live{i}"), pod).ok().json();
        slowest = slowest.max(t.elapsed());
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        live.push((format!("live{i}"), pod, addr));
    }
    // Kill points spread over the whole call, exec included.
    let span = (slowest.as_micros() as u64 * 12 / 10).max(1000);
    let pod = Netns::new("k");
    let mut landed = 0;
    for round in 0..10 {
        let id = format!("kadd{round}");
        let delay = Duration::from_micros(rng.below(span));
        landed += kill_after(&node, "ADD", &id, &pod, delay) as usize;
        // The runtime must DEL after a failed ADD; that DEL must succeed and clean up.
        node.del(&id, &pod.path()).ok();
        let torn = torn_reservations(&node);
        assert!(
            torn.is_empty(),
            "a kill left reservations without owner: {torn:?}"
        );
        assert_eq!(pod.links(), vec!["lo"], "ADD killed after {delay:?}");
        assert_consistent(&node, &live, &format!("ADD killed after {delay:?}"));
    }
    for round in 0..10 {
        let id = format!("kdel{round}");
        node.add(&id, &pod).ok();
        let delay = Duration::from_micros(rng.below(span));
        landed += kill_after(&node, "DEL", &id, &pod, delay) as usize;
        node.del(&id, &pod.path()).ok();
        assert_eq!(pod.links(), vec!["lo"], "DEL killed after {delay:?}");
        assert_consistent(&node, &live, &format!("DEL killed after {delay:?}"));
    }
    eprintln!("faults: {landed} of 20 kills landed while the plugin ran");
    eprintln!("inputs: 20");
    assert!(landed > 0, "no kill landed: the delays are all too long");
    for (id, pod, _) in &live {
        node.del(id, &pod.path()).ok();
    }
    assert!(node.reserved().is_empty());
    assert!(node.veths().is_empty());
}

#[test]
fn pod_netns_deleted_before_del() {
    if !root_or_skip("netns_gone") {
        return;
    }
    let node = Node::new("10.248.2.0/24");
    let pod = Netns::new("p");
    let path = pod.path();
    node.add("gone1", &pod).ok();
    assert_eq!(node.veths().len(), 1);
    drop(pod);
    node.del("gone1", &path).ok();
    node.del("gone1", &path).ok();
    assert!(node.reserved().is_empty());
    // The host end dies with the namespace; the kernel tears it down asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.veths().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(node.veths().is_empty(), "{:?}", node.veths());
}

#[test]
fn bridge_deleted_by_hand_is_recreated_by_the_next_add() {
    if !root_or_skip("bridge_gone") {
        return;
    }
    let node = Node::new("10.248.3.0/24");
    let (p1, p2) = (Netns::new("p"), Netns::new("p"));
    node.add("br1", &p1).ok();
    sh_ok(&["ip", "-n", &node.ns.name, "link", "del", "v-net-0"]);
    assert!(node.ns.link("v-net-0").is_none());
    let r = node.add("br2", &p2).ok().json();
    let br = node.ns.link("v-net-0").expect("bridge recreated");
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    assert_eq!(node.ns.addrs("v-net-0"), vec!["10.248.3.1/24"]);
    let veth = r["interfaces"][1]["name"].as_str().unwrap();
    assert_eq!(node.ns.link(veth).unwrap()["master"], "v-net-0");
    assert!(p2.ping("10.248.3.1"), "the new pod reaches its gateway");
    node.del("br1", &p1.path()).ok();
    node.del("br2", &p2.path()).ok();
    assert!(node.reserved().is_empty());
    assert!(node.veths().is_empty());
}

/// Runs one ADD inside a private mount namespace where `setup` (shell, `$D` = dataDir)
/// has changed the data directory; returns the CNI answer and what the directory then
/// held, listed from inside the same mount namespace.
fn add_with_mounted_data(node: &Node, pod: &Netns, setup: &str) -> (Value, Vec<String>) {
    let out = TempDir::new("o");
    let answer = out.path().join("answer");
    let listing = out.path().join("listing");
    let script = format!(
        "set -e; D=\"$1\"; {setup}; \
         ip netns exec \"$2\" \"$3\" > \"$4\" || true; \
         ls -A \"$D\" \"$D/testnet\" > \"$5\" 2>/dev/null || true"
    );
    let mut child = Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(node.data.path())
        .args([&node.ns.name, BIN])
        .args([&answer, &listing])
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "disk1")
        .env("CNI_NETNS", pod.path())
        .env("CNI_IFNAME", "eth0")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(node.conf.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "setup failed: {setup}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(answer).unwrap()).unwrap();
    let listing = std::fs::read_to_string(listing).unwrap();
    let files = listing
        .lines()
        .filter(|l| !l.is_empty() && !l.ends_with(':'))
        .map(str::to_string)
        .collect();
    (v, files)
}

#[test]
fn read_only_or_full_ipam_directory_is_a_clear_error_with_nothing_half_written() {
    if !root_or_skip("disk") {
        return;
    }
    let node = Node::new("10.248.4.0/24");
    let pod = Netns::new("p");
    let cases = [
        (
            "read-only",
            "mount --bind \"$D\" \"$D\"; mount -o remount,bind,ro \"$D\"",
        ),
        (
            "no space",
            "mount -t tmpfs -o size=8k vnetfull \"$D\"; \
             head -c 1M /dev/zero > \"$D/fill\" 2>/dev/null || true",
        ),
        (
            "no inodes",
            "mount -t tmpfs -o size=1m,nr_inodes=4 vnetfull \"$D\"; \
             mkdir \"$D/testnet\"; touch \"$D/testnet/lock\"",
        ),
    ];
    for (what, setup) in cases {
        let (answer, files) = add_with_mounted_data(&node, &pod, setup);
        assert_eq!(answer["code"], 5, "{what}: {answer}");
        let msg = answer["msg"].as_str().unwrap();
        assert!(
            msg.contains(node.data.path().to_str().unwrap()),
            "{what}: the message names the path: {msg}"
        );
        let reservations: Vec<&String> = files
            .iter()
            .filter(|f| f.parse::<std::net::IpAddr>().is_ok() || f.starts_with("last_"))
            .collect();
        assert!(reservations.is_empty(), "{what}: half-written {files:?}");
        assert_eq!(pod.links(), vec!["lo"], "{what}");
        assert!(node.veths().is_empty(), "{what}");
    }
    // The real directory was never touched, and works.
    assert!(node.reserved().is_empty());
    node.add("disk2", &pod).ok();
    node.del("disk2", &pod.path()).ok();
}

#[test]
fn two_networks_share_one_bridge() {
    if !root_or_skip("two_networks") {
        return;
    }
    let node = Node::new("10.248.5.0/24");
    let mut other = node.conf.clone();
    other["name"] = json!("othernet");
    other["ipam"]["subnet"] = json!("10.248.6.0/24");
    let (a, b, c) = (Netns::new("a"), Netns::new("b"), Netns::new("c"));
    node.add("n1", &a).ok();
    // A second IPv4 gateway on the same bridge conflicts, as with the reference bridge:
    // refused, nothing left behind in the pod, on the node or in either store.
    let e = node.call("ADD", "n2", &b.path(), "eth0", &other).err(106);
    assert!(e["msg"].as_str().unwrap().contains("10.248.5.1/24"), "{e}");
    assert_eq!(b.links(), vec!["lo"]);
    assert_eq!(node.veths().len(), 1);
    let other_dir = node.data.path().join("othernet");
    let held = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter(|e| {
                    let n = e.as_ref().unwrap().file_name();
                    n.to_string_lossy().parse::<std::net::IpAddr>().is_ok()
                })
                .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(held(&other_dir), 0);
    // Without a gateway of its own, the second network shares the bridge fine.
    other["isGateway"] = json!(false);
    other["isDefaultGateway"] = json!(false);
    let rb = node
        .call("ADD", "n2", &b.path(), "eth0", &other)
        .ok()
        .json();
    node.add("n3", &c).ok();
    // Round robin: the refused attempt above already moved past .2.
    let addr = rb["ips"][0]["address"].as_str().unwrap();
    assert!(addr.starts_with("10.248.6."), "{addr}");
    assert_eq!(held(&other_dir), 1);
    assert_eq!(
        node.reserved().len(),
        2,
        "the first network's store is its own"
    );
    assert_eq!(node.veths().len(), 3);
    assert!(a.ping("10.248.5.1") && c.ping("10.248.5.1"));
    // Deleting from one network leaves the other alone.
    node.call("DEL", "n2", &b.path(), "eth0", &other).ok();
    assert_eq!(held(&other_dir), 0);
    assert_eq!(node.reserved().len(), 2);
    assert!(a.ping("10.248.5.1"));
    node.del("n1", &a.path()).ok();
    node.del("n3", &c.path()).ok();
    assert!(node.veths().is_empty());
}
