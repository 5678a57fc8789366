//! ADD, CHECK, DEL against the kernel: real namespaces, the built binary, `ip -j` after.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

#[test]
fn add_gives_eth0_address_default_route_and_gateway_on_bridge() {
    if !root_or_skip("add_gives_eth0") {
        return;
    }
    let node = Node::new("10.244.1.0/24");
    let pod = Netns::new("p");
    let res = node.add("c1", &pod).ok().json();

    assert_eq!(res["cniVersion"], "1.0.0");
    assert_eq!(res["ips"][0]["address"], "10.244.1.2/24");
    assert_eq!(res["ips"][0]["gateway"], "10.244.1.1");
    assert_eq!(res["ips"][0]["interface"], 2);
    assert!(
        res["ips"][0].get("version").is_none(),
        "1.0.0 has no ips[].version"
    );
    assert_eq!(res["interfaces"][0]["name"], "v-net-0");
    assert!(res["interfaces"][1]["name"]
        .as_str()
        .unwrap()
        .starts_with("veth"));
    assert_eq!(res["interfaces"][2]["name"], "eth0");
    assert_eq!(res["interfaces"][2]["sandbox"], pod.path());
    assert_eq!(
        res["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "10.244.1.1"})
    );

    // The kernel agrees with the result.
    assert_eq!(pod.addrs("eth0"), vec!["10.244.1.2/24"]);
    let eth0 = pod.link("eth0").unwrap();
    assert_eq!(eth0["address"], res["interfaces"][2]["mac"]);
    assert_eq!(eth0["operstate"], "UP");
    let routes = pod.routes("-4");
    assert!(
        routes
            .iter()
            .any(|r| r["dst"] == "default" && r["gateway"] == "10.244.1.1" && r["dev"] == "eth0"),
        "{routes:?}"
    );
    let br = node.ns.link("v-net-0").unwrap();
    assert_eq!(br["linkinfo"]["info_kind"], "bridge");
    assert_eq!(br["address"], res["interfaces"][0]["mac"]);
    assert_eq!(node.ns.addrs("v-net-0"), vec!["10.244.1.1/24"]);
    let veth = res["interfaces"][1]["name"].as_str().unwrap();
    let host = node.ns.link(veth).unwrap();
    assert_eq!(host["master"], "v-net-0");
    // Both ends made with one queue each (not one per CPU cut down to one afterwards).
    for end in [&host, &eth0] {
        assert_eq!(
            (&end["num_tx_queues"], &end["num_rx_queues"]),
            (&json!(1), &json!(1))
        );
    }
    assert!(
        !node.ns.links().contains(&"eth0".to_string()),
        "eth0 never on the node"
    );
    assert_eq!(node.reserved(), vec!["10.244.1.2"]);
    let content = std::fs::read(node.net_dir().join("10.244.1.2")).unwrap();
    assert_eq!(content, b"c1\r\neth0");
    let fwd = node.ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");
    // Set through netlink (IFLA_INET_CONF), read back through /proc/sys.
    let notify = pod.exec(&["cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify"]);
    assert_eq!(String::from_utf8_lossy(&notify.stdout).trim(), "1");
    let other = pod.exec(&["cat", "/proc/sys/net/ipv4/conf/eth0/arp_ignore"]);
    assert_eq!(
        String::from_utf8_lossy(&other.stdout).trim(),
        "0",
        "only arp_notify set"
    );
}

#[test]
fn two_pods_reach_each_other_and_the_gateway() {
    if !root_or_skip("two_pods_reach") {
        return;
    }
    let node = Node::new("10.244.2.0/24");
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    node.add("ca", &a).ok();
    let rb = node.add("cb", &b).ok().json();
    assert_eq!(rb["ips"][0]["address"], "10.244.2.3/24");
    assert!(a.ping("10.244.2.3"), "pod a -> pod b");
    assert!(b.ping("10.244.2.2"), "pod b -> pod a");
    assert!(a.ping("10.244.2.1"), "pod a -> gateway");
    assert_eq!(node.veths().len(), 2);
}

#[test]
fn check_passes_after_add_and_fails_when_the_address_is_gone() {
    if !root_or_skip("check") {
        return;
    }
    let node = Node::new("10.244.3.0/24");
    let pod = Netns::new("p");
    let res = node.add("c1", &pod).ok().json();
    let conf = with_prev(&node.conf, &res);
    let ok = node.call("CHECK", "c1", &pod.path(), "eth0", &conf);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.is_empty(), "CHECK prints nothing on success");

    sh_ok(&[
        "ip",
        "-n",
        &pod.name,
        "addr",
        "del",
        "10.244.3.2/24",
        "dev",
        "eth0",
    ]);
    let e = node
        .call("CHECK", "c1", &pod.path(), "eth0", &conf)
        .err(109);
    assert!(e["msg"].as_str().unwrap().contains("10.244.3.2"), "{e}");
}

