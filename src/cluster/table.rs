//! The node table: which node (name, node IP) owns which pod subnet.
//!
//! ```json
//! { "clusterCIDR": "10.244.0.0/16",
//!   "nodes": [ { "name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24" }, ... ] }
//! ```

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ClusterError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub name: String,
    /// The node's address on the network joining the nodes: the gateway other nodes
    /// route this node's pod subnet through.
    pub ip: IpAddr,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: IpNet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTable {
    /// The whole pod network; every pod subnet lies inside it. Optional: without it the
    /// pod network is the union of the pod subnets.
    #[serde(
        rename = "clusterCIDR",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<IpNet>,
    pub nodes: Vec<NodeEntry>,
}

impl NodeTable {
    /// Parse and validate a table from JSON.
    pub fn from_json(v: &Value, what: &str) -> Result<NodeTable, ClusterError> {
        let table: NodeTable = serde_json::from_value(v.clone())
            .map_err(|e| ClusterError::invalid(format!("{what}: {e}")))?;
        table.validate().map_err(|e| match e {
            ClusterError::Invalid(msg) => ClusterError::Invalid(format!("{what}: {msg}")),
            other => other,
        })?;
        Ok(table)
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    pub fn get(&self, name: &str) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The pod network: the cluster CIDR if set, else every pod subnet.
    pub fn pod_network(&self) -> Vec<IpNet> {
        match self.cluster_cidr {
            Some(c) => vec![c],
            None => self.nodes.iter().map(|n| n.pod_cidr).collect(),
        }
    }

    /// Names and addresses unique, pod subnets canonical, apart from each other, of
    /// the node IP's family, inside the cluster CIDR, and not holding any node IP.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.nodes.is_empty() {
            return Err(ClusterError::invalid("the node table lists no node"));
        }
        if let Some(c) = self.cluster_cidr {
            canonical(c, "clusterCIDR")?;
        }
        for (i, n) in self.nodes.iter().enumerate() {
            check_entry(n, self.cluster_cidr)?;
            for m in &self.nodes[..i] {
                check_pair(m, n)?;
            }
            for m in &self.nodes {
                if m.pod_cidr.contains(&n.ip) {
                    return Err(ClusterError::invalid(format!(
                        "node {:?} has IP {} inside the pod subnet {} of node {:?}",
                        n.name, n.ip, m.pod_cidr, m.name
                    )));
                }
            }
        }
        Ok(())
    }
}

fn check_entry(n: &NodeEntry, cluster: Option<IpNet>) -> Result<(), ClusterError> {
    let ok_name = !n.name.is_empty()
        && n.name.len() <= 63
        && n.name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
    if !ok_name {
        return Err(ClusterError::invalid(format!(
            "node name {:?} must be 1-63 letters, digits, '-', '_' or '.'",
            n.name
        )));
    }
    canonical(n.pod_cidr, &format!("podCIDR of node {:?}", n.name))?;
    if n.pod_cidr.addr().is_ipv4() != n.ip.is_ipv4() {
        return Err(ClusterError::invalid(format!(
            "node {:?}: podCIDR {} and node IP {} are of different IP families",
            n.name, n.pod_cidr, n.ip
        )));
    }
    if let Some(c) = cluster {
        if !c.contains(&n.pod_cidr) {
            return Err(ClusterError::invalid(format!(
                "podCIDR {} of node {:?} is outside clusterCIDR {c}",
                n.pod_cidr, n.name
            )));
        }
    }
    Ok(())
}

fn check_pair(m: &NodeEntry, n: &NodeEntry) -> Result<(), ClusterError> {
    if m.name == n.name {
        return Err(ClusterError::invalid(format!(
            "node {:?} is listed twice",
            n.name
        )));
    }
    if m.ip == n.ip {
        return Err(ClusterError::invalid(format!(
            "nodes {:?} and {:?} have the same IP {}",
            m.name, n.name, n.ip
        )));
    }
    if overlap(m.pod_cidr, n.pod_cidr) {
        return Err(ClusterError::invalid(format!(
            "pod subnets overlap: {} (node {:?}) and {} (node {:?})",
            m.pod_cidr, m.name, n.pod_cidr, n.name
        )));
    }
    Ok(())
}

/// `10.244.1.0/24`, not `10.244.1.7/24`: a route or an IPAM subnet needs the network.
pub(crate) fn canonical(net: IpNet, what: &str) -> Result<(), ClusterError> {
    if net.trunc() != net {
        return Err(ClusterError::invalid(format!(
            "{what} {net} has host bits set (did you mean {}?)",
            net.trunc()
        )));
    }
    Ok(())
}

pub(crate) fn overlap(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table(nodes: Value) -> Result<NodeTable, ClusterError> {
        NodeTable::from_json(&json!({ "nodes": nodes }), "test table")
    }

    fn cka() -> Value {
        json!([
            {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"},
            {"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"},
            {"name": "node3", "ip": "192.168.1.13", "podCIDR": "10.244.3.0/24"}
        ])
    }

    #[test]
    fn the_cka_table_parses_and_round_trips() {
        let t = table(cka()).unwrap();
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.get("node2").unwrap().ip.to_string(), "192.168.1.12");
        assert_eq!(t.to_json(), json!({ "nodes": cka() }));
        assert_eq!(t.pod_network().len(), 3);
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../../conf/nodes.json");
        let v: Value = serde_json::from_str(text).unwrap();
        let t = NodeTable::from_json(&v, "conf/nodes.json").unwrap();
        assert_eq!(t.pod_network(), vec!["10.244.0.0/16".parse().unwrap()]);
        assert_eq!(
            t.get("node3").unwrap().pod_cidr.to_string(),
            "10.244.3.0/24"
        );
    }

    fn err(nodes: Value) -> String {
        table(nodes).unwrap_err().to_string()
    }

    #[test]
    fn bad_tables_are_refused_naming_the_problem() {
        let mut dup = cka();
        dup[1]["name"] = json!("node1");
        assert!(err(dup).contains("\"node1\" is listed twice"));
        let mut same_ip = cka();
        same_ip[2]["ip"] = json!("192.168.1.11");
        assert!(err(same_ip).contains("same IP 192.168.1.11"));
        let mut overlap = cka();
        overlap[2]["podCIDR"] = json!("10.244.0.0/16");
        assert!(err(overlap).contains("pod subnets overlap"));
        let mut host_bits = cka();
        host_bits[0]["podCIDR"] = json!("10.244.1.1/24");
        assert!(err(host_bits).contains("did you mean 10.244.1.0/24"));
        let mut family = cka();
        family[0]["podCIDR"] = json!("fd00:1::/64");
        assert!(err(family).contains("different IP families"));
        let mut inside = cka();
        inside[0]["ip"] = json!("10.244.2.9");
        assert!(err(inside).contains("inside the pod subnet 10.244.2.0/24"));
        let mut unknown = cka();
        unknown[0]["subnet"] = json!("x");
        assert!(err(unknown).contains("unknown field"));
        assert!(err(json!([])).contains("no node"));
        let e = NodeTable::from_json(
            &json!({"clusterCIDR": "10.244.0.0/23", "nodes": cka()}),
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("outside clusterCIDR"), "{e}");
    }
}
