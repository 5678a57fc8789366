//! The `vnet` key of a network config: vnet's own settings, beside the reference
//! bridge keys.
//!
//! ```json
//! "vnet": { "node": "node1",                     // optional: else found by its addresses
//!           "clusterCIDR": "10.244.0.0/16",      // optional: the pod network
//!           "nodes": [ {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"}, ... ] }
//! ```
//!
//! or `"nodesFile": "/etc/cni/vnet-nodes.json"` (a node table file) instead of `nodes`.

use std::path::Path;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::table::{canonical, NodeTable};
use super::ClusterError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConf {
    /// This node's name, when the config says it.
    pub node: Option<String>,
    pub table: NodeTable,
}

const KEYS: &[&str] = &["node", "nodes", "nodesFile", "clusterCIDR"];

impl ClusterConf {
    /// `None` when the config has no `vnet` key (a single-node network).
    pub fn from_config(raw: &Value) -> Result<Option<ClusterConf>, ClusterError> {
        let Some(v) = raw.get("vnet") else {
            return Ok(None);
        };
        let o = v
            .as_object()
            .ok_or_else(|| ClusterError::invalid(format!("\"vnet\" must be an object, not {v}")))?;
        if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ClusterError::invalid(format!(
                "unknown key \"vnet.{k}\" (known: {})",
                KEYS.join(", ")
            )));
        }
        let text = |k: &str| -> Result<Option<&str>, ClusterError> {
            match o.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(ClusterError::invalid(format!(
                    "\"vnet.{k}\" must be a string, not {other}"
                ))),
            }
        };
        let mut table = match (o.get("nodes"), text("nodesFile")?) {
            (Some(nodes), None) => {
                NodeTable::from_json(&json!({ "nodes": nodes }), "\"vnet.nodes\"")?
            }
            (None, Some(path)) => read_table(Path::new(path))?,
            (Some(_), Some(_)) => {
                return Err(ClusterError::invalid(
                    "\"vnet\" has both \"nodes\" and \"nodesFile\": give one",
                ))
            }
            (None, None) => {
                return Err(ClusterError::invalid(
                    "\"vnet\" needs the node table: \"nodes\" or \"nodesFile\"",
                ))
            }
        };
        if let Some(c) = text("clusterCIDR")? {
            let cidr: IpNet = c.parse().map_err(|_| {
                ClusterError::invalid(format!("\"vnet.clusterCIDR\" {c:?} is not a CIDR"))
            })?;
            canonical(cidr, "\"vnet.clusterCIDR\"")?;
            table.cluster_cidr = Some(cidr);
            table.validate()?;
        }
        let node = text("node")?.map(str::to_string);
        if let Some(name) = &node {
            if table.get(name).is_none() {
                return Err(ClusterError::NotInTable(format!(
                    "\"vnet.node\" {name:?} is not in the node table"
                )));
            }
        }
        Ok(Some(ClusterConf { node, table }))
    }
}

fn read_json(path: &Path) -> Result<Value, ClusterError> {
    let text = crate::files::read_path(path, crate::files::cap::NODES)
        .map_err(|e| ClusterError::io(path, e))?;
    serde_json::from_slice(&text)
        .map_err(|e| ClusterError::invalid(format!("{}: not JSON: {e}", path.display())))
}

fn read_table(path: &Path) -> Result<NodeTable, ClusterError> {
    NodeTable::from_json(&read_json(path)?, &path.display().to_string())
}

/// The node table (and node name, if set) from a file that is a node table, a network
/// config with a `vnet` key, or a conflist one of whose plugins has one.
pub fn load_any(path: &Path) -> Result<ClusterConf, ClusterError> {
    let v = read_json(path)?;
    if v.get("nodes").is_some() {
        let table = NodeTable::from_json(&v, &path.display().to_string())?;
        return Ok(ClusterConf { node: None, table });
    }
    let candidates: Vec<&Value> = match v.get("plugins").and_then(Value::as_array) {
        Some(plugins) => plugins.iter().collect(),
        None => vec![&v],
    };
    for c in candidates {
        if let Some(conf) = ClusterConf::from_config(c)? {
            return Ok(conf);
        }
    }
    Err(ClusterError::invalid(format!(
        "{}: neither a node table (\"nodes\") nor a network config with a \"vnet\" key",
        path.display()
    )))
}

#[cfg(test)]
#[path = "conf_tests.rs"]
mod tests;
