//! `vnet routes show|diff|sync`: the node's routes to the other nodes' pod subnets.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cluster::{
    find_self, load_any, sync_routes, ClusterConf, ClusterError, RouteDiff, Sync,
};
use crate::net::Node;
use crate::plan::{Op, VNET_ROUTE_PROTO};

#[derive(Subcommand)]
pub enum RoutesCmd {
    /// List the routes vnet installed in this network namespace (protocol 118).
    Show,
    /// Print what `sync` would change; exit 0 when in sync, 1 when not (errors: 2).
    Diff(TableArgs),
    /// Install the missing routes, fix moved ones, remove vnet's stale ones.
    Sync(TableArgs),
}

#[derive(Args)]
pub struct TableArgs {
    /// A node table (conf/nodes.json), or a network config / conflist with a "vnet" key.
    file: PathBuf,
    /// This node's name in the table (default: the config's "vnet.node", else the entry
    /// whose node IP is an address of this namespace).
    #[arg(long)]
    node: Option<String>,
    /// Also replace routes vnet did not make that send a node's pod subnet elsewhere
    /// than the table says (diff: show what that would change).
    #[arg(long)]
    replace_foreign: bool,
}

pub fn run(cmd: RoutesCmd) -> Result<i32, ClusterError> {
    let node = Node::open(None)?;
    match cmd {
        RoutesCmd::Show => {
            let routes = node.main_routes(true, true)?;
            let ours: Vec<_> = routes.iter().filter(|r| r.is_vnet()).collect();
            if ours.is_empty() {
                println!("no vnet routes (protocol {VNET_ROUTE_PROTO}) in this namespace");
            }
            for r in ours {
                match r.gw {
                    Some(gw) => println!("{} via {gw} proto {VNET_ROUTE_PROTO}", r.dst),
                    None => println!("{} proto {VNET_ROUTE_PROTO}", r.dst),
                }
            }
            Ok(0)
        }
        RoutesCmd::Diff(a) => {
            let (me, d) = compute(&node, &a, false)?;
            report(&me, &d, "would");
            Ok(i32::from(!d.in_sync()))
        }
        RoutesCmd::Sync(a) => {
            let (me, d) = compute(&node, &a, true)?;
            report(&me, &d, "did");
            // Foreign routes left pointing elsewhere: the node is still not in sync.
            Ok(i32::from(d.skipped.iter().any(|s| !s.agrees())))
        }
    }
}

fn compute(node: &Node, a: &TableArgs, apply: bool) -> Result<(String, RouteDiff), ClusterError> {
    let mut conf: ClusterConf = load_any(&a.file)?;
    if let Some(name) = &a.node {
        if conf.table.get(name).is_none() {
            return Err(ClusterError::NotInTable(format!(
                "--node {name:?} is not in {}",
                a.file.display()
            )));
        }
        conf.node = Some(name.clone());
    }
    let me = find_self(node, &conf)?;
    let how = Sync {
        apply,
        replace_foreign: a.replace_foreign,
    };
    let d = sync_routes(node, &conf, &me, how)?;
    Ok((me, d))
}

fn report(me: &str, d: &RouteDiff, verb: &str) {
    println!("node {me}:");
    for (dst, gw) in &d.in_sync {
        println!("  = {dst} via {gw} (in sync)");
    }
    for op in &d.ops {
        println!("  {verb}: {}", op_line(op));
    }
    for s in &d.skipped {
        let via = s
            .found
            .gw
            .map(|g| g.to_string())
            .unwrap_or_else(|| "-".into());
        if s.agrees() {
            println!(
                "  = {} via {} (a route not made by vnet, proto {}, pointing at the right node)",
                s.dst, s.want, s.found.protocol
            );
        } else {
            println!(
                "  ! {} should go via {}, but a route not made by vnet sends it via {via} (proto {}); \
                 left alone (vnet routes sync --replace-foreign replaces it)",
                s.dst, s.want, s.found.protocol
            );
        }
    }
    if d.in_sync() {
        println!("  in sync");
    } else if d.skipped.iter().any(|s| !s.agrees()) {
        println!("  not in sync: a subnet is routed elsewhere than the table says");
    }
}

/// The route ops as the `ip` command doing the same.
fn op_line(op: &Op) -> String {
    let p = VNET_ROUTE_PROTO;
    match op {
        Op::AddNodeRoute { dst, gw } => format!("ip route add {dst} via {gw} proto {p}"),
        Op::ReplaceNodeRoute { dst, gw, .. } => {
            format!("ip route replace {dst} via {gw} proto {p}")
        }
        Op::DelNodeRoute { dst, gw: Some(gw) } => format!("ip route del {dst} via {gw} proto {p}"),
        Op::DelNodeRoute { dst, gw: None } => format!("ip route del {dst} proto {p}"),
        other => format!("{other:?}"),
    }
}
