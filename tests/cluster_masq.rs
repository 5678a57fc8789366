//! `ipMasq`: one rule per network and family in vnet's nftables table, and a set of the
//! network's pod addresses, each element tagged with its attachment. ADD adds an element,
//! DEL removes it even with an empty `CNI_NETNS`, a failed ADD takes it back, GC removes
//! the elements of attachments no longer valid, CHECK finds it, and the per-pod rules of
//! older vnet are still removed by DEL and GC. No `nft` program is needed.

#![allow(clippy::unwrap_used)]

mod common;

use common::masq::masq;
use common::*;
use serde_json::json;

fn masq_node(subnet: &str) -> Node {
    let mut node = Node::new(subnet);
    node.conf["ipMasq"] = json!(true);
    node
}

fn pair(a: &str, c: &str) -> (String, String) {
    (a.to_string(), c.to_string())
}

/// `nft -f -` in the node namespace.
fn nft(node: &Netns, script: &str) {
    use std::io::Write;
    let mut p = std::process::Command::new("ip")
        .args(["netns", "exec", &node.name, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(p.wait().unwrap().success(), "nft -f: {script}");
}

#[test]
fn add_tags_an_element_and_del_without_netns_removes_it() {
    if !root_or_skip("add_tags_an_element") {
        return;
    }
    let root = rootns::RootNs::snapshot();
    let node = masq_node("10.244.1.0/24");
    let (a, b) = (Netns::new("p"), Netns::new("q"));
    let r = node.add("c1", &a).ok().json();
    node.add("c2", &b).ok();
    let m = masq(&node.ns);
    assert_eq!(
        m.tagged(),
        vec![
            pair("10.244.1.2", "vnet testnet c1 eth0"),
            pair("10.244.1.3", "vnet testnet c2 eth0")
        ]
    );
    assert_eq!(
        m.rule_names(),
        vec!["vnet testnet"],
        "one rule for the network"
    );
    assert!(
        m.text.contains("ip saddr @pods4_testnet_")
            && m.text
                .contains("ip daddr != 10.244.1.0/24 ip daddr != 224.0.0.0/4 masquerade"),
        "{}",
        m.text
    );
    // CHECK finds the element.
    let check = with_prev(&node.conf, &r);
    node.call("CHECK", "c1", &a.path(), "eth0", &check).ok();
    // The runtime lost the namespace path (plugins issue #810): DEL still cleans up.
    node.del("c1", "").ok();
    assert_eq!(
        masq(&node.ns).tagged(),
        vec![pair("10.244.1.3", "vnet testnet c2 eth0")]
    );
    // Now CHECK of c1 would miss it.
    let e = node.call("CHECK", "c1", &a.path(), "eth0", &check);
    assert_ne!(e.code, 0);
    node.del("c1", "").ok();
    node.del("c2", &b.path()).ok();
    let m = masq(&node.ns);
    assert!(m.elems.is_empty(), "{m:?}");
    assert_eq!(
        m.rule_names(),
        vec!["vnet testnet"],
        "the network's rule stays"
    );
    assert!(node.reserved().is_empty());
    drop(node);
    root.assert_unchanged();
}

#[test]
fn a_failed_add_takes_its_element_back() {
    if !root_or_skip("a_failed_add_takes_its_element_back") {
        return;
    }
    let node = masq_node("10.244.1.0/24");
    // The bridge already holds another subnet's gateway: ADD fails after the element.
    node.ns.add_bridge("v-net-0", "10.9.9.1/24");
    let pod = Netns::new("p");
    let add = Cni::new(Some(&node.ns))
        .pod("ADD", "c1", &pod.path(), "eth0")
        .env("VNET_TRACE", "1")
        .run_json(&node.conf);
    let stderr = add.stderr.clone();
    add.err(106);
    assert!(
        stderr.contains("10.244.1.2 comment \"vnet testnet c1 eth0\""),
        "the element was planned: {stderr}"
    );
    assert!(masq(&node.ns).elems.is_empty(), "rolled back");
    assert!(node.veths().is_empty());
    assert!(node.reserved().is_empty());
}

#[test]
fn gc_removes_the_elements_of_attachments_no_longer_valid() {
    if !root_or_skip("gc_removes_the_elements") {
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
    let m = masq(&node.ns);
    assert!(
        m.text
            .contains("ip daddr != 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade"),
        "{}",
        m.text
    );
    // Another network's set, element and rule in the same table are not GC's business.
    nft(
        &node.ns,
        "add set inet vnet pods4_othernet { type ipv4_addr; }\n\
         add element inet vnet pods4_othernet { 10.77.0.2 comment \"vnet othernet cz eth0\" }\n\
         add rule inet vnet postrouting ip saddr 10.77.0.3 masquerade comment \"vnet othernet cy eth0\"\n\
         add rule inet vnet postrouting ip saddr 192.0.2.7 masquerade\n",
    );
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "ca", "ifname": "eth0"}]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR)
        .run_json(&gc)
        .ok();
    let m = masq(&node.ns);
    assert_eq!(
        m.tagged(),
        vec![
            pair("10.244.3.2", "vnet testnet ca eth0"),
            pair("10.77.0.2", "vnet othernet cz eth0"),
        ]
    );
    // A rule without a comment is nobody's tag: GC leaves it.
    assert_eq!(
        m.rule_names(),
        vec!["", "vnet othernet cy eth0", "vnet testnet"]
    );
    assert_eq!(node.reserved(), vec!["10.244.3.2"]);
}

