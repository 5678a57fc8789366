//! scripts/net-script.sh (the course's script, with iproute2) and vnet leave equivalent
//! kernel state for the same inputs; names of random veths aside.

#![allow(clippy::unwrap_used)]

mod common;

use common::state::kernel_state;
use common::*;
use std::path::Path;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/net-script.sh");

fn net_script(node: &Netns, ipam: &TempDir, args: &[&str]) -> String {
    let file = ipam.path().join("ips");
    let mut cmd = vec!["env", "SUBNET=10.248.1.0/24"];
    let ipam_env = format!("IPAM_FILE={}", file.display());
    cmd.push(&ipam_env);
    cmd.extend_from_slice(&["bash", SCRIPT]);
    cmd.extend_from_slice(args);
    let out = node.exec(&cmd);
    assert!(
        out.status.success(),
        "net-script.sh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn net_script_and_vnet_leave_equivalent_state() {
    if !root_or_skip("net_script_equivalence") {
        return;
    }
    let vnet = Node::new("10.248.1.0/24");
    let script_node = Netns::new("s");
    let ipam = TempDir::new("ips");
    let vnet_pods = [Netns::new("a"), Netns::new("b")];
    let script_pods = [Netns::new("c"), Netns::new("d")];

    for i in 0..2 {
        let id = format!("c{i}");
        vnet.add(&id, &vnet_pods[i]).ok();
        let said = net_script(&script_node, &ipam, &["add", &id, &script_pods[i].name]);
        assert!(said.contains(&format!("10.248.1.{}/24", i + 2)), "{said}");
        assert_eq!(
            kernel_state(&script_node, &script_pods[i], "v-net-0", "eth0"),
            kernel_state(&vnet.ns, &vnet_pods[i], "v-net-0", "eth0"),
            "pod {i}"
        );
    }
    assert!(script_pods[0].ping("10.248.1.3"), "the script's pods talk");
    let lines = std::fs::read_to_string(ipam.path().join("ips")).unwrap();
    assert_eq!(lines, "10.248.1.2 c0 eth0\n10.248.1.3 c1 eth0\n");

    vnet.del("c0", &vnet_pods[0].path()).ok();
    net_script(&script_node, &ipam, &["del", "c0", &script_pods[0].name]);
    assert_eq!(
        kernel_state(&script_node, &script_pods[0], "v-net-0", "eth0"),
        kernel_state(&vnet.ns, &vnet_pods[0], "v-net-0", "eth0"),
    );
    assert_eq!(
        std::fs::read_to_string(ipam.path().join("ips")).unwrap(),
        "10.248.1.3 c1 eth0\n"
    );
}

#[test]
fn net_script_rolls_back_a_failed_add() {
    if !root_or_skip("net_script_rollback") {
        return;
    }
    let node = Netns::new("s");
    let pod = Netns::new("p");
    let ipam = TempDir::new("ips");
    // eth0 already exists in the pod: creating the veth fails after the reservation.
    sh_ok(&[
        "ip", "-n", &pod.name, "link", "add", "eth0", "type", "veth", "peer", "name", "x0",
    ]);
    let file = format!("IPAM_FILE={}", ipam.path().join("ips").display());
    let out = node.exec(&["env", &file, "bash", SCRIPT, "add", "c9", &pod.name]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(ipam.path().join("ips")).unwrap(),
        ""
    );
    assert!(node.links().iter().all(|l| !l.starts_with("veth")));
}

/// The course's chain: the plugin runs the IPAM plugin its config names (here the
/// reference host-local) and takes the address from its answer; DEL releases it there.
#[test]
fn net_script_calls_the_ipam_plugin_its_config_names() {
    if !root_or_skip("net_script_ipam_plugin") {
        return;
    }
    let host_local = Path::new("/usr/lib/cni/host-local");
    if !host_local.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI lacks {}",
            host_local.display()
        );
        eprintln!(
            "SKIPPED net_script_ipam_plugin: no {}",
            host_local.display()
        );
        return;
    }
    let node = Netns::new("s");
    let pods = [Netns::new("p"), Netns::new("q")];
    let dir = TempDir::new("ipc");
    let store = dir.path().join("store");
    let conf_file = dir.path().join("net.conf");
    std::fs::write(
        &conf_file,
        serde_json::json!({"cniVersion": "1.0.0", "name": "hand", "type": "net-script",
            "ipam": {"type": "host-local", "subnet": "10.248.2.0/24",
                "rangeStart": "10.248.2.100", "dataDir": store}})
        .to_string(),
    )
    .unwrap();
    let conf = format!("CONF={}", conf_file.display());
    // A text-file IPAM that must stay unused: the plugin's store is the one that counts.
    let unused = format!("IPAM_FILE={}", dir.path().join("ips").display());
    let script = |args: &[&str]| {
        let mut cmd = vec![
            "env",
            &conf,
            &unused,
            "CNI_PATH=/usr/lib/cni",
            "bash",
            SCRIPT,
        ];
        cmd.extend_from_slice(args);
        node.exec(&cmd)
    };
    for (i, pod) in pods.iter().enumerate() {
        let out = script(&["add", &format!("c{i}"), &pod.name]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = format!("10.248.2.{}/24", 100 + i);
        assert_eq!(pod.addrs("eth0"), vec![want.clone()]);
        let owner = std::fs::read_to_string(store.join(format!("hand/10.248.2.{}", 100 + i)));
        assert_eq!(owner.unwrap(), format!("c{i}\r\neth0"), "host-local's file");
    }
    assert!(!dir.path().join("ips").exists(), "the text file was used");
    assert!(pods[0].ping("10.248.2.101"), "pod to pod");
    assert!(
        pods[0].ping("10.248.2.1"),
        "pod to the gateway host-local named"
    );

    let out = script(&["del", "c0", &pods[0].name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!store.join("hand/10.248.2.100").exists(), "DEL released it");
    assert!(store.join("hand/10.248.2.101").exists());
    assert!(
        !pods[0].links().iter().any(|l| l == "eth0"),
        "the pod keeps its eth0"
    );

    // A plugin that is not there: an error, and nothing made.
    let bad = dir.path().join("bad.conf");
    std::fs::write(
        &bad,
        r#"{"cniVersion":"1.0.0","name":"hand","ipam":{"type":"no-such-ipam"}}"#,
    )
    .unwrap();
    let links = node.links();
    let bad_conf = format!("CONF={}", bad.display());
    let out = node.exec(&[
        "env",
        &bad_conf,
        "CNI_PATH=/usr/lib/cni",
        "bash",
        SCRIPT,
        "add",
        "c9",
        &pods[0].name,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no IPAM plugin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(node.links(), links);
}
