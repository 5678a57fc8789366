//! Bad input gets the right CNI code and changes nothing; failures roll back; limits hold.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;

/// Nothing on the node, nothing in the pod, nothing in the store.
fn assert_untouched(node: &Node, pod: &Netns) {
    assert_eq!(
        node.veths(),
        Vec::<String>::new(),
        "no veth left on the node"
    );
    assert!(
        !pod.links().contains(&"eth0".to_string()),
        "no eth0 in the pod"
    );
    assert_eq!(node.reserved(), Vec::<String>::new(), "no reservation left");
}

#[test]
fn bad_input_gets_its_code_and_changes_nothing() {
    if !root_or_skip("bad_input") {
        return;
    }
    let node = Node::new("10.245.1.0/24");
    let pod = Netns::new("p");
    let run = |conf: &[u8], env: &[(&str, &str)]| {
        let mut c = Cni::new(Some(&node.ns)).pod("ADD", "c1", &pod.path(), "eth0");
        for (k, v) in env {
            c = c.env(k, v);
        }
        c.run(conf)
    };
    let good = node.conf.to_string();

    run(b"{not json", &[]).err(6);
    run(&[0xff, 0xfe, 0x00], &[]).err(6);
    let mut old = node.conf.clone();
    old["cniVersion"] = json!("0.2.0");
    run(old.to_string().as_bytes(), &[]).err(1);
    let mut masq = node.conf.clone();
    masq["ipMasqBackend"] = json!("iptables");
    let e = run(masq.to_string().as_bytes(), &[]).err(2);
    assert!(e["msg"].as_str().unwrap().contains("ipMasqBackend"));
    let mut bad_mtu = node.conf.clone();
    bad_mtu["mtu"] = json!("big");
    run(bad_mtu.to_string().as_bytes(), &[]).err(7);
    let mut unknown = node.conf.clone();
    unknown["ipam"]["type"] = json!("no-such-ipam");
    let e = run(unknown.to_string().as_bytes(), &[]).err(7);
    assert!(e["msg"].as_str().unwrap().contains("no-such-ipam"), "{e}");
    run(good.as_bytes(), &[("CNI_CONTAINERID", "../../etc")]).err(4);
    run(good.as_bytes(), &[("CNI_IFNAME", "this-name-is-too-long")]).err(4);
    run(good.as_bytes(), &[("CNI_ARGS", "FOO=bar")]).err(4);
    run(good.as_bytes(), &[("CNI_NETNS", "")]).err(4);
    let big = vec![b' '; (1 << 20) + 10];
    run(&big, &[]).err(7);
    let mut bad_subnet = node.conf.clone();
    bad_subnet["ipam"]["subnet"] = json!("10.245.1.0/31");
    run(bad_subnet.to_string().as_bytes(), &[]).err(7);
    assert_untouched(&node, &pod);
    assert!(node.ns.link("v-net-0").is_none(), "no bridge either");
}

#[test]
fn missing_env_is_named() {
    if !root_or_skip("missing_env") {
        return;
    }
    let node = Node::new("10.245.2.0/24");
    let e = Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "ADD")
        .env("CNI_IFNAME", "eth0")
        .run_json(&node.conf)
        .err(4);
    let msg = e["msg"].as_str().unwrap();
    assert!(
        msg.contains("CNI_CONTAINERID") && msg.contains("CNI_NETNS"),
        "{msg}"
    );
    Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "BOGUS")
        .run_json(&node.conf)
        .err(4);
    assert!(node.ns.link("v-net-0").is_none());
}

#[test]
fn the_node_namespace_is_not_a_pod() {
    if !root_or_skip("own_netns") {
        return;
    }
    let node = Node::new("10.245.9.0/24");
    let e = node
        .call("ADD", "c1", &node.ns.path(), "eth0", &node.conf)
        .err(4);
    assert!(
        e["msg"].as_str().unwrap().contains("own network namespace"),
        "{e}"
    );
    assert!(node.reserved().is_empty());
    assert!(node.ns.link("eth0").is_none());
}

#[test]
fn missing_pod_netns_is_code_103() {
    if !root_or_skip("missing_netns") {
        return;
    }
    let node = Node::new("10.245.3.0/24");
    node.call(
        "ADD",
        "c1",
        "/run/netns/vnet-no-such-ns",
        "eth0",
        &node.conf,
    )
    .err(103);
    assert!(node.reserved().is_empty());
}

