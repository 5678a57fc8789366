//! CHECK: the kernel and the store still match `prevResult`.

use std::net::IpAddr;

use crate::cni::mac::format_mac;
use crate::cni::result::Interface;
use crate::cni::{code, CniError, CniResult};
use crate::net::{Link, Node};
use crate::plan::Ns;

use super::error::Error;
use super::ipam;
use super::request::Request;

pub fn check(req: &Request) -> Result<(), Error> {
    let prev = req.conf.prev_result.as_ref().ok_or_else(|| {
        CniError::new(
            code::INVALID_CONFIG,
            "CHECK needs \"prevResult\" (the ADD result)",
        )
    })?;
    // The namespace first: a bad CNI_NETNS (the node's own) is the caller's error (4),
    // whatever the store says.
    let node = Node::open(req.env.netns.as_deref())?;
    ipam::check(req, prev)?;
    let bridge = check_bridge(req, &node, prev)?;
    let pod = check_pod_link(req, &node, prev)?;
    check_host_veth(&node, &pod, &bridge)?;
    check_addresses_and_routes(req, &node, prev)?;
    super::masq::check(req, &node, prev)
}

fn mismatch(msg: String) -> Error {
    Error::Check(msg)
}

fn mac_matches(link: &Link, iface: &Interface) -> bool {
    match (&iface.mac, &link.mac) {
        (Some(want), Some(have)) => want.eq_ignore_ascii_case(&format_mac(have)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn check_bridge(req: &Request, node: &Node, prev: &CniResult) -> Result<Link, Error> {
    let name = &req.conf.bridge;
    let link = node
        .link(Ns::Host, name)?
        .ok_or_else(|| mismatch(format!("bridge {name:?} not found on the node")))?;
    if link.kind.as_deref() != Some("bridge") {
        return Err(mismatch(format!("{name:?} is not a bridge")));
    }
    if link.promisc != req.conf.promisc {
        return Err(mismatch(format!(
            "bridge {name:?} promiscuous mode is {}, config says {}",
            link.promisc, req.conf.promisc
        )));
    }
    if let Some(iface) = prev
        .interfaces
        .iter()
        .find(|i| &i.name == name && i.sandbox.is_none())
    {
        if !mac_matches(&link, iface) {
            return Err(mismatch(format!(
                "bridge {name:?} MAC differs from prevResult"
            )));
        }
    }
    Ok(link)
}

fn check_pod_link(req: &Request, node: &Node, prev: &CniResult) -> Result<Link, Error> {
    let ifname = &req.env.ifname;
    let link = node
        .link(Ns::Pod, ifname)?
        .ok_or_else(|| mismatch(format!("interface {ifname:?} not found in the pod")))?;
    if link.kind.as_deref() != Some("veth") {
        return Err(mismatch(format!("pod interface {ifname:?} is not a veth")));
    }
    let netns = req.env.netns.as_ref().map(|p| p.display().to_string());
    if let Some(iface) = prev
        .interfaces
        .iter()
        .find(|i| &i.name == ifname && i.sandbox == netns)
    {
        if !mac_matches(&link, iface) {
            return Err(mismatch(format!(
                "pod interface {ifname:?} MAC differs from prevResult"
            )));
        }
    }
    Ok(link)
}

fn check_host_veth(node: &Node, pod: &Link, bridge: &Link) -> Result<(), Error> {
    let peer = pod
        .peer_index
        .ok_or_else(|| mismatch("pod veth has no peer".into()))?;
    let host = node.link_by_index(Ns::Host, peer)?.ok_or_else(|| {
        mismatch(format!(
            "host end (ifindex {peer}) of the pod veth not found"
        ))
    })?;
    if host.master != Some(bridge.index) {
        return Err(mismatch(format!(
            "{} is not attached to bridge {}",
            host.name, bridge.name
        )));
    }
    Ok(())
}

fn check_addresses_and_routes(req: &Request, node: &Node, prev: &CniResult) -> Result<(), Error> {
    let ifname = &req.env.ifname;
    let addrs = node.addrs(Ns::Pod, ifname)?;
    for ip in &prev.ips {
        if !addrs.contains(&ip.address) {
            return Err(mismatch(format!(
                "address {} missing from {ifname} in the pod",
                ip.address
            )));
        }
    }
    let routes = node.routes(Ns::Pod)?;
    for want in &prev.routes {
        let found = routes
            .iter()
            .any(|r| r.dst == want.dst && (want.gw.is_none() || r.gw == want.gw));
        if !found {
            let via = want
                .gw
                .map(|g: IpAddr| format!(" via {g}"))
                .unwrap_or_default();
            return Err(mismatch(format!(
                "route {}{via} missing in the pod",
                want.dst
            )));
        }
    }
    Ok(())
}
