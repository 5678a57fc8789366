//! Which pod a report is about: named by its namespace (`--pod`) or by the container ID
//! its address is reserved for (`--container`), and what it should have.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::cni::result::Dns;
use crate::cni::CniResult;
use crate::ipam::Allocation;
use crate::net::{Link, Node, Ns};
use crate::plan::build::{finish_result, ipam_result};

use super::{pod_path, Ask, Error, PodInfo, Seen};

pub(super) struct Target {
    pub netns: Option<PathBuf>,
    /// The pod side opened (none when no namespace was found).
    pub node: Option<Node>,
    pub ifname: String,
    /// The pod's interface as the kernel has it.
    pub link: Option<Link>,
    /// The node's end of its veth, wherever it is attached.
    pub host_end: Option<Link>,
    pub container: Option<String>,
    /// Addresses on the pod's interface.
    pub addrs: Vec<IpNet>,
    /// Addresses the store holds for (container, ifname).
    pub reserved: Vec<IpAddr>,
}

impl Target {
    pub fn info(&self) -> PodInfo {
        PodInfo {
            netns: self.netns.as_ref().map(|p| p.display().to_string()),
            container: self.container.clone(),
            ifname: self.ifname.clone(),
            addresses: self.addrs.clone(),
        }
    }

    /// What ADD would have returned for this pod: its reserved addresses with their
    /// ranges' prefixes and gateways, the configured routes, completed as the plugin does.
    pub fn expected(&self, seen: &Seen) -> Option<CniResult> {
        let conf = seen.ipam.as_ref()?;
        let allocs: Vec<Allocation> = conf
            .range_sets
            .iter()
            .filter_map(|set| {
                let ip = self.reserved.iter().find(|ip| set.contains(**ip))?;
                let range = set.range_for(*ip)?;
                Some(Allocation {
                    address: IpNet::new(*ip, range.subnet().prefix_len()).ok()?,
                    gateway: Some(range.gateway()),
                })
            })
            .collect();
        let mut r = ipam_result(conf, allocs, Dns::default());
        finish_result(seen.conf, &mut r);
        Some(r)
    }
}

/// Addresses the store holds for (id, ifname), or by legacy ID-only files of `id`.
fn reserved(seen: &Seen, id: &str, ifname: &str) -> Vec<IpAddr> {
    let Some(status) = &seen.status else {
        return Vec::new();
    };
    status
        .reservations
        .iter()
        .filter(|r| {
            r.container_id.as_deref() == Some(id) && r.ifname.as_deref().is_none_or(|i| i == ifname)
        })
        .map(|r| r.ip)
        .collect()
}

/// The container an address is reserved for.
fn owner_of(seen: &Seen, addrs: &[IpNet]) -> Option<String> {
    seen.status
        .as_ref()?
        .reservations
        .iter()
        .find(|r| addrs.iter().any(|a| a.addr() == r.ip))
        .and_then(|r| r.container_id.clone())
}

pub(super) fn resolve(ask: &Ask, seen: &Seen) -> Result<Option<Target>, Error> {
    let ifname = ask.ifname.clone();
    let netns = match (&ask.pod, &ask.container) {
        (None, None) => return Ok(None),
        (Some(p), _) => Some(pod_path(p)),
        (None, Some(id)) => {
            let held = reserved(seen, id, &ifname);
            seen.pods
                .iter()
                .find(|p| p.ifname == ifname && p.addrs.iter().any(|a| held.contains(&a.addr())))
                .map(|p| p.netns.clone())
        }
    };
    let node = match &netns {
        Some(path) => Some(Node::open(Some(path)).map_err(|source| Error::Pod {
            what: path.display().to_string(),
            source,
        })?),
        None => None,
    };
    let (mut link, mut addrs, mut host_end) = (None, Vec::new(), None);
    if let Some(pod) = &node {
        link = pod.link(Ns::Pod, &ifname)?;
        if let Some(l) = &link {
            // Link-local IPv6 addresses are the kernel's own, not the pod network's.
            addrs = pod
                .addrs(Ns::Pod, &ifname)?
                .into_iter()
                .filter(|a| !matches!(a, IpNet::V6(v6) if v6.addr().is_unicast_link_local()))
                .collect();
            host_end = pod.host_end(l)?;
        }
    }
    let container = ask.container.clone().or_else(|| owner_of(seen, &addrs));
    let reserved = container
        .as_deref()
        .map(|id| reserved(seen, id, &ifname))
        .unwrap_or_default();
    Ok(Some(Target {
        netns,
        node,
        ifname,
        link,
        host_end,
        container,
        addrs,
        reserved,
    }))
}