#[test]
fn check_needs_prev_result_and_0_4_0() {
    if !root_or_skip("check_needs") {
        return;
    }
    let node = Node::new("10.244.4.0/24");
    let pod = Netns::new("p");
    node.add("c1", &pod).ok();
    node.call("CHECK", "c1", &pod.path(), "eth0", &node.conf)
        .err(7);
    let mut old = node.conf.clone();
    old["cniVersion"] = json!("0.3.1");
    node.call("CHECK", "c1", &pod.path(), "eth0", &old).err(1);
}

#[test]
fn del_removes_eth0_and_the_reservation_and_repeats_fine() {
    if !root_or_skip("del") {
        return;
    }
    let node = Node::new("10.244.5.0/24");
    let pod = Netns::new("p");
    node.add("c1", &pod).ok();
    node.del("c1", &pod.path()).ok();
    assert!(!pod.links().contains(&"eth0".to_string()));
    assert!(node.veths().is_empty(), "host veth went with its peer");
    assert!(node.reserved().is_empty());
    let again = node.del("c1", &pod.path()).ok();
    assert!(again.stdout.is_empty());
    // The bridge and its gateway stay for the next pod.
    assert_eq!(node.ns.addrs("v-net-0"), vec!["10.244.5.1/24"]);
}

#[test]
fn del_succeeds_without_netns_and_still_releases() {
    if !root_or_skip("del_without_netns") {
        return;
    }
    let node = Node::new("10.244.6.0/24");
    let (p1, p2) = (Netns::new("p"), Netns::new("q"));
    node.add("gone", &p1).ok();
    node.add("empty", &p2).ok();
    assert_eq!(node.reserved().len(), 2);

    // The pod's namespace was deleted before DEL (the runtime lost it).
    let path = p1.path();
    drop(p1);
    node.del("gone", &path).ok();
    // A runtime that no longer knows the namespace sends an empty CNI_NETNS.
    node.del("empty", "").ok();
    // A path that never existed.
    node.del("never", "/run/netns/does-not-exist-vnet").ok();
    assert!(node.reserved().is_empty(), "{:?}", node.reserved());
}

#[test]
fn add_with_existing_ifname_fails_and_keeps_the_pod_as_is() {
    if !root_or_skip("add_twice") {
        return;
    }
    let node = Node::new("10.244.7.0/24");
    let pod = Netns::new("p");
    node.add("c1", &pod).ok();
    node.add("c2", &pod).err(104);
    assert_eq!(
        node.reserved(),
        vec!["10.244.7.2"],
        "no address for the failed ADD"
    );
    assert_eq!(node.veths().len(), 1);
}

#[test]
fn dual_stack_add() {
    if !root_or_skip("dual_stack") {
        return;
    }
    let node = Node::new("10.244.8.0/24");
    let mut conf = node.conf.clone();
    conf["ipam"] = json!({"type": "host-local", "dataDir": node.data.path(),
        "ranges": [[{"subnet": "10.244.8.0/24"}], [{"subnet": "fd00:8::/64"}]]});
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let ra = node.call("ADD", "ca", &a.path(), "eth0", &conf).ok().json();
    node.call("ADD", "cb", &b.path(), "eth0", &conf).ok();
    assert_eq!(ra["ips"][0]["address"], "10.244.8.2/24");
    assert_eq!(ra["ips"][1]["address"], "fd00:8::2/64");
    assert_eq!(ra["ips"][1]["gateway"], "fd00:8::1");
    let dsts: Vec<&str> = ra["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dst"].as_str().unwrap())
        .collect();
    assert_eq!(dsts, vec!["0.0.0.0/0", "::/0"]);
    assert_eq!(a.addrs("eth0"), vec!["10.244.8.2/24", "fd00:8::2/64"]);
    let mut br = node.ns.addrs("v-net-0");
    br.sort();
    assert_eq!(br, vec!["10.244.8.1/24", "fd00:8::1/64"]);
    assert!(a
        .routes("-6")
        .iter()
        .any(|r| r["dst"] == "default" && r["gateway"] == "fd00:8::1"));
    assert!(a.ping("fd00:8::3"), "v6 pod to pod");
    assert!(a.ping("fd00:8::1"), "v6 pod to gateway");
    assert!(a.ping("10.244.8.3"), "v4 pod to pod");
    // The bridge ports carry the v6 traffic above without an address of their own: no
    // link-local address and no fe80::/64 route per port for the kernel to walk at every ADD and DEL.
    let no_addr = |l: &serde_json::Value| l["addr_info"].as_array().is_none_or(|a| a.is_empty());
    for veth in node.veths() {
        let addrs = node.ns.ip_json(&["-6", "addr", "show", "dev", &veth]);
        assert!(
            addrs.as_array().unwrap().iter().all(no_addr),
            "{veth} has IPv6 addresses: {addrs}"
        );
        let routes = node
            .ns
            .ip_json(&["-6", "route", "show", "table", "all", "dev", &veth]);
        // What is left is the multicast route every IPv6 link has (ff00::/8).
        assert!(
            routes
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["dst"] == "ff00::/8"),
            "{veth} has IPv6 routes: {routes}"
        );
    }
    let link_local = a.ip_json(&["-6", "addr", "show", "dev", "eth0", "scope", "link"]);
    assert!(
        link_local.as_array().unwrap().iter().any(|l| !no_addr(l)),
        "the pod keeps its link-local address, which neighbour discovery uses: {link_local}"
    );
    let dad = a.exec(&["cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"]);
    assert_eq!(String::from_utf8_lossy(&dad.stdout).trim(), "0");
    node.call("DEL", "ca", &a.path(), "eth0", &conf).ok();
    assert_eq!(node.reserved(), vec!["10.244.8.3", "fd00:8::3"]);
}

