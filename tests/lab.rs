//! The whole three-node lab (`scripts/lab.sh`) with a unique prefix: every cell of the
//! connectivity matrix, masquerade cleanup by DEL with an empty `CNI_NETNS`, `up` twice,
//! and `down` leaving nothing behind.

#![allow(clippy::unwrap_used)]

mod common;

use common::lab::Lab;
use common::*;
use serde_json::Value;

fn node_ip(node: &str) -> &'static str {
    match node {
        "node1" => "192.168.1.11",
        "node2" => "192.168.1.12",
        "node3" => "192.168.1.13",
        other => panic!("unknown node {other}"),
    }
}

fn check_matrix(cells: &[Value]) {
    let count = |kind: &str| cells.iter().filter(|c| c["kind"] == kind).count();
    assert_eq!(count("same-node"), 6);
    assert_eq!(count("cross-node"), 24);
    assert_eq!(count("remote-node"), 12);
    assert_eq!(count("lan-host"), 6);
    for c in cells {
        let from_node = c["from"].as_str().unwrap().split('/').next().unwrap();
        let seen = c["seen"]
            .as_str()
            .unwrap_or_else(|| panic!("no answer: {c}"));
        match c["kind"].as_str().unwrap() {
            // Pod to pod, also across nodes: the far pod sees the real pod address.
            "same-node" | "cross-node" => assert_eq!(seen, c["from_ip"], "NAT between pods: {c}"),
            // Leaving the pod network: masqueraded to the node's LAN address.
            "remote-node" | "lan-host" => assert_eq!(seen, node_ip(from_node), "{c}"),
            other => panic!("unknown cell kind {other}"),
        }
        assert_eq!(c["ok"], true, "{c}");
    }
}

/// Tags of the masquerade set elements in a node namespace (one per pod).
fn masq_comments(node_ns: &str) -> Vec<String> {
    let ns = Netns {
        name: node_ns.to_string(),
    };
    let tags = common::masq::masq(&ns)
        .tagged()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    // Not ours to delete: the lab owns this namespace.
    std::mem::forget(ns);
    tags
}

#[test]
fn three_node_lab_up_status_down() {
    if !root_or_skip("three_node_lab_up_status_down") {
        return;
    }
    let lab = Lab {
        prefix: unique("lab"),
    };
    let p = lab.prefix.clone();
    // A student types `sudo vnet …` in the walkthroughs: `up` links it into sudo's PATH
    // when nothing is there, `down` takes only its own link away.
    let link = std::path::Path::new("/usr/local/bin/vnet");
    let had_vnet = link.symlink_metadata().is_ok();
    let text = lab.ok(&["up"]);
    if !had_vnet {
        let v = sh(&["/usr/local/bin/vnet", "version"]);
        assert!(v.status.success(), "vnet not reachable after up: {v:?}");
    }
    assert!(text.contains("48 checks, 48 as expected"), "{text}");
    // Up twice does not break; status answers for machines too.
    lab.ok(&["up"]);
    let status: Value = serde_json::from_str(&lab.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["ok"], true);
    check_matrix(status["cells"].as_array().unwrap());
    assert_eq!(lab.namespaces().len(), 11, "{:?}", lab.namespaces());

    // DEL with an empty CNI_NETNS (plugins issue #810) still removes the pod's rule.
    let node1 = format!("{p}-node1");
    let pod1 = format!("{p}-node1-pod1");
    assert_eq!(
        masq_comments(&node1),
        vec![
            format!("vnet v-net {p}-node1-pod1 eth0"),
            format!("vnet v-net {p}-node1-pod2 eth0")
        ]
    );
    let root = format!("/run/vnet-lab/{p}/node1");
    let conf = std::fs::read(format!("{root}/etc/cni/net.d/10-bridge.conf")).unwrap();
    let node = Netns {
        name: node1.clone(),
    };
    let del = Cni::new(Some(&node))
        .bin(format!("{root}/opt/cni/bin/vnet"))
        .env("CNI_COMMAND", "DEL")
        .env("CNI_CONTAINERID", &pod1)
        .env("CNI_NETNS", "")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", REF_DIR)
        .run(&conf);
    // The handle's drop would delete the node namespace: the lab owns it.
    std::mem::forget(node);
    del.ok();
    assert_eq!(
        masq_comments(&node1),
        vec![format!("vnet v-net {p}-node1-pod2 eth0")]
    );

    // The DHCP server and the dhcp daemon of walkthrough 8 run in node1, and go with down.
    let dhcp_pids = dhcp_runs(&lab, &p);

    lab.ok(&["down"]);
    let t0 = std::time::Instant::now();
    while dhcp_pids.iter().any(|&pid| running(pid)) {
        assert!(
            t0.elapsed().as_secs() < 5,
            "down left the DHCP server or daemon running: {dhcp_pids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        link.symlink_metadata().is_ok(),
        had_vnet,
        "down left /usr/local/bin as up found it"
    );
    assert!(lab.namespaces().is_empty(), "{:?}", lab.namespaces());
    assert!(!std::path::Path::new(&format!("/run/vnet-lab/{p}")).exists());
}

/// `lab.sh dhcp` (twice: it is idempotent) starts udhcpd and the dhcp daemon; their pids.
fn dhcp_runs(lab: &Lab, p: &str) -> Vec<u32> {
    if reference_or_skip("lab dhcp", "dhcp").is_none() || !tool_or_skip("lab dhcp", "busybox") {
        return Vec::new();
    }
    lab.ok(&["dhcp"]);
    let text = lab.ok(&["dhcp"]);
    assert!(text.contains("config: /run/vnet-lab/"), "{text}");
    let leases = lab.ok(&["dhcp", "leases"]);
    assert_eq!(leases.trim(), "MAC                IP             EXPIRES");
    let pids: Vec<u32> = ["udhcpd.pid", "dhcp.pid"]
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(format!("/run/vnet-lab/{p}/dhcp/{f}")).unwrap();
            text.trim().parse().unwrap()
        })
        .collect();
    assert!(pids.iter().all(|&pid| running(pid)), "{pids:?}");
    pids
}

/// Whether `pid` runs (a zombie has exited).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}
