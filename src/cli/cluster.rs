//! `vnet cluster split`: divide a cluster range among nodes, print the table, and write
//! the node table and one `10-bridge.conf` per node.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ipnet::IpNet;
use serde_json::Value;

use crate::cluster::{
    from_kubectl, node_conf, parse_nodes_arg, split_equal, split_per_node, ClusterError,
    NodeConfOptions, NodeTable, Split,
};

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Divide a cluster range among nodes (equal blocks like Weave, or a fixed prefix per
    /// node like Flannel with --per-node) or read a real cluster's assignment
    /// (--from-kubectl); print the table and, with --out, write nodes.json and
    /// <node>/10-bridge.conf per node.
    Split(SplitArgs),
}

#[derive(Args)]
pub struct SplitArgs {
    /// The cluster's pod range, e.g. 10.32.0.0/12 (Weave's default) or 10.244.0.0/16.
    #[arg(long)]
    range: Option<IpNet>,
    /// Nodes as NAME=NODE_IP,... e.g. node1=192.168.1.11,node2=192.168.1.12
    #[arg(long)]
    nodes: Option<String>,
    /// Give each node a block of this prefix length (e.g. /24) instead of equal blocks.
    #[arg(long, value_parser = parse_prefix)]
    per_node: Option<u8>,
    /// With --per-node: the index of the first block handed out. 1 (default) skips the
    /// first block as Flannel does; 0 is kube-controller-manager's order.
    #[arg(long, default_value_t = 1)]
    start: u32,
    /// Read the assignment from `kubectl get nodes -o json` output instead of splitting.
    #[arg(long, conflicts_with_all = ["nodes", "per_node"])]
    from_kubectl: Option<PathBuf>,
    /// Directory to write nodes.json and <node>/10-bridge.conf into.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Network name in the configs.
    #[arg(long, default_value = "v-net")]
    network: String,
    #[arg(long, default_value = "v-net-0")]
    bridge: String,
    /// IPAM dataDir in the configs; {node} becomes the node's name.
    #[arg(long, default_value = "/var/lib/cni/networks")]
    data_dir: String,
    #[arg(long, default_value = "1.0.0")]
    cni_version: String,
    /// Leave ipMasq off in the configs.
    #[arg(long)]
    no_masq: bool,
}

fn parse_prefix(s: &str) -> Result<u8, String> {
    s.trim_start_matches('/')
        .parse()
        .map_err(|_| format!("{s:?} is not a prefix length like /24"))
}

pub fn run(cmd: ClusterCmd) -> Result<i32, ClusterError> {
    match cmd {
        ClusterCmd::Split(a) => split(a),
    }
}

fn split(a: SplitArgs) -> Result<i32, ClusterError> {
    let (split, how) = compute(&a)?;
    println!("{how}");
    print_table(&split.table);
    for s in &split.spare {
        println!("spare (unassigned): {s}");
    }
    if let Some(dir) = &a.out {
        let opts = NodeConfOptions {
            cni_version: a.cni_version.clone(),
            network: a.network.clone(),
            bridge: a.bridge.clone(),
            data_dir: a.data_dir.clone(),
            ip_masq: !a.no_masq,
        };
        for path in write_out(dir, &split.table, &opts)? {
            println!("wrote {}", path.display());
        }
    }
    Ok(0)
}

fn compute(a: &SplitArgs) -> Result<(Split, String), ClusterError> {
    if let Some(path) = &a.from_kubectl {
        let text = std::fs::read_to_string(path).map_err(|e| ClusterError::io(path, e))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| ClusterError::invalid(format!("{}: not JSON: {e}", path.display())))?;
        let table = from_kubectl(&v, a.range)?;
        let how = format!("node table read from {}", path.display());
        return Ok((
            Split {
                table,
                spare: vec![],
            },
            how,
        ));
    }
    let range = a
        .range
        .ok_or_else(|| ClusterError::invalid("--range is required (or --from-kubectl FILE)"))?;
    let nodes = parse_nodes_arg(a.nodes.as_deref().ok_or_else(|| {
        ClusterError::invalid("--nodes NAME=IP,... is required (or --from-kubectl FILE)")
    })?)?;
    match a.per_node {
        Some(p) => {
            let s = split_per_node(range, p, u128::from(a.start), &nodes)?;
            let how = format!(
                "cluster range {range}: one /{p} per node, from block {} on",
                a.start
            );
            Ok((s, how))
        }
        None => {
            let s = split_equal(range, &nodes)?;
            let blocks = s.table.nodes.len() + s.spare.len();
            let p = s.table.nodes[0].pod_cidr.prefix_len();
            let how = format!(
                "cluster range {range}: {blocks} equal blocks of /{p} for {} nodes",
                nodes.len()
            );
            Ok((s, how))
        }
    }
}

fn print_table(t: &NodeTable) {
    println!(
        "{:<12} {:<16} {:<20} {:<16} POD ADDRESSES",
        "NODE", "NODE IP", "POD SUBNET", "BRIDGE (GW)"
    );
    for n in &t.nodes {
        let gw = first_host(n.pod_cidr)
            .map(|g| g.to_string())
            .unwrap_or_default();
        println!(
            "{:<12} {:<16} {:<20} {:<16} {}",
            n.name,
            n.ip.to_string(),
            n.pod_cidr.to_string(),
            gw,
            pod_addresses(n.pod_cidr)
        );
    }
}

fn first_host(n: IpNet) -> Option<IpAddr> {
    n.hosts().next()
}

/// Addresses host-local can give pods: all but network, gateway (and IPv4 broadcast).
fn pod_addresses(n: IpNet) -> String {
    let bits = u32::from(n.max_prefix_len() - n.prefix_len());
    match (n, 1u128.checked_shl(bits)) {
        (IpNet::V4(_), Some(total)) => (total.saturating_sub(3)).to_string(),
        (IpNet::V6(_), Some(total)) if bits <= 32 => (total.saturating_sub(2)).to_string(),
        _ => format!("about 2^{bits}"),
    }
}

fn write_out(
    dir: &Path,
    table: &NodeTable,
    opts: &NodeConfOptions,
) -> Result<Vec<PathBuf>, ClusterError> {
    let mut written = Vec::new();
    let write = |path: PathBuf, v: &Value| -> Result<PathBuf, ClusterError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ClusterError::io(parent, e))?;
        }
        let text = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
        std::fs::write(&path, text).map_err(|e| ClusterError::io(&path, e))?;
        Ok(path)
    };
    written.push(write(dir.join("nodes.json"), &table.to_json())?);
    for n in &table.nodes {
        let conf = node_conf(table, &n.name, opts)?;
        written.push(write(dir.join(&n.name).join("10-bridge.conf"), &conf)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_address_counts() {
        assert_eq!(pod_addresses("10.244.1.0/24".parse().unwrap()), "253");
        assert_eq!(pod_addresses("10.32.0.0/14".parse().unwrap()), "262141");
        assert_eq!(pod_addresses("fd00::/64".parse().unwrap()), "about 2^64");
        assert_eq!(parse_prefix("/24"), Ok(24));
        assert!(parse_prefix("x").is_err());
    }
}