/// A node upgraded with pods running: the per-pod rules older vnet wrote (tag as the
/// rule's comment) are removed by DEL and GC, and new pods join the set beside them.
#[test]
fn per_pod_rules_of_older_vnet_are_removed_by_del_and_gc() {
    if !root_or_skip("upgrade_path") {
        return;
    }
    let mut node = masq_node("10.244.5.0/24");
    node.conf["cniVersion"] = json!("1.1.0");
    // What vnet wrote before: a table, the chain and one rule per pod, with reservations.
    nft(
        &node.ns,
        "add table inet vnet\n\
         add chain inet vnet postrouting { type nat hook postrouting priority srcnat; policy accept; }\n\
         add rule inet vnet postrouting ip saddr 10.244.5.2 ip daddr != { 10.244.5.0/24, 224.0.0.0/4 } masquerade comment \"vnet testnet old1 eth0\"\n\
         add rule inet vnet postrouting ip saddr 10.244.5.3 ip daddr != { 10.244.5.0/24, 224.0.0.0/4 } masquerade comment \"vnet testnet old2 eth0\"\n",
    );
    let dir = node.net_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("10.244.5.2"), "old1\r\neth0").unwrap();
    std::fs::write(dir.join("10.244.5.3"), "old2\r\neth0").unwrap();
    let pod = Netns::new("p");
    let r = node.add("new1", &pod).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.244.5.4/24");
    let m = masq(&node.ns);
    assert_eq!(
        m.rule_names(),
        vec![
            "vnet testnet",
            "vnet testnet old1 eth0",
            "vnet testnet old2 eth0"
        ]
    );
    assert_eq!(
        m.tagged(),
        vec![pair("10.244.5.4", "vnet testnet new1 eth0")]
    );
    // DEL of an old pod removes its rule (its namespace is long gone).
    node.del("old1", "").ok();
    assert_eq!(
        masq(&node.ns).rule_names(),
        vec!["vnet testnet", "vnet testnet old2 eth0"]
    );
    // GC with only the new pod valid removes the other old rule, keeps the new layout.
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "new1", "ifname": "eth0"}]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR)
        .run_json(&gc)
        .ok();
    let m = masq(&node.ns);
    assert_eq!(m.rule_names(), vec!["vnet testnet"]);
    assert_eq!(
        m.tagged(),
        vec![pair("10.244.5.4", "vnet testnet new1 eth0")]
    );
    assert_eq!(node.reserved(), vec!["10.244.5.4"]);
}

/// Two networks on one node: each its own sets and rule; DEL of one never touches the
/// other's elements, even for the same container ID.
#[test]
fn two_networks_keep_their_own_sets() {
    if !root_or_skip("two_networks") {
        return;
    }
    let node = masq_node("10.244.6.0/24");
    let mut other = node.conf.clone();
    other["name"] = json!("othernet");
    other["bridge"] = json!("v-net-1");
    other["ipam"]["subnet"] = json!("10.246.6.0/24");
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    node.add("same", &a).ok();
    node.call("ADD", "same", &b.path(), "eth0", &other).ok();
    let m = masq(&node.ns);
    assert_eq!(m.rule_names(), vec!["vnet othernet", "vnet testnet"]);
    assert_eq!(
        m.tagged(),
        vec![
            pair("10.244.6.2", "vnet testnet same eth0"),
            pair("10.246.6.2", "vnet othernet same eth0")
        ]
    );
    let sets: std::collections::BTreeSet<&str> =
        m.elems.iter().map(|(s, _, _)| s.as_str()).collect();
    assert_eq!(sets.len(), 2, "{sets:?}");
    node.del("same", "").ok();
    assert_eq!(
        masq(&node.ns).tagged(),
        vec![pair("10.246.6.2", "vnet othernet same eth0")]
    );
    node.call("DEL", "same", &b.path(), "eth0", &other).ok();
    assert!(masq(&node.ns).elems.is_empty());
}

