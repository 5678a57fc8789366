//! `--to ADDRESS`: which facts the way to a destination crosses, in the order a packet
//! meets them.

use std::net::IpAddr;

use serde::Serialize;

use crate::cluster;

use super::target::{self, Target};
use super::{Check, Error, Seen};

/// Where a destination is, as the node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dest {
    pub address: IpAddr,
    /// "same-node", "other-node", "node" or "outside".
    pub kind: &'static str,
    /// The node whose pods' subnet holds it, or whose IP it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// For a pod of this node: the namespace holding the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

impl Dest {
    pub fn describe(&self) -> String {
        match (self.kind, &self.node, &self.pod) {
            ("same-node", _, Some(p)) => format!("a pod on this node ({p})"),
            ("same-node", _, None) => {
                "this node's pod subnet, but no pod of it holds the address".into()
            }
            ("other-node", Some(n), _) => format!("a pod on {n}"),
            ("node", Some(n), _) => format!("node {n}"),
            ("node", None, _) => "this node".into(),
            _ => "outside the pod network: masqueraded to the node's address".into(),
        }
    }
}

pub(super) fn classify(seen: &Seen, to: IpAddr) -> Result<Dest, Error> {
    let dest = |kind, node: Option<String>, pod: Option<String>| Dest {
        address: to,
        kind,
        node,
        pod,
    };
    if let Some(p) = seen
        .pods
        .iter()
        .find(|p| p.addrs.iter().any(|a| a.addr() == to))
    {
        return Ok(dest("same-node", None, Some(p.netns.display().to_string())));
    }
    let own = seen
        .ipam
        .as_ref()
        .is_some_and(|c| c.range_sets.iter().any(|s| s.contains(to)));
    if own {
        return Ok(dest("same-node", None, None));
    }
    if let Some(c) = &seen.cluster {
        let me = cluster::find_self(&seen.node, c)?;
        for n in &c.table.nodes {
            if n.ip == to {
                let name = (n.name != me).then(|| n.name.clone());
                return Ok(dest("node", name, None));
            }
            if n.name != me && n.pod_cidr.contains(&to) {
                return Ok(dest("other-node", Some(n.name.clone()), None));
            }
        }
    }
    if seen.node.local_ips()?.contains(&to) {
        return Ok(dest("node", None, None));
    }
    Ok(dest("outside", None, None))
}

/// Whether a check is on the way to `dest`.
fn crossed(c: &Check, dest: &Dest) -> bool {
    let off_subnet = dest.kind != "same-node";
    let leaves = matches!(dest.kind, "outside" | "node");
    match c.id {
        "bridge.gateway" | "bridge.sysctl" => off_subnet,
        "node.forwarding" => off_subnet && !(dest.kind == "node" && dest.node.is_none()),
        "node.route" => {
            dest.kind == "other-node" && c.about.is_some_and(|n| n.contains(&dest.address))
        }
        // Pod to pod keeps its address only if the rule leaves the pod network alone.
        "node.masquerade" => off_subnet,
        "node.masquerade_pod" => leaves,
        "store.pool" | "store.stale" => false,
        _ => true,
    }
}

/// The checks on the way, in order; for a pod of this node, its veth and interface last.
pub(super) fn on_path(
    seen: &Seen,
    dest: &Dest,
    t: Option<&Target>,
    checks: Vec<Check>,
) -> Result<Vec<Check>, Error> {
    let mut out: Vec<Check> = checks.into_iter().filter(|c| crossed(c, dest)).collect();
    out.sort_by_key(|c| c.hop);
    let Some(far) = &dest.pod else {
        return Ok(out);
    };
    let ask = super::Ask {
        conf: seen.conf,
        conf_path: seen.conf_path.clone(),
        plugin: seen.plugin.clone(),
        pod: Some(far.clone()),
        container: None,
        ifname: t.map_or("eth0".into(), |t| t.ifname.clone()),
        to: None,
    };
    let Some(far_t) = target::resolve(&ask, seen)? else {
        return Ok(out);
    };
    let mut far_checks: Vec<Check> = super::kernel::checks(seen, Some(&far_t))?
        .into_iter()
        .filter(|c| c.id.starts_with("pod.") || c.id.starts_with("cable."))
        .map(|mut c| {
            c.fact = format!("destination: {}", c.fact);
            c
        })
        .collect();
    // The far side from the bridge inwards: its cable, then the pod.
    far_checks.sort_by_key(|c| std::cmp::Reverse(c.hop));
    out.extend(far_checks);
    Ok(out)
}
