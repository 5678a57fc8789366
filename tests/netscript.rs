//! scripts/net-script.sh (the course's script, with iproute2) and vnet leave equivalent
//! kernel state for the same inputs; names of random veths aside.

#![allow(clippy::unwrap_used)]

mod common;

use common::state::kernel_state;
use common::*;

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