#[test]
fn results_in_each_spec_version() {
    if !root_or_skip("versions") {
        return;
    }
    let node = Node::new("10.244.9.0/24");
    for (i, ver) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
        .iter()
        .enumerate()
    {
        let pod = Netns::new("p");
        let mut conf = node.conf.clone();
        conf["cniVersion"] = json!(ver);
        let id = format!("c{i}");
        let r = node
            .call("ADD", &id, &pod.path(), "eth0", &conf)
            .ok()
            .json();
        assert_eq!(r["cniVersion"], *ver);
        let has_version = r["ips"][0].get("version").is_some();
        assert_eq!(has_version, ver.starts_with('0'), "{ver}: {r}");
        if ver.starts_with('0') {
            assert_eq!(r["ips"][0]["version"], "4");
        }
        node.call("DEL", &id, &pod.path(), "eth0", &conf).ok();
    }
}

#[test]
fn explicit_mac_and_mtu() {
    if !root_or_skip("mac_mtu") {
        return;
    }
    let node = Node::new("10.244.10.0/24");
    let mut conf = node.conf.clone();
    conf["mtu"] = json!(1400);
    conf["runtimeConfig"] = json!({"mac": "0a:58:0a:f4:0a:09"});
    let pod = Netns::new("p");
    let r = Cni::new(Some(&node.ns))
        .pod("ADD", "c1", &pod.path(), "eth0")
        .env(
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAME=x;MAC=0a:58:0a:f4:0a:01",
        )
        .run_json(&conf)
        .ok()
        .json();
    assert_eq!(
        r["interfaces"][2]["mac"], "0a:58:0a:f4:0a:09",
        "runtimeConfig wins over CNI_ARGS"
    );
    let eth0 = pod.link("eth0").unwrap();
    assert_eq!(eth0["address"], "0a:58:0a:f4:0a:09");
    assert_eq!(eth0["mtu"], 1400);
    assert_eq!(node.ns.link("v-net-0").unwrap()["mtu"], 1400);
}

#[test]
fn requested_ip_from_cni_args() {
    if !root_or_skip("requested_ip") {
        return;
    }
    let node = Node::new("10.244.11.0/24");
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let r = Cni::new(Some(&node.ns))
        .pod("ADD", "c1", &a.path(), "eth0")
        .env("CNI_ARGS", "IP=10.244.11.77")
        .run_json(&node.conf)
        .ok()
        .json();
    assert_eq!(r["ips"][0]["address"], "10.244.11.77/24");
    let e = Cni::new(Some(&node.ns))
        .pod("ADD", "c2", &b.path(), "eth0")
        .env("CNI_ARGS", "IP=10.244.11.77")
        .run_json(&node.conf)
        .err(101);
    assert!(e["msg"].as_str().unwrap().contains("10.244.11.77"));
    assert!(!b.links().contains(&"eth0".to_string()));
}

