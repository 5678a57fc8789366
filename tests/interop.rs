//! vnet beside the reference plugins (Debian `containernetworking-plugins`): the same
//! store read and written both ways, the same IPAM results, delegation to them.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::symlink;

use common::*;
use serde_json::{json, Value};

fn ipam_conf(version: &str, data: &TempDir, ipam: Value) -> Value {
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(data.path());
    json!({"cniVersion": version, "name": "interop", "type": "bridge", "ipam": ipam})
}

/// A directory with `host-local` -> the vnet binary: vnet as the IPAM plugin alone.
fn vnet_as_host_local() -> TempDir {
    let dir = TempDir::new("bin");
    symlink(BIN, dir.path().join("host-local")).unwrap();
    dir
}

fn ipam_call(bin: &std::path::Path, command: &str, id: &str, conf: &Value) -> Call {
    Cni::new(None)
        .bin(bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", "/run/netns/vnet-ipam-only")
        .env("CNI_NETNS_OVERRIDE", "1")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", REF_DIR)
        .run_json(conf)
}

#[test]
fn ipam_results_match_the_reference_in_every_version() {
    let Some(reference) = reference_or_skip("ipam_results_match", "host-local") else {
        return;
    };
    let ours_dir = vnet_as_host_local();
    let ours = ours_dir.path().join("host-local");
    let resolv = TempDir::new("r");
    let resolv_file = resolv.path().join("resolv.conf");
    std::fs::write(
        &resolv_file,
        "nameserver 10.96.0.10\nsearch svc.cluster.local cluster.local\noptions ndots:5\n",
    )
    .unwrap();
    // Compare in every version both speak (Debian's 1.1.x reference stops at 1.0.0).
    let theirs = Cni::new(None)
        .bin(&reference)
        .env("CNI_COMMAND", "VERSION")
        .run(b"")
        .ok()
        .json();
    let common: Vec<&str> = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .into_iter()
        .filter(|v| {
            theirs["supportedVersions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == v)
        })
        .collect();
    assert!(common.len() >= 4, "reference speaks {theirs}");
    for ver in common {
        let ipam = json!({
            "ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.1"}, {"dst": "::/0"}],
            "resolvConf": resolv_file,
        });
        let (d1, d2) = (TempDir::new("a"), TempDir::new("b"));
        let a = ipam_call(&reference, "ADD", "c1", &ipam_conf(ver, &d1, ipam.clone()))
            .ok()
            .json();
        let b = ipam_call(&ours, "ADD", "c1", &ipam_conf(ver, &d2, ipam))
            .ok()
            .json();
        assert_eq!(a, b, "version {ver}: reference vs vnet");
        let file = |d: &TempDir| std::fs::read(d.path().join("interop/10.1.2.2")).unwrap();
        assert_eq!(file(&d1), file(&d2));
        let last = |d: &TempDir| {
            std::fs::read_to_string(d.path().join("interop/last_reserved_ip.1")).unwrap()
        };
        assert_eq!(last(&d1), last(&d2));
    }
}

