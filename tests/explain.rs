//! `vnet explain`: a golden output, and its commands, run by bash in a fresh node
//! namespace, leave the same kernel and store state as the plugin's real ADD and DEL.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::state::{kernel_state, store_state};
use common::*;
use serde_json::{json, Value};

fn explain(node: Option<&Netns>, conf: &Value, args: &[&str]) -> String {
    let mut cmd = match node {
        Some(n) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &n.name, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    let dir = TempDir::new("conf");
    let file = dir.path().join("net.conf");
    std::fs::write(&file, conf.to_string()).unwrap();
    let out = cmd
        .env_remove("CNI_COMMAND")
        .arg("explain")
        .args(args)
        .arg("--conf")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn run_script(node: &Netns, script: &str) {
    let out = node.exec(&["bash", "-euo", "pipefail", "-c", script]);
    assert!(
        out.status.success(),
        "explain's commands failed: {}\n--- script ---\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn golden_add_and_del_for_a_fixed_config() {
    let data = TempDir::new("g");
    let conf = json!({"cniVersion": "1.0.0", "name": "v-net", "type": "vnet", "bridge": "v-net-0",
        "isGateway": true, "isDefaultGateway": true,
        "ipam": {"type": "host-local", "subnet": "10.244.1.0/24", "dataDir": data.path()}});
    let args = [
        "--fresh",
        "--container",
        "c1",
        "--netns",
        "/run/netns/pod1",
        "--veth",
        "veth0a1b2c3d",
    ];
    let d = data.path().to_str().unwrap();
    let add = explain(None, &conf, &args).replace(d, "$DATA");
    let want = include_str!("golden/explain-add.txt");
    assert_eq!(
        add, want,
        "explain ADD drifted from tests/golden/explain-add.txt"
    );

    std::fs::create_dir_all(data.path().join("v-net")).unwrap();
    std::fs::write(data.path().join("v-net/10.244.1.7"), "c1\r\neth0").unwrap();
    let mut del_args = vec!["del"];
    del_args.extend_from_slice(&args);
    let del = explain(None, &conf, &del_args).replace(d, "$DATA");
    assert_eq!(del, include_str!("golden/explain-del.txt"));
}

#[test]
fn explain_commands_leave_the_same_state_as_add_and_del() {
    if !root_or_skip("explain_equivalence") {
        return;
    }
    let real = Node::new("10.247.1.0/24");
    let script_node = Node::new("10.247.1.0/24");
    let mut script_conf = script_node.conf.clone();
    script_conf["ipam"]["dataDir"] = json!(script_node.data.path());
    let pods_real = [Netns::new("a"), Netns::new("b")];
    let pods_script = [Netns::new("c"), Netns::new("d")];

    // Two pods each: the second explain must see the bridge and gateway as existing.
    for i in 0..2 {
        let id = format!("c{i}");
        real.add(&id, &pods_real[i]).ok();
        let veth = format!("vethe{i:07}");
        let script = explain(
            Some(&script_node.ns),
            &script_conf,
            &[
                "--container",
                &id,
                "--netns",
                &pods_script[i].path(),
                "--veth",
                &veth,
            ],
        );
        if i == 1 {
            assert!(script.contains("exists already"), "{script}");
        }
        run_script(&script_node.ns, &script);
        for (p_real, p_script) in pods_real.iter().zip(&pods_script).take(i + 1) {
            assert_eq!(
                kernel_state(&script_node.ns, p_script, "v-net-0", "eth0"),
                kernel_state(&real.ns, p_real, "v-net-0", "eth0"),
                "after ADD #{i}"
            );
        }
        assert_eq!(
            store_state(&script_node.net_dir()),
            store_state(&real.net_dir())
        );
    }
    assert!(pods_script[0].ping("10.247.1.3"), "the scripted pods talk");

    let script = explain(
        Some(&script_node.ns),
        &script_conf,
        &[
            "del",
            "--container",
            "c0",
            "--netns",
            &pods_script[0].path(),
        ],
    );
    run_script(&script_node.ns, &script);
    real.del("c0", &pods_real[0].path()).ok();
    assert_eq!(
        kernel_state(&script_node.ns, &pods_script[0], "v-net-0", "eth0"),
        kernel_state(&real.ns, &pods_real[0], "v-net-0", "eth0"),
    );
    assert_eq!(
        store_state(&script_node.net_dir()),
        store_state(&real.net_dir())
    );
}

#[test]
fn trace_logs_the_applied_plan_to_a_file() {
    if !root_or_skip("trace") {
        return;
    }
    let node = Node::new("10.247.2.0/24");
    let pod = Netns::new("p");
    let log = TempDir::new("log");
    let file = log.path().join("trace.log");
    Cni::new(Some(&node.ns))
        .pod("ADD", "t1", &pod.path(), "eth0")
        .env("VNET_TRACE", file.to_str().unwrap())
        .run_json(&node.conf)
        .ok();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("addr add 10.247.2.2/24 dev eth0"), "{text}");
    assert!(text.contains("ip link add v-net-0 type bridge"), "{text}");
}

/// `VNET_TRACE` prints what the call did: on a node whose bridge, gateway and
/// masquerade set exist, no command that would make them again (issue: the second pod's
/// trace used to read like a fresh node's).
#[test]
fn trace_prints_what_was_done_on_a_node_that_has_its_bridge() {
    if !root_or_skip("trace_truth") {
        return;
    }
    let mut node = Node::new("10.244.8.0/24");
    node.conf["ipMasq"] = json!(true);
    let (a, b) = (Netns::new("a"), Netns::new("b"));
    let trace = |id: &str, pod: &Netns| {
        let c = Cni::new(Some(&node.ns))
            .pod("ADD", id, &pod.path(), "eth0")
            .env("VNET_TRACE", "1")
            .run_json(&node.conf);
        let stderr = c.stderr.clone();
        c.ok();
        stderr
    };
    let first = trace("t1", &a);
    assert!(first.contains("ip link add v-net-0 type bridge"), "{first}");
    assert!(
        first.contains("ip addr add 10.244.8.1/24 dev v-net-0"),
        "{first}"
    );
    assert!(
        first.contains("nft add rule inet vnet postrouting"),
        "{first}"
    );
    let second = trace("t2", &b);
    for made in [
        "ip link add v-net-0",
        "ip addr add 10.244.8.1/24 dev v-net-0",
        "nft add rule",
        "nft add set",
    ] {
        assert!(
            !second.contains(made),
            "second pod's trace claims {made:?}:\n{second}"
        );
    }
    assert!(second.contains("bridge v-net-0 exists already"), "{second}");
    assert!(
        second.contains("nft add element inet vnet pods4_testnet_")
            && second.contains("10.244.8.3"),
        "{second}"
    );
    // The store's steps too: the lock, where round robin stood, the file it made.
    let dir = node.net_dir().display().to_string();
    assert!(second.contains(&format!("{dir}/lock")), "{second}");
    assert!(
        second.contains(
            "last_reserved_ip.0 is 10.244.8.2: round robin takes the next free address, 10.244.8.3"
        ),
        "{second}"
    );
    assert!(second.contains(&format!("{dir}/10.244.8.3")), "{second}");
    let del = Cni::new(Some(&node.ns))
        .pod("DEL", "t2", &b.path(), "eth0")
        .env("VNET_TRACE", "1")
        .run_json(&node.conf);
    let stderr = del.stderr.clone();
    del.ok();
    assert!(stderr.contains("vnet DEL IPAM t2"), "{stderr}");
    assert!(stderr.contains(&format!("{dir}/10.244.8.3")), "{stderr}");
    assert_eq!(node.reserved(), vec!["10.244.8.2"]);
}

/// Explain reads the node and says when the real ADD would fail or misbehave: a bridge
/// holding a conflicting address (ADD fails with 106, and really does), routes via a
/// gateway nobody on the bridge holds when `isGateway` is off.
#[test]
fn explain_warns_where_the_real_add_would_fail_or_misbehave() {
    if !root_or_skip("explain_warns") {
        return;
    }
    let node = Node::new("10.244.9.0/24");
    node.ns.add_bridge("v-net-0", "10.9.9.1/24");
    let args = ["--container", "w1", "--netns", "/run/netns/none"];
    let text = explain(Some(&node.ns), &node.conf, &args);
    assert!(
        text.contains("WARNING: the real ADD fails here (code 106)")
            && text.contains("10.9.9.1/24"),
        "{text}"
    );
    let pod = Netns::new("p");
    node.add("w1", &pod).err(106);
    // With forceAddress the conflict is removed instead, and there is no warning.
    let mut force = node.conf.clone();
    force["forceAddress"] = json!(true);
    let text = explain(Some(&node.ns), &force, &args);
    assert!(
        !text.contains("WARNING") && text.contains("ip addr del 10.9.9.1/24 dev v-net-0"),
        "{text}"
    );
    // No isGateway, yet a default route via the subnet's first address: nobody holds it.
    let mut nogw = node.conf.clone();
    nogw["isGateway"] = json!(false);
    nogw["isDefaultGateway"] = json!(false);
    nogw["bridge"] = json!("v-net-1");
    nogw["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0", "gw": "10.244.9.1"}]);
    let text = explain(Some(&node.ns), &nogw, &args);
    assert!(
        text.contains("WARNING: the pod's routes go via 10.244.9.1"),
        "{text}"
    );
    nogw["isGateway"] = json!(true);
    let text = explain(Some(&node.ns), &nogw, &args);
    assert!(!text.contains("WARNING"), "{text}");
}

