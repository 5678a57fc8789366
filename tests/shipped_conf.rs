//! The conflists shipped for runtimes (`conf/containerd`, `conf/podman`) work as written:
//! libcni's VERSION probe, then ADD, CHECK and DEL of their vnet entry the way the
//! runtime derives it (the list's `name` and `cniVersion` injected), in a node namespace.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

fn vnet_entry(path: &str, data: &std::path::Path) -> Value {
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut conf = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "vnet")
        .unwrap()
        .clone();
    conf["name"] = list["name"].clone();
    conf["cniVersion"] = list["cniVersion"].clone();
    // The runtime does not pass capabilities; the store goes to the test's directory.
    conf.as_object_mut().unwrap().remove("capabilities");
    conf["ipam"]["dataDir"] = json!(data);
    conf
}

#[test]
fn shipped_conflists_probe_add_check_del() {
    if !root_or_skip("shipped_conflists") {
        return;
    }
    for path in [
        "conf/containerd/10-vnet.conflist",
        "conf/podman/vnet.conflist",
    ] {
        let mut node = Node::new("10.99.0.0/24");
        let conf = vnet_entry(path, node.data.path());
        // So that `reserved()` reads this network's directory.
        node.conf["name"] = conf["name"].clone();
        // libcni's probe.
        let v = Cni::new(None)
            .env("CNI_COMMAND", "VERSION")
            .env("CNI_CONTAINERID", "dummy")
            .env("CNI_NETNS", "dummy")
            .env("CNI_IFNAME", "dummy")
            .env("CNI_PATH", "dummy")
            .run_json(&json!({"cniVersion": conf["cniVersion"]}))
            .ok()
            .json();
        assert_eq!(v["cniVersion"], conf["cniVersion"], "{path}");
        let pod = Netns::new("p");
        let r = node
            .call("ADD", "ship1", &pod.path(), "eth0", &conf)
            .ok()
            .json();
        let subnet: ipnet::IpNet = {
            let ipam = &conf["ipam"];
            let s = ipam["subnet"]
                .as_str()
                .or(ipam["ranges"][0][0]["subnet"].as_str())
                .unwrap();
            s.parse().unwrap()
        };
        let addr: ipnet::IpNet = r["ips"][0]["address"].as_str().unwrap().parse().unwrap();
        assert!(subnet.contains(&addr.addr()), "{path}: {r}");
        assert_eq!(node.reserved(), vec![addr.addr().to_string()], "{path}");
        assert!(
            pod.ping(&subnet.hosts().next().unwrap().to_string()),
            "{path}"
        );
        node.call("CHECK", "ship1", &pod.path(), "eth0", &with_prev(&conf, &r))
            .ok();
        node.call("DEL", "ship1", &pod.path(), "eth0", &with_prev(&conf, &r))
            .ok();
        assert!(
            node.veths().is_empty() && node.reserved().is_empty(),
            "{path}"
        );
    }
}
