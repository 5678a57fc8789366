//! Route sync in a node namespace: `vnet routes sync|diff` and the sync ADD runs, checked
//! with `ip -j route`. Idempotence, stale-route removal, foreign routes left alone.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn table() -> Value {
    json!({"clusterCIDR": "10.244.0.0/16", "nodes": [
        {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"},
        {"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"},
        {"name": "node3", "ip": "192.168.1.13", "podCIDR": "10.244.3.0/24"}
    ]})
}

/// `dst via gw proto P` for every route of the main table except the kernel's own.
fn routes(ns: &Netns) -> Vec<String> {
    let mut v: Vec<String> = ns
        .routes("-4")
        .iter()
        .filter(|r| r["protocol"] != "kernel")
        .map(|r| {
            format!(
                "{} via {} proto {}",
                r["dst"].as_str().unwrap(),
                r["gateway"].as_str().unwrap_or("-"),
                // `ip -j` leaves the protocol out when it is `boot`, the default.
                r["protocol"].as_str().unwrap_or("boot")
            )
        })
        .collect();
    v.sort();
    v
}

fn vnet(ns: &Netns, args: &[&str]) -> (i32, String) {
    let mut cmd = vec![BIN];
    cmd.extend_from_slice(args);
    let out = ns.exec(&cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn routes_sync_is_idempotent_removes_stale_and_leaves_foreign_routes() {
    if !root_or_skip("routes_sync_is_idempotent") {
        return;
    }
    let node = Netns::new("rn");
    lan_side(&node, "192.168.1.11/24");
    let dir = TempDir::new("rt");
    let file = dir.path().join("nodes.json");
    std::fs::write(&file, table().to_string()).unwrap();
    let file = file.to_str().unwrap();
    let n = node.name.as_str();
    // Somebody else's route to node3's subnet, one unrelated, and a stale one of vnet's.
    sh_ok(&[
        "ip",
        "-n",
        n,
        "route",
        "add",
        "10.244.3.0/24",
        "via",
        "192.168.1.99",
    ]);
    sh_ok(&[
        "ip",
        "-n",
        n,
        "route",
        "add",
        "10.99.0.0/16",
        "via",
        "192.168.1.1",
    ]);
    sh_ok(&[
        "ip",
        "-n",
        n,
        "route",
        "add",
        "10.244.9.0/24",
        "via",
        "192.168.1.19",
        "proto",
        "118",
    ]);

    let (code, out) = vnet(&node, &["routes", "diff", file]);
    assert_eq!(code, 1, "diff reports changes: {out}");
    assert!(
        out.contains("node node1"),
        "found itself by its address: {out}"
    );

    // The foreign route sends node3's subnet to the wrong place: left alone, but the node
    // is not called in sync (exit 1), and the way to fix it is named.
    let (code, out) = vnet(&node, &["routes", "sync", file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not made by vnet sends it via 192.168.1.99"),
        "{out}"
    );
    assert!(
        out.contains("--replace-foreign") && out.contains("not in sync"),
        "{out}"
    );
    let after = routes(&node);
    assert_eq!(
        after,
        vec![
            "10.244.2.0/24 via 192.168.1.12 proto 118",
            "10.244.3.0/24 via 192.168.1.99 proto boot",
            "10.99.0.0/16 via 192.168.1.1 proto boot",
        ],
        "{out}"
    );

    // A second run changes nothing, and still says the node is not in sync.
    let (code, out) = vnet(&node, &["routes", "sync", file]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("not in sync") && !out.contains("did:"),
        "{out}"
    );
    assert_eq!(routes(&node), after);
    let (code, out) = vnet(&node, &["routes", "diff", file]);
    assert_eq!(code, 1, "{out}");
    // Asked explicitly, sync replaces the wrong foreign route; then all is in sync.
    let (code, out) = vnet(&node, &["routes", "diff", file, "--replace-foreign"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("would: ip route replace 10.244.3.0/24 via 192.168.1.13"),
        "{out}"
    );
    assert_eq!(routes(&node), after, "diff changes nothing");
    let (code, out) = vnet(&node, &["routes", "sync", file, "--replace-foreign"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        routes(&node),
        vec![
            "10.244.2.0/24 via 192.168.1.12 proto 118",
            "10.244.3.0/24 via 192.168.1.13 proto 118",
            "10.99.0.0/16 via 192.168.1.1 proto boot",
        ],
        "{out}"
    );
    let (code, out) = vnet(&node, &["routes", "diff", file]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("in sync") && !out.contains("not in sync"),
        "{out}"
    );
    // A foreign route that points at the right node is in sync, and left alone.
    sh_ok(&["ip", "-n", n, "route", "del", "10.244.3.0/24"]);
    sh_ok(&[
        "ip",
        "-n",
        n,
        "route",
        "add",
        "10.244.3.0/24",
        "via",
        "192.168.1.13",
    ]);
    let (code, out) = vnet(&node, &["routes", "diff", file]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pointing at the right node"), "{out}");

    // node2 moves to another IP; node3's foreign route goes away, so vnet may take it.
    let mut moved = table();
    moved["nodes"][1]["ip"] = json!("192.168.1.22");
    std::fs::write(dir.path().join("nodes.json"), moved.to_string()).unwrap();
    sh_ok(&["ip", "-n", n, "route", "del", "10.244.3.0/24"]);
    let (code, out) = vnet(&node, &["routes", "sync", file, "--node", "node1"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        routes(&node),
        vec![
            "10.244.2.0/24 via 192.168.1.22 proto 118",
            "10.244.3.0/24 via 192.168.1.13 proto 118",
            "10.99.0.0/16 via 192.168.1.1 proto boot",
        ],
        "{out}"
    );
    let (_, out) = vnet(&node, &["routes", "show"]);
    assert!(
        out.contains("10.244.3.0/24 via 192.168.1.13 proto 118"),
        "{out}"
    );

    // A node that is not in the table says so.
    let (code, out) = vnet(&node, &["routes", "sync", file, "--node", "node9"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("node9"), "{out}");
}

#[test]
fn add_syncs_the_node_routes_and_a_second_add_changes_nothing() {
    if !root_or_skip("add_syncs_the_node_routes") {
        return;
    }
    let mut node = Node::new("10.244.2.0/24");
    lan_side(&node.ns, "192.168.1.12/24");
    node.conf["vnet"] = json!({"nodes": table()["nodes"].clone()});
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let first = Cni::new(Some(&node.ns))
        .pod("ADD", "c1", &a.path(), "eth0")
        .env("VNET_TRACE", "1")
        .run_json(&node.conf)
        .ok();
    assert!(first.stderr.contains("route sync"), "{}", first.stderr);
    let want = vec![
        "10.244.1.0/24 via 192.168.1.11 proto 118",
        "10.244.3.0/24 via 192.168.1.13 proto 118",
    ];
    assert_eq!(routes(&node.ns), want);
    let second = Cni::new(Some(&node.ns))
        .pod("ADD", "c2", &b.path(), "eth0")
        .env("VNET_TRACE", "1")
        .run_json(&node.conf)
        .ok();
    assert!(
        !second.stderr.contains("route sync"),
        "in sync: no route changes planned: {}",
        second.stderr
    );
    assert_eq!(routes(&node.ns), want);

    // A table that does not list this node is a config error, before anything changes.
    node.conf["vnet"]["node"] = json!("node7");
    let c = Netns::new("c");
    node.add("c3", &c).err(7);
    assert_eq!(node.reserved(), vec!["10.244.2.2", "10.244.2.3"]);
}
