//! ADD: reserve addresses, apply the plan, answer with the result. Any failure after the
//! reservation releases it, and `net::apply` has already undone its own changes.
//!
//! Built-in host-local reserves first, before any change. A delegated plugin runs once
//! the pod's link is up on the bridge (`plan::build::ipam_step` says why): link phase,
//! plugin, address phase; a failure past the link phase has the plugin release what it
//! handed out while the link still exists (dhcp sends its release through it), then the
//! veth goes.
//!
//! With a node table (`vnet` key) ADD first syncs the node's routes to the other nodes'
//! pod subnets: node state like the bridge, so it stays even if this pod fails.

use crate::cluster::{self, ClusterConf};
use crate::cni::mac::format_mac;
use crate::cni::result::Interface;
use crate::cni::CniResult;
use crate::net::{self, Node};
use crate::plan::build::{
    add_ops, address_ops, finish_result, ipam_step, link_ops, Iface, IpamStep, RESULT_IFACES,
};
use crate::plan::{Ns, Op};

use super::error::Error;
use super::ipam;
use super::request::Request;
use super::trace;

pub fn add(req: &Request) -> Result<CniResult, Error> {
    let node = Node::open(req.env.netns.as_deref())?;
    if node.link(Ns::Pod, &req.env.ifname)?.is_some() {
        return Err(Error::IfnameExists {
            ifname: req.env.ifname.clone(),
        });
    }
    match ipam_step(&req.conf) {
        IpamStep::First => address_first(req, &node),
        IpamStep::AfterLink => link_first(req, &node),
    }
}

fn address_first(req: &Request, node: &Node) -> Result<CniResult, Error> {
    // The reservation first: everything it reads and checks (the store, resolvConf) can
    // still fail, and must fail before the node changes.
    let res = ipam::add(req)?;
    let routes_then_pod = || {
        prepare_node(req, node)?;
        let host_veth = free_veth_name(node)?;
        let result = finished(req, res);
        let ips = (!result.ips.is_empty()).then_some(&result);
        let masq = super::masq::add_op(req, &result);
        let ops = add_ops(&req.conf, &req.env.ifname, &host_veth, ips, masq);
        configure(req, node, &host_veth, &ops, result)
    };
    routes_then_pod().inspect_err(|_| release(req))
}

fn link_first(req: &Request, node: &Node) -> Result<CniResult, Error> {
    ipam::check_delegate(req)?;
    prepare_node(req, node)?;
    let host_veth = free_veth_name(node)?;
    let link = link_ops(&req.conf, &req.env.ifname, &host_veth);
    trace_plan(req, node, &link);
    node.apply(&link)?;
    let then_addresses = || {
        let result = finished(req, ipam::add(req)?);
        let masq = super::masq::add_op(req, &result);
        let ops = address_ops(&req.conf, &req.env.ifname, &result, masq);
        configure(req, node, &host_veth, &ops, result)
    };
    then_addresses().inspect_err(|_| {
        // Also after the plugin's own failure, as the spec asks of a delegating plugin.
        release(req);
        node.undo(&link);
    })
}

fn release(req: &Request) {
    if let Err(e) = ipam::del(req) {
        eprintln!("vnet: releasing the address after a failed ADD also failed: {e}");
    }
}

/// Node state before the pod's: the routes to the other nodes' pod subnets.
fn prepare_node(req: &Request, node: &Node) -> Result<(), Error> {
    match &req.cluster {
        Some(c) => sync_routes(node, c),
        None => Ok(()),
    }
}

/// The IPAM answer completed as the reference bridge does (none: layer 2 only).
fn finished(req: &Request, res: Option<CniResult>) -> CniResult {
    let mut result = res.unwrap_or_default();
    finish_result(&req.conf, &mut result);
    result
}

fn trace_plan(req: &Request, node: &Node, ops: &[Op]) {
    let env = &req.env;
    trace::plan_on(node, "ADD", &env.container_id, env.netns.as_deref(), ops);
}

/// One route dump when in sync; changes are traced like any plan.
fn sync_routes(node: &Node, c: &ClusterConf) -> Result<(), Error> {
    let me = cluster::find_self(node, c)?;
    // Computed here, applied below as a traced plan.
    let d = cluster::sync_routes(node, c, &me, cluster::Sync::default())?;
    if !d.ops.is_empty() {
        trace::plan("ADD route sync", "", None, &d.ops);
        node.apply(&d.ops)?;
    }
    for s in &d.skipped {
        eprintln!(
            "vnet: route to {} via {} not installed: a route not made by vnet holds it ({:?})",
            s.dst, s.want, s.found
        );
    }
    Ok(())
}

/// Applies `ops` and fills the result's interfaces from the kernel; undoes `ops` if that
/// fails.
fn configure(
    req: &Request,
    node: &Node,
    host_veth: &str,
    ops: &[Op],
    mut result: CniResult,
) -> Result<CniResult, Error> {
    trace_plan(req, node, ops);
    node.apply(ops)?;
    match describe(req, node, host_veth) {
        Ok(ifaces) => result.interfaces = ifaces,
        Err(e) => {
            node.undo(ops);
            return Err(e);
        }
    }
    if let Some(dns) = &req.conf.dns {
        result.dns = dns.clone();
    }
    Ok(result)
}

/// A random `vethXXXXXXXX` not already on the node (a clash needs 2^32 bad luck, but
/// creating over an existing name would fail the whole ADD).
fn free_veth_name(node: &Node) -> Result<String, Error> {
    for _ in 0..10 {
        let name = net::random_veth_name();
        if node.link(Ns::Host, &name)?.is_none() {
            return Ok(name);
        }
    }
    Err(Error::Internal("no free veth name after 10 tries".into()))
}

/// The result's interfaces as the kernel reported them while the plan ran (MACs and MTU
/// do not change after creation, and the bridge's was read when it was pinned).
fn describe(req: &Request, node: &Node, host_veth: &str) -> Result<Vec<Interface>, Error> {
    let read = |ns: Ns, name: &str| -> Result<Interface, Error> {
        let link = node.known_link(ns, name)?.ok_or_else(|| {
            Error::Internal(format!("{name} vanished right after ADD created it"))
        })?;
        Ok(Interface {
            name: name.to_string(),
            mac: link.mac.as_ref().map(format_mac),
            mtu: (ns == Ns::Pod).then_some(link.mtu),
            sandbox: (ns == Ns::Pod).then(|| {
                req.env
                    .netns
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            }),
        })
    };
    // In the order the result's `ips[].interface` indices point into.
    RESULT_IFACES
        .iter()
        .map(|role| match role {
            Iface::Bridge => read(Ns::Host, &req.conf.bridge),
            Iface::HostVeth => read(Ns::Host, host_veth),
            Iface::Pod => read(Ns::Pod, &req.env.ifname),
        })
        .collect()
}