#[test]
fn status_and_backends_need_no_nft_program() {
    if !root_or_skip("status_and_backends") {
        return;
    }
    let mut node = masq_node("10.244.1.0/24");
    // DEL and GC before vnet ever made its table: nothing to do, success.
    node.del("c9", "").ok();
    assert_eq!(masq(&node.ns), common::masq::Masq::default());
    node.conf["cniVersion"] = json!("1.1.0");
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    // No nft on PATH (nor anywhere vnet would look for it before): still ready, ADD works.
    let no_nft = |vars: &[(&str, &str)], conf: &serde_json::Value| {
        let mut args = vec!["-i".to_string(), "PATH=/nonexistent".to_string()];
        args.extend(vars.iter().map(|(k, v)| format!("{k}={v}")));
        args.push(BIN.to_string());
        // `env -i` starts from nothing; the variables ride on its command line.
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["netns", "exec", &node.ns.name, "/usr/bin/env"])
            .args(&args);
        let out = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write;
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(conf.to_string().as_bytes())?;
                ch.wait_with_output()
            })
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    no_nft(&[("CNI_COMMAND", "GC"), ("CNI_PATH", REF_DIR)], &gc);
    no_nft(&[("CNI_COMMAND", "STATUS")], &node.conf);
    let pod = Netns::new("p");
    let p = pod.path();
    let add = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", p.as_str()),
        ("CNI_IFNAME", "eth0"),
    ];
    no_nft(&add, &node.conf);
    assert_eq!(
        masq(&node.ns).tagged(),
        vec![pair("10.244.1.2", "vnet testnet c1 eth0")]
    );
    node.del("c1", &pod.path()).ok();
    node.conf["ipMasqBackend"] = json!("iptables");
    let e = node.add("c2", &pod).err(2);
    assert!(e["msg"].as_str().unwrap().contains("iptables"), "{e}");
    assert!(masq(&node.ns).elems.is_empty());
}

