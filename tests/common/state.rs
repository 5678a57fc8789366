//! A node's pod-networking state as plain JSON, for "these two nodes look the same"
//! comparisons (vnet vs `vnet explain`'s commands vs net-script.sh). Names that are
//! random by design (host veths) and MACs are left out; everything else is compared.

use serde_json::{json, Value};

use super::Netns;

fn flags_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

fn read_sys(ns: &Netns, path: &str) -> String {
    let out = ns.exec(&["cat", path]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

fn routes(ns: &Netns) -> Vec<Value> {
    let mut all = ns.routes("-4");
    all.extend(ns.routes("-6"));
    sorted(all)
}

/// Bridge, its ports, the pod interface, the pod's routes and the sysctls ADD sets.
pub fn kernel_state(node: &Netns, pod: &Netns, bridge: &str, ifname: &str) -> Value {
    let br = node.link(bridge);
    let bridge_state = br.as_ref().map(|b| {
        let mut addrs = node.addrs(bridge);
        addrs.sort();
        json!({
            "kind": b["linkinfo"]["info_kind"],
            "up": flags_up(b),
            "mtu": b["mtu"],
            "addrs": addrs,
            "addr_assign_type": read_sys(node, &format!("/sys/class/net/{bridge}/addr_assign_type")),
        })
    });
    let links = node.ip_json(&["-d", "link", "show"]);
    let ports: Vec<Value> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["master"] == bridge)
        .map(|l| {
            json!({"kind": l["linkinfo"]["info_kind"], "up": flags_up(l), "mtu": l["mtu"],
                   "hairpin": l["linkinfo"]["info_slave_data"]["hairpin"]})
        })
        .collect();
    let pod_if = pod.link(ifname).map(|l| {
        json!({"kind": l["linkinfo"]["info_kind"], "up": flags_up(&l), "mtu": l["mtu"], "addrs": pod.addrs(ifname)})
    });
    let arp_notify = pod_if
        .as_ref()
        .map(|_| read_sys(pod, &format!("/proc/sys/net/ipv4/conf/{ifname}/arp_notify")));
    json!({
        "bridge": bridge_state,
        "ports": sorted(ports),
        "pod_interface": pod_if,
        "pod_routes": routes(pod),
        "pod_arp_notify": arp_notify,
        "node_ip_forward": read_sys(node, "/proc/sys/net/ipv4/ip_forward"),
    })
}

/// Reservation files of a store directory: name → content.
pub fn store_state(dir: &std::path::Path) -> Value {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let content = std::fs::read_to_string(e.path()).unwrap_or_default();
                    (name, content)
                })
                // `lock` and vnet's derived index (.vnet-index) are not reservations.
                .filter(|(n, _)| n != "lock" && !n.starts_with(".vnet-"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    json!(files)
}