#[test]
fn reference_releases_what_vnet_reserved_and_the_other_way_round() {
    if !root_or_skip("interop_store") {
        return;
    }
    let Some(reference) = reference_or_skip("interop_store", "host-local") else {
        return;
    };
    let node = Node::new("10.246.1.0/24");
    let pod = Netns::new("p");
    let ref_conf = ipam_conf("1.0.0", &node.data, json!({"subnet": "10.246.1.0/24"}));
    let mut conf = node.conf.clone();
    conf["name"] = json!("interop");
    let net = node.data.path().join("interop");

    // vnet reserves, the reference sees and releases it.
    node.call("ADD", "v1", &pod.path(), "eth0", &conf).ok();
    assert!(net.join("10.246.1.2").exists());
    ipam_call(&reference, "CHECK", "v1", &ref_conf).ok();
    ipam_call(&reference, "DEL", "v1", &ref_conf).ok();
    assert!(!net.join("10.246.1.2").exists());

    // The reference reserves next in round robin (shared last_reserved_ip) ...
    let r = ipam_call(&reference, "ADD", "r1", &ref_conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.246.1.3/24");
    // ... vnet continues after it, and releases the reference's reservation on DEL.
    let pod2 = Netns::new("q");
    let v = node
        .call("ADD", "v2", &pod2.path(), "eth0", &conf)
        .ok()
        .json();
    assert_eq!(v["ips"][0]["address"], "10.246.1.4/24");
    node.call("DEL", "r1", "", "eth0", &conf).ok();
    assert!(!net.join("10.246.1.3").exists());
    assert!(net.join("10.246.1.4").exists());
}

#[test]
fn add_delegates_to_another_ipam_plugin_and_del_follows() {
    if !root_or_skip("delegation") {
        return;
    }
    let Some(reference) = reference_or_skip("delegation", "host-local") else {
        return;
    };
    let node = Node::new("10.246.2.0/24");
    let bin = TempDir::new("bin");
    symlink(&reference, bin.path().join("ref-ipam")).unwrap();
    let path = bin.path().to_string_lossy().into_owned();
    let mut conf = node.conf.clone();
    conf["ipam"]["type"] = json!("ref-ipam");
    let pod = Netns::new("p");
    let call = |cmd: &str, id: &str, netns: &str, conf: &Value| {
        Cni::new(Some(&node.ns))
            .pod(cmd, id, netns, "eth0")
            .env("CNI_PATH", &path)
            .env("CNI_NETNS_OVERRIDE", "1")
            .run_json(conf)
    };
    let r = call("ADD", "d1", &pod.path(), &conf).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.246.2.2/24");
    assert_eq!(pod.addrs("eth0"), vec!["10.246.2.2/24"]);
    assert_eq!(
        node.reserved(),
        vec!["10.246.2.2"],
        "the delegate wrote the store"
    );
    call("CHECK", "d1", &pod.path(), &with_prev(&conf, &r)).ok();
    call("DEL", "d1", &pod.path(), &conf).ok();
    assert!(node.reserved().is_empty());

    // A failure after the delegate reserved sends it DEL: nothing is left.
    let mut bad = conf.clone();
    bad["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "192.0.2.1"}]);
    call("ADD", "d2", &pod.path(), &bad).err(107);
    assert!(node.reserved().is_empty());
    assert!(node.veths().is_empty());
    // An ipam type that is not on CNI_PATH is a config error that names it.
    let e = Cni::new(Some(&node.ns))
        .pod("ADD", "d3", &pod.path(), "eth0")
        .run_json(&conf)
        .err(7);
    assert!(e["msg"].as_str().unwrap().contains("ref-ipam"));
}

#[test]
fn the_reference_bridge_runs_with_vnet_as_its_ipam() {
    if !root_or_skip("ref_bridge_vnet_ipam") {
        return;
    }
    let Some(bridge) = reference_or_skip("ref_bridge_vnet_ipam", "bridge") else {
        return;
    };
    let node = Node::new("10.246.3.0/24");
    let bin = vnet_as_host_local();
    let path = bin.path().to_string_lossy().into_owned();
    let mut conf = node.conf.clone();
    conf["type"] = json!("bridge");
    let pod = Netns::new("p");
    let r = Cni::new(Some(&node.ns))
        .bin(&bridge)
        .pod("ADD", "b1", &pod.path(), "eth0")
        .env("CNI_PATH", &path)
        .run_json(&conf)
        .ok()
        .json();
    assert_eq!(r["ips"][0]["address"], "10.246.3.2/24");
    assert_eq!(node.reserved(), vec!["10.246.3.2"]);
    Cni::new(Some(&node.ns))
        .bin(&bridge)
        .pod("DEL", "b1", &pod.path(), "eth0")
        .env("CNI_PATH", &path)
        .run_json(&conf)
        .ok();
    assert!(node.reserved().is_empty());
}

#[test]
fn version_command() {
    let out = Cni::new(None)
        .env("CNI_COMMAND", "VERSION")
        .run(br#"{"cniVersion":"0.4.0"}"#)
        .ok()
        .json();
    assert_eq!(out["cniVersion"], "0.4.0");
    assert_eq!(
        out["supportedVersions"],
        json!(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
    );
    let out = Cni::new(None)
        .env("CNI_COMMAND", "VERSION")
        .run(b"")
        .ok()
        .json();
    assert_eq!(out["cniVersion"], "1.1.0");
}
