//! ADD: reserve addresses, apply the plan, answer with the result. Any failure after the
//! reservation releases it, and `net::apply` has already undone its own changes.
//!
//! With a node table (`vnet` key) ADD first syncs the node's routes to the other nodes'
//! pod subnets: node state like the bridge, so it stays even if this pod fails.

use crate::cluster::{self, ClusterConf};
use crate::cni::mac::format_mac;
use crate::cni::result::Interface;
use crate::cni::CniResult;
use crate::net::{self, Node};
use crate::plan::Ns;

use super::error::Error;
use super::ipam;
use super::request::Request;
use super::trace;
use crate::plan::build::{add_ops, finish_result, Iface, RESULT_IFACES};

pub fn add(req: &Request) -> Result<CniResult, Error> {
    let node = Node::open(req.env.netns.as_deref())?;
    if node.link(Ns::Pod, &req.env.ifname)?.is_some() {
        return Err(Error::IfnameExists {
            ifname: req.env.ifname.clone(),
        });
    }
    // The reservation first: everything it reads and checks (the store, resolvConf, a
    // delegated plugin's answer) can still fail, and must fail before the node changes.
    let mut res = ipam::add(req)?;
    let mut routes_then_pod = || {
        if let Some(c) = &req.cluster {
            sync_routes(&node, c)?;
        }
        configure(req, &node, res.as_mut())
    };
    routes_then_pod().inspect_err(|_| {
        if let Err(e) = ipam::del(req) {
            eprintln!("vnet: releasing the address after a failed ADD also failed: {e}");
        }
    })
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

fn configure(req: &Request, node: &Node, res: Option<&mut CniResult>) -> Result<CniResult, Error> {
    let host_veth = free_veth_name(node)?;
    let mut result = match res {
        Some(r) => {
            finish_result(&req.conf, r);
            r.clone()
        }
        None => CniResult::default(),
    };
    let ips = (!result.ips.is_empty()).then_some(&result);
    let masq = super::masq::add_op(req, &result);
    let ops = add_ops(&req.conf, &req.env.ifname, &host_veth, ips, masq);
    trace::plan_on(
        node,
        "ADD",
        &req.env.container_id,
        req.env.netns.as_deref(),
        &ops,
    );
    node.apply(&ops)?;
    match describe(req, node, &host_veth) {
        Ok(ifaces) => result.interfaces = ifaces,
        Err(e) => {
            node.undo(&ops);
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
