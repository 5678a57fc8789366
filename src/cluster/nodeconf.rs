//! The network config (`10-bridge.conf`) for one node of a split: the CKA bridge config
//! with the node's pod subnet, masquerade, and the node table so ADD keeps the routes
//! to the other nodes in sync.

use serde_json::{json, Value};

use super::table::NodeTable;
use super::ClusterError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfOptions {
    pub cni_version: String,
    /// Network name (`name`).
    pub network: String,
    pub bridge: String,
    /// IPAM `dataDir`; `{node}` is replaced by the node's name (nodes sharing one
    /// filesystem, as in the namespace lab, need one each).
    pub data_dir: String,
    pub ip_masq: bool,
}

impl Default for NodeConfOptions {
    fn default() -> Self {
        NodeConfOptions {
            cni_version: "1.0.0".into(),
            network: "v-net".into(),
            bridge: "v-net-0".into(),
            data_dir: "/var/lib/cni/networks".into(),
            ip_masq: true,
        }
    }
}

pub fn node_conf(
    table: &NodeTable,
    node: &str,
    o: &NodeConfOptions,
) -> Result<Value, ClusterError> {
    let me = table
        .get(node)
        .ok_or_else(|| ClusterError::NotInTable(format!("node {node:?} is not in the table")))?;
    let mut vnet = json!({ "node": node });
    if let Some(c) = table.cluster_cidr {
        vnet["clusterCIDR"] = json!(c.to_string());
    }
    vnet["nodes"] = table.to_json()["nodes"].clone();
    Ok(json!({
        "cniVersion": o.cni_version,
        "name": o.network,
        "type": "vnet",
        "bridge": o.bridge,
        "isGateway": true,
        "isDefaultGateway": true,
        "ipMasq": o.ip_masq,
        "ipam": {
            "type": "host-local",
            "subnet": me.pod_cidr.to_string(),
            "dataDir": o.data_dir.replace("{node}", node),
        },
        "vnet": vnet,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ClusterConf;

    #[test]
    fn a_node_conf_carries_its_subnet_and_the_table() {
        let v: Value = serde_json::from_str(include_str!("../../conf/nodes.json")).unwrap();
        let table = NodeTable::from_json(&v, "nodes.json").unwrap();
        let o = NodeConfOptions {
            data_dir: "/run/vnet-lab/{node}/ipam".into(),
            ..Default::default()
        };
        let c = node_conf(&table, "node2", &o).unwrap();
        assert_eq!(c["ipam"]["subnet"], "10.244.2.0/24");
        assert_eq!(c["ipam"]["dataDir"], "/run/vnet-lab/node2/ipam");
        assert_eq!(c["bridge"], "v-net-0");
        assert_eq!(c["ipMasq"], true);
        assert_eq!(c["vnet"]["clusterCIDR"], "10.244.0.0/16");
        // What the plugin reads back is the same table.
        let back = ClusterConf::from_config(&c).unwrap().unwrap();
        assert_eq!(back.table, table);
        assert_eq!(back.node.as_deref(), Some("node2"));
        assert!(node_conf(&table, "node9", &o).is_err());
    }
}
