//! `ipMasq`: tagged nftables rules in the node namespace, added by ADD, removed by DEL
//! even with an empty `CNI_NETNS`, rolled back by a failed ADD, collected by GC.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

/// `(comment, source address)` of every rule in vnet's chain of the node namespace.
fn rules(node: &Netns) -> Vec<(String, String)> {
    let out = node.exec(&["nft", "-j", "list", "table", "inet", "vnet"]);
    if !out.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<(String, String)> = v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("rule"))
        .map(|r| {
            let src = r["expr"][0]["match"]["right"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (r["comment"].as_str().unwrap_or("").to_string(), src)
        })
        .collect();
    found.sort();
    found
}

fn masq_node(subnet: &str) -> Node {
    let mut node = Node::new(subnet);
    node.conf["ipMasq"] = json!(true);
    node
}

#[test]
fn add_tags_a_rule_and_del_without_netns_removes_it() {
    if !root_or_skip("add_tags_a_rule_and_del_without_netns") {
        return;
    }
    let node = masq_node("10.244.1.0/24");
    let pod = Netns::new("p");
    node.add("c1", &pod).ok();
    assert_eq!(
        rules(&node.ns),
        vec![("vnet testnet c1 eth0".to_string(), "10.244.1.2".to_string())]
    );
    let listing =
        String::from_utf8_lossy(&node.ns.exec(&["nft", "list", "ruleset"]).stdout).into_owned();
    assert!(
        listing
            .contains("ip saddr 10.244.1.2 ip daddr != { 10.244.1.0/24, 224.0.0.0/4 } masquerade"),
        "{listing}"
    );
    // The runtime lost the namespace path (plugins issue #810): DEL still cleans up.
    node.del("c1", "").ok();
    assert_eq!(rules(&node.ns), vec![]);
    assert!(node.reserved().is_empty());
    // Repeated DEL is fine.
    node.del("c1", "").ok();
}

#[test]
fn a_failed_add_takes_its_rule_back() {
    if !root_or_skip("a_failed_add_takes_its_rule_back") {
        return;
    }
    let node = masq_node("10.244.1.0/24");
    let n = node.ns.name.as_str();
    // The bridge already holds another subnet's gateway: ADD fails after the rule.
    sh_ok(&["ip", "-n", n, "link", "add", "v-net-0", "type", "bridge"]);
    sh_ok(&[
        "ip",
        "-n",
        n,
        "addr",
        "add",
        "10.9.9.1/24",
        "dev",
        "v-net-0",
    ]);
    let pod = Netns::new("p");
    let add = Cni::new(Some(&node.ns))
        .pod("ADD", "c1", &pod.path(), "eth0")
        .env("VNET_TRACE", "1")
        .run_json(&node.conf);
    let stderr = add.stderr.clone();
    add.err(106);
    assert!(
        stderr.contains("masquerade comment '\"vnet testnet c1 eth0\"'"),
        "the rule was planned: {stderr}"
    );
    assert_eq!(rules(&node.ns), vec![], "rolled back");
    assert!(node.veths().is_empty());
    assert!(node.reserved().is_empty());
}

#[test]
fn gc_removes_the_rules_of_attachments_no_longer_valid() {
    if !root_or_skip("gc_removes_the_rules") {
        return;
    }
    let mut node = masq_node("10.244.3.0/24");
    node.conf["cniVersion"] = json!("1.1.0");
    node.conf["vnet"] = json!({
        "node": "node3",
        "clusterCIDR": "10.244.0.0/16",
        "nodes": [
            {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"},
            {"name": "node3", "ip": "192.168.1.13", "podCIDR": "10.244.3.0/24"}
        ]
    });
    let n = node.ns.name.as_str();
    sh_ok(&[
        "ip", "-n", n, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
    ]);
    sh_ok(&[
        "ip",
        "-n",
        n,
        "addr",
        "add",
        "192.168.1.13/24",
        "dev",
        "lan0",
    ]);
    sh_ok(&["ip", "-n", n, "link", "set", "lan0", "up"]);
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    node.add("ca", &a).ok();
    node.add("cb", &b).ok();
    // The cluster range, not just the pod's subnet, is excluded: no NAT between nodes.
    let listing =
        String::from_utf8_lossy(&node.ns.exec(&["nft", "list", "ruleset"]).stdout).into_owned();
    assert!(
        listing.contains("ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade"),
        "{listing}"
    );
    // Another network's rule in the same table is not GC's business.
    let other = json!({"nftables": [{"add": {"rule": {"family": "inet", "table": "vnet",
        "chain": "postrouting", "comment": "vnet othernet cz eth0",
        "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                  "right": "10.77.0.2"}}, {"masquerade": null}]}}}]});
    let mut add_other = std::process::Command::new("ip")
        .args(["netns", "exec", n, "nft", "-j", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    add_other
        .stdin
        .take()
        .unwrap()
        .write_all(other.to_string().as_bytes())
        .unwrap();
    assert!(add_other.wait().unwrap().success());

    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ca", "ifname": "eth0"}]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR)
        .run_json(&gc)
        .ok();
    assert_eq!(
        rules(&node.ns),
        vec![
            ("vnet othernet cz eth0".to_string(), "10.77.0.2".to_string()),
            ("vnet testnet ca eth0".to_string(), "10.244.3.2".to_string()),
        ]
    );
    assert_eq!(node.reserved(), vec!["10.244.3.2"]);
}

#[test]
fn status_and_backends() {
    if !root_or_skip("status_and_backends") {
        return;
    }
    let mut node = masq_node("10.244.1.0/24");
    // DEL and GC before vnet ever made its table: nothing to do, success.
    node.del("c9", "").ok();
    assert_eq!(rules(&node.ns), vec![]);
    node.conf["cniVersion"] = json!("1.1.0");
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR)
        .run_json(&gc)
        .ok();
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "STATUS")
        .env("CNI_PATH", REF_DIR)
        .run_json(&node.conf)
        .ok();
    node.conf["ipMasqBackend"] = json!("iptables");
    let pod = Netns::new("p");
    let e = node.add("c1", &pod).err(2);
    assert!(e["msg"].as_str().unwrap().contains("iptables"), "{e}");
    assert_eq!(rules(&node.ns), vec![]);
}