/// A delegated IPAM plugin runs once the pod's link is up on the bridge, and gets DEL
/// before the link goes: explain says so in that order (no root needed).
#[test]
fn explain_puts_a_delegated_plugin_between_link_and_address() {
    let conf = json!({"cniVersion": "1.0.0", "name": "d", "type": "vnet", "bridge": "v-net-0",
        "isGateway": true, "ipam": {"type": "dhcp"}});
    let args = ["--fresh", "--netns", "/run/netns/pod1"];
    let add = explain(None, &conf, &args);
    let at = |text: &str, what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what:?} missing:\n{text}"))
    };
    let order = [
        "ip link add v-net-0 type bridge",
        "master v-net-0",
        "ip -n pod1 link set eth0 up",
        "CNI_COMMAND=ADD CNI_PATH/dhcp < $CONF",
        "its addresses on eth0, its routes",
    ];
    for pair in order.windows(2) {
        assert!(at(&add, pair[0]) < at(&add, pair[1]), "{pair:?}:\n{add}");
    }
    assert!(
        !add.contains("addr add"),
        "addresses are not known yet:\n{add}"
    );
    let del = explain(
        None,
        &conf,
        &["del", "--fresh", "--netns", "/run/netns/pod1"],
    );
    assert!(
        at(&del, "CNI_COMMAND=DEL CNI_PATH/dhcp") < at(&del, "ip -n pod1 link del eth0"),
        "{del}"
    );
}
