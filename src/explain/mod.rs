//! `vnet explain`: what ADD or DEL would do, as the iproute2 commands and file operations
//! a person would type, computed from the same plan the plugin applies. Nothing is
//! changed: the store is read without its lock and the kernel is only asked what exists.

pub mod store;

use crate::cluster::{self, ClusterConf};
use crate::cni::args::CniArgs;
use crate::cni::NetConf;
use crate::ipam::{self, IpamConf};
use crate::net::Node;
use crate::plan::build::{add_ops, finish_result, ipam_result, ipam_step, link_ops, IpamStep};
use crate::plan::masq;
use crate::plan::{Ns, Op};

pub use crate::plan::render::{delegate_line, lines, render, Facts, Line, PodNs};

/// Why `vnet explain` could not say what a call would do.
#[derive(Debug)]
pub enum Error {
    Config(crate::cni::CniError),
    Ipam(crate::ipam::IpamError),
    Cluster(crate::cluster::ClusterError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            // The cause is kept in `source()`; a person wants it in the line.
            Error::Ipam(e) => f.write_str(&crate::cni::error::with_causes(e)),
            Error::Cluster(e) => f.write_str(&crate::cni::error::with_causes(e)),
        }
    }
}

impl std::error::Error for Error {}

impl From<crate::cni::CniError> for Error {
    fn from(e: crate::cni::CniError) -> Self {
        Error::Config(e)
    }
}
impl From<crate::ipam::IpamError> for Error {
    fn from(e: crate::ipam::IpamError) -> Self {
        Error::Ipam(e)
    }
}
impl From<crate::cluster::ClusterError> for Error {
    fn from(e: crate::cluster::ClusterError) -> Self {
        Error::Cluster(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Add,
    Del,
}

/// One explained call: the config and the CNI-style arguments.
pub struct Ask<'a> {
    pub what: What,
    pub conf: &'a NetConf,
    pub args: &'a CniArgs,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    /// The host-side veth name; ADD picks a random one.
    pub veth: String,
    /// Read the node's bridge and addresses from the kernel (else assume a fresh node).
    pub look: bool,
}

pub fn explain(ask: &Ask) -> Result<String, Error> {
    let verb = match ask.what {
        What::Add => "ADD",
        What::Del => "DEL",
    };
    let mut out = vec![Line::note(format!(
        "vnet explain: {verb} of container {} as {} in {}, network {:?}. Nothing has been changed.",
        ask.container_id, ask.ifname, ask.netns, ask.conf.name
    ))];
    match ask.what {
        What::Add => out.extend(add(ask)?),
        What::Del => out.extend(del(ask)?),
    }
    Ok(render(&out))
}

fn facts(ask: &Ask) -> Facts {
    if !ask.look {
        return Facts::default();
    }
    let Ok(node) = Node::open(None) else {
        return Facts::default();
    };
    let masq = ask.conf.ip_masq.then_some(ask.conf.name.as_str());
    node.facts(&ask.conf.bridge, masq)
}

/// Without `isGateway` nothing puts the routes' gateway on the bridge: say so when no
/// address of the bridge is that gateway (read from the node; `--fresh` knows nothing).
fn unreachable_gateways(ask: &Ask, r: &crate::cni::CniResult, facts: &Facts) -> Vec<Line> {
    if ask.conf.is_gateway || !ask.look {
        return Vec::new();
    }
    let mut gws: Vec<std::net::IpAddr> = r.routes.iter().filter_map(|rt| rt.gw).collect();
    gws.dedup();
    gws.into_iter()
        .filter(|g| !facts.bridge_addrs.iter().any(|a| a.addr() == *g))
        .map(|g| {
            Line::note(format!(
                "WARNING: the pod's routes go via {g}, which no address of {} holds and \"isGateway\" is false: unless another host on that bridge answers for {g}, the pod's traffic off its subnet goes nowhere",
                ask.conf.bridge
            ))
        })
        .collect()
}

fn add(ask: &Ask) -> Result<Vec<Line>, Error> {
    let mut out = Vec::new();
    let mut result = None;
    let mut subnets = Vec::new();
    match &ask.conf.ipam_type {
        None => out.push(Line::note("no ipam.type: layer 2 only, the pod gets no address")),
        Some(t) if ipam_step(ask.conf) == IpamStep::AfterLink => out.push(Line::note(format!(
            "IPAM: the {t} plugin, delegated: it runs once the pod's link is up on the bridge (below)"
        ))),
        Some(_) => {
            let conf = IpamConf::parse(&ask.conf.raw, &ask.args.ips)?;
            subnets = conf.subnets();
            let preview = ipam::preview_add(&conf, &ask.conf.name, ask.container_id, ask.ifname)?;
            out.push(Line::note("IPAM, host-local store: who gets which address is a file on the node"));
            out.extend(store::add_lines(&preview, ask.container_id, ask.ifname));
            let mut r = ipam_result(&conf, preview.allocations, Default::default());
            finish_result(ask.conf, &mut r);
            result = Some(r);
        }
    }
    let cluster = ClusterConf::from_config(&ask.conf.raw)?;
    if let Some(c) = &cluster {
        out.extend(route_sync(ask, c)?);
    }
    let facts = facts(ask);
    if let (Some(t), IpamStep::AfterLink) = (&ask.conf.ipam_type, ipam_step(ask.conf)) {
        out.extend(link_first(ask, t, &facts));
        return Ok(out);
    }
    out.push(Line::note(
        "Kernel: the node's bridge, the pod's veth, address and routes",
    ));
    let masq = result.as_ref().and_then(|r| {
        let cluster_nets = cluster.as_ref().map(|c| c.table.pod_network());
        masq::add_op(
            ask.conf,
            &subnets,
            ask.container_id,
            ask.ifname,
            &cluster_nets.unwrap_or_default(),
            r,
        )
    });
    let ops = add_ops(ask.conf, ask.ifname, &ask.veth, result.as_ref(), masq);
    out.extend(lines(&ops, &PodNs::from_path(ask.netns), &facts));
    if let Some(r) = &result {
        out.extend(unreachable_gateways(ask, r, &facts));
    }
    Ok(out)
}

/// A delegated plugin's ADD: the link phase, the plugin, then what it answers with.
fn link_first(ask: &Ask, plugin: &str, facts: &Facts) -> Vec<Line> {
    let (ifname, bridge) = (ask.ifname, &ask.conf.bridge);
    let mut out = vec![Line::note(format!(
        "Kernel, first the link: the node's bridge, the pod's veth plugged in, {ifname} up"
    ))];
    let ops = link_ops(ask.conf, ifname, &ask.veth);
    out.extend(lines(&ops, &PodNs::from_path(ask.netns), facts));
    out.push(Line::note(format!(
        "IPAM, with {ifname} up on {bridge}: a plugin like dhcp runs its DHCP client on it, in the pod"
    )));
    out.push(delegate_line("ADD", &format!("CNI_PATH/{plugin}")));
    let mut then = vec![
        format!("its addresses on {ifname}"),
        "its routes".to_string(),
    ];
    if ask.conf.is_gateway {
        then.push(format!("its gateway on {bridge} (ip_forward on)"));
    }
    if ask.conf.ip_masq {
        then.push("their masquerade element".to_string());
    }
    out.push(Line::note(format!(
        "Kernel, then what it answered (not known in advance): {}",
        then.join(", ")
    )));
    out.push(Line::note(
        "if anything fails from the plugin on, vnet sends it DEL and deletes the veth",
    ));
    out
}

/// The node routes ADD would add first: what is missing on this node, or (when the kernel
/// is not consulted) every other node's subnet.
fn route_sync(ask: &Ask, c: &ClusterConf) -> Result<Vec<Line>, Error> {
    let mut out = vec![Line::note(
        "Routes to the other nodes' pod subnets (node table)",
    )];
    let node = if ask.look {
        Node::open(None).ok()
    } else {
        None
    };
    let ops = match &node {
        Some(node) => {
            let me = cluster::find_self(node, c)?;
            cluster::sync_routes(node, c, &me, cluster::Sync::default())?.ops
        }
        None => match &c.node {
            Some(me) => cluster::desired_routes(&c.table, me)
                .into_iter()
                .map(|(dst, gw)| Op::AddNodeRoute { dst, gw })
                .collect(),
            None => {
                out.push(Line::note(
                    "(which node this is comes from its addresses: run on the node to see its routes)",
                ));
                Vec::new()
            }
        },
    };
    if ops.is_empty() && node.is_some() {
        out.push(Line::note("all in place already: nothing to change"));
    }
    out.extend(lines(&ops, &PodNs::Named(String::new()), &Facts::default()));
    Ok(out)
}

fn del(ask: &Ask) -> Result<Vec<Line>, Error> {
    let mut out = Vec::new();
    // The addresses the store holds for the pod: DEL finds its masquerade elements by
    // them (by its tag when there are none), removes them before the interface (an
    // element that cannot be removed fails DEL with the pod untouched), then releases
    // the addresses.
    let store = match ask.conf.builtin_ipam() {
        true => {
            let conf = IpamConf::parse(&ask.conf.raw, &ask.args.ips)?;
            let held =
                ipam::preview_del(&conf.data_dir, &ask.conf.name, ask.container_id, ask.ifname);
            Some((conf, held))
        }
        false => None,
    };
    if ask.conf.ip_masq {
        let tag = masq::tag(&ask.conf.name, ask.container_id, ask.ifname);
        let op = Op::DelMasquerade {
            network: ask.conf.name.clone(),
            addrs: store.as_ref().map(|(_, h)| h.clone()).unwrap_or_default(),
            tag,
        };
        out.extend(lines(
            &[op],
            &PodNs::from_path(ask.netns),
            &Facts::default(),
        ));
    }
    let mut link = vec![Line::note("Kernel: remove the pod's interface")];
    let op = Op::DelLink {
        ns: Ns::Pod,
        dev: ask.ifname.to_string(),
    };
    link.extend(lines(
        &[op],
        &PodNs::from_path(ask.netns),
        &Facts::default(),
    ));
    link.push(Line::note(
        "the bridge and its gateway address stay for the node's other pods",
    ));
    let mut release = Vec::new();
    if let Some((conf, held)) = store {
        release.push(Line::note("IPAM, host-local store: release the address"));
        release.extend(store::del_lines(
            &conf.data_dir.join(&ask.conf.name),
            &held,
            ask.container_id,
            ask.ifname,
        ));
    } else if let Some(t) = &ask.conf.ipam_type {
        release.push(Line::note(format!(
            "IPAM: the {t} plugin, while {} still exists (dhcp sends its release through it)",
            ask.ifname
        )));
        release.push(delegate_line("DEL", &format!("CNI_PATH/{t}")));
    }
    match ipam_step(ask.conf) {
        IpamStep::First => out.extend(link.into_iter().chain(release)),
        IpamStep::AfterLink => out.extend(release.into_iter().chain(link)),
    }
    Ok(out)
}