#[test]
fn a_failing_step_after_the_veth_rolls_everything_back() {
    if !root_or_skip("rollback") {
        return;
    }
    let node = Node::new("10.245.4.0/24");
    let pod = Netns::new("p");
    // The kernel refuses a route via a gateway that is not on any link of the pod:
    // that step runs after the veth exists and the address is reserved.
    let mut conf = node.conf.clone();
    conf["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "192.0.2.1"}]);
    let e = node.call("ADD", "c1", &pod.path(), "eth0", &conf).err(107);
    assert!(e["msg"].as_str().unwrap().contains("10.99.0.0/16"), "{e}");
    assert_untouched(&node, &pod);
    // The next pod gets on fine.
    node.add("c2", &pod).ok();
}

#[test]
fn bridge_address_conflict_rolls_back_and_force_address_fixes_it() {
    if !root_or_skip("bridge_conflict") {
        return;
    }
    let node = Node::new("10.245.5.0/24");
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
    sh_ok(&[
        "ip",
        "-n",
        &node.ns.name,
        "addr",
        "add",
        "10.9.9.1/24",
        "dev",
        "v-net-0",
    ]);
    let pod = Netns::new("p");
    let e = node.add("c1", &pod).err(106);
    assert!(e["msg"].as_str().unwrap().contains("10.9.9.1/24"), "{e}");
    assert_untouched(&node, &pod);
    let mut conf = node.conf.clone();
    conf["forceAddress"] = json!(true);
    node.call("ADD", "c1", &pod.path(), "eth0", &conf).ok();
    assert_eq!(node.ns.addrs("v-net-0"), vec!["10.245.5.1/24"]);
}

#[test]
fn a_29_is_exhausted_after_exactly_five_pods() {
    if !root_or_skip("exhaustion") {
        return;
    }
    let node = Node::new("10.245.6.0/29");
    let pods: Vec<Netns> = (0..6).map(|_| Netns::new("p")).collect();
    for (i, pod) in pods.iter().take(5).enumerate() {
        let r = node.add(&format!("c{i}"), pod).ok().json();
        assert_eq!(r["ips"][0]["address"], format!("10.245.6.{}/29", i + 2));
    }
    let mut status_conf = node.conf.clone();
    status_conf["cniVersion"] = json!("1.1.0");
    let e = node.add("c5", &pods[5]).err(100);
    assert!(
        e["msg"]
            .as_str()
            .unwrap()
            .contains("no IP addresses available"),
        "{e}"
    );
    assert!(!pods[5].links().contains(&"eth0".to_string()));
    assert_eq!(node.veths().len(), 5);

    let status = Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "STATUS")
        .env("CNI_PATH", REF_DIR);
    status.run_json(&status_conf).err(50);
    node.del("c0", &pods[0].path()).ok();
    assert_eq!(status.run_json(&status_conf).code, 0);
    // Round robin: the freed .2 is not handed out before the cycle comes round to it.
    let r = node.add("c5", &pods[5]).ok().json();
    assert_eq!(r["ips"][0]["address"], "10.245.6.2/29");
}

#[test]
fn fifty_parallel_adds_into_a_fresh_node() {
    if !root_or_skip("parallel") {
        return;
    }
    let node = Node::new("10.245.7.0/24");
    let pods: Vec<Netns> = (0..50).map(|_| Netns::new("p")).collect();
    let results: Vec<Call> = std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                let node = &node;
                s.spawn(move || node.add(&format!("par{i}"), pod))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addrs: Vec<String> = results
        .into_iter()
        .map(|c| {
            c.ok().json()["ips"][0]["address"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 50, "50 unique addresses");
    assert_eq!(node.reserved().len(), 50);
    let bridges: Vec<String> = node
        .ns
        .ip_json(&["link", "show", "type", "bridge"])
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bridges, vec!["v-net-0"]);
    assert_eq!(node.veths().len(), 50);
    assert_eq!(node.ns.addrs("v-net-0"), vec!["10.245.7.1/24"]);
}

#[test]
fn gc_releases_what_is_not_valid() {
    if !root_or_skip("gc") {
        return;
    }
    let node = Node::new("10.245.8.0/24");
    let pods: Vec<Netns> = (0..3).map(|_| Netns::new("p")).collect();
    for (i, pod) in pods.iter().enumerate() {
        node.add(&format!("g{i}"), pod).ok();
    }
    let mut conf = node.conf.clone();
    conf["cniVersion"] = json!("1.1.0");
    conf["cni.dev/valid-attachments"] = json!([{"containerID": "g1", "ifname": "eth0"}]);
    let gc = Cni::new(Some(&node.ns))
        .env("CNI_COMMAND", "GC")
        .env("CNI_PATH", REF_DIR);
    gc.run_json(&conf).ok();
    assert_eq!(node.reserved(), vec!["10.245.8.3"]);
    let files: Vec<String> = std::fs::read_dir(node.net_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files.contains(&"lock".to_string()) && files.contains(&"last_reserved_ip.0".to_string())
    );

    // GC without a valid list would free everything: refused.
    conf.as_object_mut()
        .unwrap()
        .remove("cni.dev/valid-attachments");
    gc.run_json(&conf).err(7);
    // GC is a 1.1 command.
    conf["cniVersion"] = json!("1.0.0");
    conf["cni.dev/attachments"] = json!([]);
    gc.run_json(&conf).err(1);
    assert_eq!(node.reserved(), vec!["10.245.8.3"]);
}
