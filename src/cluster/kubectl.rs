//! A node table from `kubectl get nodes -o json`: a real cluster's own assignments
//! (`spec.podCIDR`, set by kube-controller-manager with `--allocate-node-cidrs`) are the
//! source of truth, and the node IP is the `InternalIP` of the pod subnet's family.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::table::{NodeEntry, NodeTable};
use super::ClusterError;

pub fn from_kubectl(v: &Value, cluster_cidr: Option<IpNet>) -> Result<NodeTable, ClusterError> {
    let items = v["items"].as_array().ok_or_else(|| {
        ClusterError::invalid(
            "kubectl output has no \"items\" list (use kubectl get nodes -o json)",
        )
    })?;
    let nodes = items.iter().map(node_of).collect::<Result<Vec<_>, _>>()?;
    let table = NodeTable {
        cluster_cidr,
        nodes,
    };
    table.validate()?;
    Ok(table)
}

fn node_of(item: &Value) -> Result<NodeEntry, ClusterError> {
    let name = item["metadata"]["name"].as_str().ok_or_else(|| {
        ClusterError::invalid("a node in the kubectl output has no metadata.name")
    })?;
    let cidr = item["spec"]["podCIDR"].as_str().ok_or_else(|| {
        ClusterError::invalid(format!(
            "node {name:?} has no spec.podCIDR (is kube-controller-manager running with \
             --allocate-node-cidrs?)"
        ))
    })?;
    let pod_cidr: IpNet = cidr.parse().map_err(|_| {
        ClusterError::invalid(format!(
            "node {name:?}: spec.podCIDR {cidr:?} is not a CIDR"
        ))
    })?;
    let ip = internal_ips(item)
        .into_iter()
        .find(|ip| ip.is_ipv4() == pod_cidr.addr().is_ipv4())
        .ok_or_else(|| {
            ClusterError::invalid(format!(
                "node {name:?} has no InternalIP of the family of its podCIDR {pod_cidr}"
            ))
        })?;
    Ok(NodeEntry {
        name: name.to_string(),
        ip,
        pod_cidr,
    })
}

fn internal_ips(item: &Value) -> Vec<IpAddr> {
    item["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_fixture_gives_one_entry_per_node_with_its_internal_ipv4() {
        let v: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/kubectl-nodes.json")).unwrap();
        let t = from_kubectl(&v, Some("10.244.0.0/16".parse().unwrap())).unwrap();
        let rows: Vec<String> = t
            .nodes
            .iter()
            .map(|n| format!("{} {} {}", n.name, n.ip, n.pod_cidr))
            .collect();
        assert_eq!(
            rows,
            vec![
                "node1 192.168.1.11 10.244.0.0/24",
                "node2 192.168.1.12 10.244.1.0/24",
                "node3 192.168.1.13 10.244.2.0/24",
            ]
        );
    }

    #[test]
    fn a_node_without_pod_cidr_or_internal_ip_is_named() {
        let e = from_kubectl(
            &json!({"items": [{"metadata": {"name": "w1"}, "spec": {}, "status": {}}]}),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"w1\" has no spec.podCIDR"), "{e}");
        let e = from_kubectl(
            &json!({"items": [{"metadata": {"name": "w1"}, "spec": {"podCIDR": "10.244.0.0/24"},
                     "status": {"addresses": [{"type": "Hostname", "address": "w1"}]}}]}),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no InternalIP"), "{e}");
        assert!(from_kubectl(&json!({"kind": "Node"}), None).is_err());
    }
}