#[test]
fn bridge_created_by_hand_is_reused_and_a_non_bridge_is_refused() {
    if !root_or_skip("bridge_reuse") {
        return;
    }
    let node = Node::new("10.244.12.0/24");
    sh_ok(&[
        "ip",
        "-n",
        &node.ns.name,
        "link",
        "add",
        "v-net-0",
        "type",
        "bridge",
    ]);
    let idx = node.ns.link("v-net-0").unwrap()["ifindex"].clone();
    let pod = Netns::new("p");
    node.add("c1", &pod).ok();
    assert_eq!(node.ns.link("v-net-0").unwrap()["ifindex"], idx);

    let other = Node::new("10.244.13.0/24");
    sh_ok(&[
        "ip",
        "-n",
        &other.ns.name,
        "link",
        "add",
        "v-net-0",
        "type",
        "veth",
        "peer",
        "name",
        "x0",
    ]);
    let pod2 = Netns::new("p");
    other.add("c1", &pod2).err(105);
    assert!(other.reserved().is_empty());
    assert!(other.veths().is_empty());
}

/// A pod on two IPv6 networks (podman's `--network a,b`): the kernel joins the two
/// default routes into one multipath route, and CHECK of each network still finds its
/// own gateway among the hops.
#[test]
fn check_finds_each_networks_v6_default_route_in_a_multipath_route() {
    if !root_or_skip("v6_multipath_check") {
        return;
    }
    let node = Node::new("10.244.9.0/24");
    let pod = Netns::new("mp");
    let conf_of = |name: &str, bridge: &str, subnet: &str| {
        let mut c = node.conf.clone();
        c["name"] = json!(name);
        c["bridge"] = json!(bridge);
        c["ipam"] = json!({"type": "host-local", "dataDir": node.data.path(), "subnet": subnet});
        c
    };
    let one = conf_of("net-a", "v-net-a", "fd00:9a::/64");
    let two = conf_of("net-b", "v-net-b", "fd00:9b::/64");
    let r1 = node
        .call("ADD", "c1", &pod.path(), "eth0", &one)
        .ok()
        .json();
    let r2 = node
        .call("ADD", "c1", &pod.path(), "eth1", &two)
        .ok()
        .json();
    // The kernel's view: one default route with a hop through each network's gateway.
    let default: Vec<serde_json::Value> = pod
        .routes("-6")
        .into_iter()
        .filter(|r| r["dst"] == "default")
        .collect();
    assert_eq!(default.len(), 1, "{default:?}");
    let hops = default[0]["nexthops"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hops.len(), 2, "not a multipath route: {default:?}");
    node.call("CHECK", "c1", &pod.path(), "eth0", &with_prev(&one, &r1))
        .ok();
    node.call("CHECK", "c1", &pod.path(), "eth1", &with_prev(&two, &r2))
        .ok();
    node.call("DEL", "c1", &pod.path(), "eth1", &two).ok();
    node.call("DEL", "c1", &pod.path(), "eth0", &one).ok();
    for net in ["net-a", "net-b"] {
        let left: Vec<_> = std::fs::read_dir(node.data.path().join(net))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .parse::<std::net::IpAddr>()
                    .is_ok()
            })
            .collect();
        assert!(left.is_empty(), "{net}: {left:?}");
    }
}

/// GC removes what a pod whose DEL never came leaves besides its reservation: the
/// attachment's lock file (`/run/vnet/locks/<network>/<attachment>`); a valid pod's stays.
#[test]
fn gc_removes_the_lock_files_of_attachments_no_longer_valid() {
    if !root_or_skip("gc_lock_files") {
        return;
    }
    let mut node = Node::new("10.244.10.0/24");
    // A network name of its own: the lock directory is shared by the whole machine.
    node.conf["name"] = json!(unique("gclocks"));
    node.conf["cniVersion"] = json!("1.1.0");
    let net = node.conf["name"].as_str().unwrap().to_string();
    let hex = |parts: &[&str]| format!("{:016x}", vnet::plan::fnv1a(parts));
    let dir = std::path::Path::new("/run/vnet/locks").join(hex(&[&net]));
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    node.add("keep", &a).ok();
    node.add("gone", &b).ok();
    let file = |id: &str| dir.join(hex(&[&net, id, "eth0"]));
    assert!(file("keep").exists() && file("gone").exists());
    let mut gc = node.conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", "/nonexistent")
        .run_json(&gc)
        .ok();
    assert!(
        file("keep").exists(),
        "a valid attachment's lock file stays"
    );
    assert!(!file("gone").exists(), "the stale one goes");
    assert_eq!(node.reserved(), vec!["10.244.10.2"]);
    node.del("keep", &a.path()).ok();
    assert!(!file("keep").exists());
    let _ = std::fs::remove_dir(&dir);
}