/// The rules reading the network's IPv4 set, as `nft list` prints them.
fn set_rules(m: &common::masq::Masq, set_prefix: &str) -> Vec<String> {
    m.text
        .lines()
        .filter(|l| l.contains(&format!("@{set_prefix}")))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The network's rule follows the config: a node that joins the node table after the
/// network's first pod is left alone by the next ADD's rule (which replaces the old one),
/// a flushed chain gets its rule back from the next ADD, and CHECK says when the rule is
/// missing. Many ADDs repairing at once leave exactly one rule.
#[test]
fn the_network_rule_follows_the_node_table_and_comes_back_after_a_flush() {
    if !root_or_skip("masq_rule_repair") {
        return;
    }
    let mut node = masq_node("10.244.2.0/24");
    lan_side(&node.ns, "192.168.1.12/24");
    let nodes = |extra: bool| {
        let mut v = vec![
            json!({"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"}),
            json!({"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"}),
        ];
        if extra {
            v.push(json!({"name": "node4", "ip": "192.168.1.14", "podCIDR": "10.250.4.0/24"}));
        }
        json!({ "nodes": v })
    };
    node.conf["vnet"] = nodes(false);
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let ra = node.add("ca", &a).ok().json();
    let first = masq(&node.ns);
    let rules = set_rules(&first, "pods4_");
    assert_eq!(rules.len(), 1, "{}", first.text);
    assert!(!rules[0].contains("10.250.4.0/24"), "{}", rules[0]);

    // node4 joins: the next ADD's rule leaves its pods alone too, and replaces the old.
    node.conf["vnet"] = nodes(true);
    node.add("cb", &b).ok();
    let joined = masq(&node.ns);
    let rules = set_rules(&joined, "pods4_");
    assert_eq!(rules.len(), 1, "{}", joined.text);
    assert!(
        rules[0].contains("ip daddr != 10.250.4.0/24"),
        "{}",
        rules[0]
    );
    assert_ne!(first.rules, joined.rules);
    let check_a = || {
        node.call(
            "CHECK",
            "ca",
            &a.path(),
            "eth0",
            &with_prev(&node.conf, &ra),
        )
    };
    check_a().ok();

    // Someone flushes vnet's chain: CHECK says so, the next ADD puts the rule back.
    sh_ok(&[
        "ip",
        "netns",
        "exec",
        &node.ns.name,
        "nft",
        "flush",
        "chain",
        "inet",
        "vnet",
        "postrouting",
    ]);
    let err = check_a().err(109);
    assert!(
        err["msg"].as_str().unwrap().contains("masquerade rule"),
        "{err}"
    );
    let c = Netns::new("c");
    node.add("cc", &c).ok();
    assert_eq!(masq(&node.ns).rules, joined.rules);
    check_a().ok();

    // Flushed again, then eight ADDs at once: one rule, whoever got there first.
    sh_ok(&[
        "ip",
        "netns",
        "exec",
        &node.ns.name,
        "nft",
        "flush",
        "chain",
        "inet",
        "vnet",
        "postrouting",
    ]);
    let pods: Vec<Netns> = (0..8).map(|i| Netns::new(&format!("p{i}"))).collect();
    std::thread::scope(|s| {
        for (i, p) in pods.iter().enumerate() {
            let node = &node;
            s.spawn(move || node.add(&format!("par{i}"), p).ok());
        }
    });
    let after = masq(&node.ns);
    assert_eq!(after.rules, joined.rules, "{}", after.text);
    assert_eq!(after.elems.len(), 11, "{:?}", after.elems);
}

/// A node written by the first set-based vnet: its network rule's comment has no
/// fingerprint. The next ADD puts this vnet's rule in its place (one rule reads the set),
/// GC leaves it be, and the existing element stays.
#[test]
fn the_previous_set_layouts_rule_is_replaced_by_the_next_add() {
    if !root_or_skip("set_layout_upgrade") {
        return;
    }
    let mut node = masq_node("10.244.7.0/24");
    node.conf["cniVersion"] = json!("1.1.0");
    let a = Netns::new("a");
    node.add("ca", &a).ok();
    let set = masq(&node.ns).elems[0].0.clone();
    // Put the earlier layout's rule in place of this vnet's.
    sh_ok(&[
        "ip",
        "netns",
        "exec",
        &node.ns.name,
        "nft",
        "flush",
        "chain",
        "inet",
        "vnet",
        "postrouting",
    ]);
    nft(
        &node.ns,
        &format!("add rule inet vnet postrouting ip saddr @{set} ip daddr != 10.244.7.0/24 ip daddr != 224.0.0.0/4 masquerade comment \"vnet testnet\"\n"),
    );
    assert_eq!(masq(&node.ns).rules, vec!["vnet testnet"]);
    let b = Netns::new("b");
    node.add("cb", &b).ok();
    let m = masq(&node.ns);
    assert_eq!(m.rules.len(), 1, "{}", m.text);
    assert!(m.rules[0].starts_with("vnet testnet v4:"), "{:?}", m.rules);
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([
        {"containerID": "ca", "ifname": "eth0"}, {"containerID": "cb", "ifname": "eth0"}
    ]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR)
        .run_json(&gc)
        .ok();
    let after = masq(&node.ns);
    assert_eq!(after.rules, m.rules);
    assert_eq!(
        after.tagged(),
        vec![
            pair("10.244.7.2", "vnet testnet ca eth0"),
            pair("10.244.7.3", "vnet testnet cb eth0")
        ]
    );
}

/// A DEL whose masquerade element cannot be removed fails and keeps the reservation: the
/// address must not go to a new pod while a stale element still names the old one. The
/// element goes first, so the pod keeps its interface too. The retry, once the set can be
/// changed again, finishes the job. Same for GC.
#[test]
fn del_and_gc_keep_the_address_while_its_element_cannot_be_removed() {
    if !root_or_skip("masq_del_keeps_address") {
        return;
    }
    let mut node = masq_node("10.244.11.0/24");
    node.conf["cniVersion"] = json!("1.1.0");
    let a = Netns::new("a");
    node.add("ca", &a).ok();
    let m = masq(&node.ns);
    let set = m.elems[0].0.clone();
    // The set made constant and bound to a rule: the kernel refuses to change it.
    let freeze = format!(
        "flush chain inet vnet postrouting\n\
         delete set inet vnet {set}\n\
         add set inet vnet {set} {{ type ipv4_addr; flags constant; elements = {{ 10.244.11.2 comment \"vnet testnet ca eth0\" }}; }}\n\
         add rule inet vnet postrouting ip saddr @{set} masquerade\n"
    );
    let thaw = format!("flush chain inet vnet postrouting\ndelete set inet vnet {set}\n");
    nft(&node.ns, &freeze);
    let del = node.del("ca", &a.path());
    assert_ne!(del.code, 0, "DEL must fail: {}", del.stdout);
    assert!(
        del.json()["msg"].as_str().unwrap().contains("masquerade"),
        "{}",
        del.stdout
    );
    assert_eq!(
        node.reserved(),
        vec!["10.244.11.2"],
        "the address stays held"
    );
    assert!(a.link("eth0").is_some(), "the pod keeps its interface");
    assert_eq!(node.veths().len(), 1, "and the node its end");
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([]);
    let gc_call = || {
        Cni::new(Some(&node.ns))
            .env("CNI_COMMAND", "GC")
            .env("CNI_PATH", REF_DIR)
            .run_json(&gc)
    };
    let out = gc_call();
    assert_ne!(out.code, 0, "GC must fail too: {}", out.stdout);
    assert_eq!(node.reserved(), vec!["10.244.11.2"]);
    nft(&node.ns, &thaw);
    node.del("ca", &a.path()).ok();
    assert!(node.reserved().is_empty());
    assert!(a.link("eth0").is_none() && node.veths().is_empty());
    gc_call().ok();
}
