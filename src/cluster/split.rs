//! Dividing a cluster range among nodes.
//!
//! * Equal blocks (`split_equal`, what the CKA notes describe for Weave): the range is cut
//!   into the smallest power of two of equal CIDR blocks that is at least the node count,
//!   node i gets block i and the blocks left over stay unassigned. 10.32.0.0/12 over
//!   3 nodes: 4 blocks of /14: 10.32.0.0/14, 10.36.0.0/14, 10.40.0.0/14, and
//!   10.44.0.0/14 spare. (Weave itself hands out arbitrary, not CIDR-aligned address
//!   ranges from a shared ring; routes and host-local need prefixes, hence blocks.)
//! * Fixed size per node (`split_per_node`, Flannel and kube-controller-manager): node i
//!   gets the i-th block of the given prefix length, counting from `start`. Flannel
//!   starts at the second block (its `SubnetMin` default), so 10.244.0.0/16 with /24
//!   gives node1 10.244.1.0/24; kube-controller-manager starts at the first (`start` 0).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::table::{canonical, NodeEntry, NodeTable};
use super::ClusterError;

/// A node to place: its name and node IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub ip: IpAddr,
}

/// The outcome: the node table and the blocks nobody got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub table: NodeTable,
    pub spare: Vec<IpNet>,
}

/// `node1=192.168.1.11,node2=192.168.1.12`.
pub fn parse_nodes_arg(s: &str) -> Result<Vec<NodeSpec>, ClusterError> {
    s.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (name, ip) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| ClusterError::invalid(format!("{part:?} is not NAME=NODE_IP")))?;
            let ip = ip.parse().map_err(|_| {
                ClusterError::invalid(format!("{ip:?} (node {name:?}) is not an IP address"))
            })?;
            Ok(NodeSpec {
                name: name.to_string(),
                ip,
            })
        })
        .collect()
}

/// Smallest prefix a node can run pods in: a gateway and one pod besides the network
/// and broadcast addresses.
fn max_node_prefix(range: IpNet) -> u8 {
    range.max_prefix_len() - 2
}

pub fn split_equal(range: IpNet, nodes: &[NodeSpec]) -> Result<Split, ClusterError> {
    check_inputs(range, nodes)?;
    let bits = (nodes.len() as u32).next_power_of_two().trailing_zeros() as u8;
    let prefix = u16::from(range.prefix_len()) + u16::from(bits);
    if prefix > u16::from(max_node_prefix(range)) {
        return Err(ClusterError::invalid(format!(
            "range {range} is too small for {} nodes: each would get a /{prefix}, and a \
             node needs at least a /{} (gateway + one pod)",
            nodes.len(),
            max_node_prefix(range)
        )));
    }
    let blocks: Vec<IpNet> = (0..1u128 << bits)
        .map(|i| block(range, prefix as u8, i))
        .collect();
    finish(range, nodes, &blocks)
}

pub fn split_per_node(
    range: IpNet,
    prefix: u8,
    start: u128,
    nodes: &[NodeSpec],
) -> Result<Split, ClusterError> {
    check_inputs(range, nodes)?;
    if prefix < range.prefix_len() || prefix > max_node_prefix(range) {
        return Err(ClusterError::invalid(format!(
            "per-node prefix /{prefix} must be between the range's /{} and /{} \
             (gateway + one pod)",
            range.prefix_len(),
            max_node_prefix(range)
        )));
    }
    let available = 1u128
        .checked_shl(u32::from(prefix - range.prefix_len()))
        .unwrap_or(u128::MAX);
    let needed = start.saturating_add(nodes.len() as u128);
    if needed > available {
        return Err(ClusterError::invalid(format!(
            "range {range} holds {available} blocks of /{prefix}; {} nodes starting at \
             block {start} need {needed}",
            nodes.len()
        )));
    }
    let blocks: Vec<IpNet> = (start..needed).map(|i| block(range, prefix, i)).collect();
    let mut split = finish(range, nodes, &blocks)?;
    split.spare.clear();
    Ok(split)
}

fn check_inputs(range: IpNet, nodes: &[NodeSpec]) -> Result<(), ClusterError> {
    canonical(range, "cluster range")?;
    if nodes.is_empty() {
        return Err(ClusterError::invalid(
            "no nodes given (--nodes name=ip,...)",
        ));
    }
    for n in nodes {
        if range.contains(&n.ip) {
            return Err(ClusterError::invalid(format!(
                "node {:?} has IP {} inside the cluster range {range}: node addresses and \
                 pod subnets must not overlap",
                n.name, n.ip
            )));
        }
        if n.ip.is_ipv4() != range.addr().is_ipv4() {
            return Err(ClusterError::invalid(format!(
                "node {:?} IP {} is not of the cluster range's family ({range})",
                n.name, n.ip
            )));
        }
    }
    Ok(())
}

/// Node i gets `blocks[i]`; the rest are spare. The table is validated as any other.
fn finish(range: IpNet, nodes: &[NodeSpec], blocks: &[IpNet]) -> Result<Split, ClusterError> {
    let table = NodeTable {
        cluster_cidr: Some(range),
        nodes: nodes
            .iter()
            .zip(blocks)
            .map(|(n, b)| NodeEntry {
                name: n.name.clone(),
                ip: n.ip,
                pod_cidr: *b,
            })
            .collect(),
    };
    table.validate()?;
    Ok(Split {
        table,
        spare: blocks[nodes.len()..].to_vec(),
    })
}

/// The `index`-th block of length `prefix` inside `range`.
fn block(range: IpNet, prefix: u8, index: u128) -> IpNet {
    let size_bits = u32::from(range.max_prefix_len() - prefix);
    let offset = index.checked_shl(size_bits).unwrap_or(0);
    let addr = match range.network() {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from((u128::from(u32::from(a)) + offset) as u32)),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) + offset)),
    };
    IpNet::new(addr, prefix).unwrap_or(range)
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
