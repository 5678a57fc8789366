//! Route sync against the kernel: find this node in the table, dump the routes once,
//! and apply the difference.

use crate::net::{NetError, Node};

use super::routes::{desired_routes, diff, RouteDiff};
use super::{ClusterConf, ClusterError};

/// This node's name: the configured one, else the only table entry whose node IP is an
/// address of this (host) namespace.
pub fn find_self(node: &Node, conf: &ClusterConf) -> Result<String, ClusterError> {
    if let Some(name) = &conf.node {
        return Ok(name.clone());
    }
    let local = node.local_ips().map_err(ClusterError::Net)?;
    let mine: Vec<&str> = conf
        .table
        .nodes
        .iter()
        .filter(|n| local.contains(&n.ip))
        .map(|n| n.name.as_str())
        .collect();
    match mine.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ClusterError::NotInTable(
            "none of this node's addresses is a node IP of the node table; set \"vnet.node\" \
             (or pass --node)"
                .into(),
        )),
        many => Err(ClusterError::NotInTable(format!(
            "this node holds the IPs of several table entries ({}); set \"vnet.node\"",
            many.join(", ")
        ))),
    }
}

/// What `sync_routes` does beyond computing the difference.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sync {
    /// Make the changes (else only compute them).
    pub apply: bool,
    /// Also replace foreign routes that send a subnet elsewhere than the table says.
    pub replace_foreign: bool,
}

/// Compute (and with `how.apply`, make) the route changes for node `me`. One route dump
/// per IP family the table uses; nothing is written when already in sync.
pub fn sync_routes(
    node: &Node,
    conf: &ClusterConf,
    me: &str,
    how: Sync,
) -> Result<RouteDiff, ClusterError> {
    let want = desired_routes(&conf.table, me);
    let v4 = conf.table.nodes.iter().any(|n| n.pod_cidr.addr().is_ipv4());
    let v6 = conf.table.nodes.iter().any(|n| n.pod_cidr.addr().is_ipv6());
    let current = node.main_routes(v4, v6).map_err(ClusterError::Net)?;
    let mut d = diff(&want, &current);
    if how.replace_foreign {
        d.replace_foreign();
    }
    let apply = how.apply;
    if apply && !d.ops.is_empty() {
        node.apply(&d.ops).map_err(ClusterError::Net)?;
    }
    Ok(d)
}

impl From<NetError> for ClusterError {
    fn from(e: NetError) -> Self {
        ClusterError::Net(e)
    }
}
