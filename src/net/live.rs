//! The network namespaces this host can reach, for commands that look across pods
//! (`vnet ipam gc --netns`, `vnet doctor`).
//!
//! Reachable means bind-mounted under /run/netns or /var/run/netns (containerd, CRI-O,
//! podman, `ip netns`) or used by a running process (/proc/<pid>/ns/net). A namespace held
//! only by an open descriptor, or in another mount namespace, is invisible.

use std::collections::HashSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use ipnet::IpNet;
use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};

use super::{Link, NetError, Node, Ns};

/// Namespace files to look at, one per distinct namespace.
pub fn namespaces() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in ["/run/netns", "/var/run/netns"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            paths.extend(rd.filter_map(Result::ok).map(|e| e.path()));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        paths.extend(
            rd.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|e| e.path().join("ns/net")),
        );
    }
    let mut seen = HashSet::new();
    // stat follows /proc's magic links to the nsfs inode; a bind mount shows the same one.
    paths
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| seen.insert((m.dev(), m.ino()))))
        .collect()
}

/// A namespace or process that vanished while we looked is simply gone. EINVAL: not a
/// namespace file, e.g. a /run/netns entry between `ip netns add`'s create and mount, or
/// between `ip netns del`'s unmount and unlink; it holds no addresses.
pub fn vanished(e: &NetError) -> bool {
    e.netns_gone()
        || matches!(
            e.errno(),
            Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EINVAL)
        )
}

/// Opens `path` to read it: as the pod side, or as the host side when it is the namespace
/// this command runs in (the plugin refuses that as a pod's, which is right for the plugin
/// and wrong here). `None` when it vanished.
pub fn open_to_read(path: &Path) -> Result<Option<(Node, Ns)>, NetError> {
    match Node::open(Some(path)) {
        Ok(n) => Ok(Some((n, Ns::Pod))),
        Err(NetError::OwnNamespace { .. }) => Node::open(None).map(|n| Some((n, Ns::Host))),
        Err(e) if vanished(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A pod whose veth is a port of the node's bridge, found from the node's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePod {
    /// A file of its namespace (a /run/netns entry, or /proc/<pid>/ns/net).
    pub netns: PathBuf,
    /// The veth end on the node, a port of the bridge.
    pub host_veth: String,
    /// Its interface in the pod, and the addresses on it.
    pub ifname: String,
    pub addrs: Vec<IpNet>,
}

impl Node {
    /// The pods attached to `bridge`: each veth port's peer lives in a namespace the node
    /// knows by an nsid (`link-netnsid`); each reachable namespace file is asked for its
    /// nsid (`RTM_GETNSID` with its descriptor) and matched. Ifindexes alone would not do:
    /// every namespace numbers its links from 1, so two nodes' pods look alike.
    pub fn bridge_pods(&self, bridge: &str) -> Result<Vec<BridgePod>, NetError> {
        let Some(br) = self.link(Ns::Host, bridge)? else {
            return Ok(Vec::new());
        };
        let ports: Vec<Link> = self
            .links(Ns::Host)?
            .into_iter()
            .filter(|l| l.master == Some(br.index) && l.peer_netnsid.is_some())
            .collect();
        let mut pods = Vec::new();
        if ports.is_empty() {
            return Ok(pods);
        }
        for path in namespaces() {
            let Ok(file) = super::netns::open(&path) else {
                continue; // gone meanwhile, or not a namespace
            };
            let Some(id) = self.block_on(self.nsid_of(&file))? else {
                continue;
            };
            let Some(port) = ports.iter().find(|p| p.peer_netnsid == Some(id)) else {
                continue;
            };
            let pod = match Node::open(Some(&path)) {
                Ok(pod) => pod,
                Err(e) if vanished(&e) => continue,
                Err(e) => return Err(e),
            };
            let Some(peer) = port.peer_index else {
                continue;
            };
            let Some(link) = pod.link_by_index(Ns::Pod, peer)? else {
                continue;
            };
            pods.push(BridgePod {
                netns: path,
                host_veth: port.name.clone(),
                addrs: pod.addrs(Ns::Pod, &link.name).unwrap_or_default(),
                ifname: link.name,
            });
        }
        Ok(pods)
    }

    /// The nsid the node namespace has for the namespace `file` is, if it gave it one.
    async fn nsid_of(&self, file: &File) -> Result<Option<i32>, NetError> {
        let mut msg = NsidMessage::default();
        msg.attributes = vec![NsidAttribute::Fd(file.as_raw_fd() as u32)];
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::GetNsId(msg));
        req.header.flags = NLM_F_REQUEST;
        let mut answers = self
            .host
            .handle
            .clone()
            .request(req)
            .map_err(|e| NetError::netlink("get nsid", e))?;
        while let Some(answer) = answers.next().await {
            match answer.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNsId(m)) => {
                    return Ok(m.attributes.iter().find_map(|a| match a {
                        NsidAttribute::Id(id) if *id >= 0 => Some(*id),
                        _ => None,
                    }));
                }
                NetlinkPayload::Error(e) => {
                    return Err(NetError::netlink(
                        "get nsid",
                        rtnetlink::Error::NetlinkError(e),
                    ))
                }
                _ => {}
            }
        }
        Ok(None)
    }
}

impl Node {
    /// The node's end of the pod's veth `pod_link` (read through this node's pod side),
    /// wherever it is attached: the link at the pod link's peer index whose own peer is
    /// the pod link, in the pod's namespace.
    pub fn host_end(&self, pod_link: &Link) -> Result<Option<Link>, NetError> {
        let (Some(index), Some(pod)) = (pod_link.peer_index, self.pod.as_ref()) else {
            return Ok(None);
        };
        let Some(host) = self.link_by_index(Ns::Host, index)? else {
            return Ok(None);
        };
        let nsid = self.block_on(self.nsid_of(&pod.ns))?;
        let same =
            host.peer_index == Some(pod_link.index) && nsid.is_some() && host.peer_netnsid == nsid;
        Ok(same.then_some(host))
    }
}

/// `NET_ADDR_SET` in `/sys/class/net/<dev>/addr_assign_type`: the MAC was set explicitly.
const NET_ADDR_SET: &str = "3";

impl Node {
    /// Whether the MAC of `link` (a host-side link) was set explicitly rather than picked
    /// by the kernel, which for a bridge means it no longer follows its ports. netlink does
    /// not carry `addr_assign_type`; sysfs does, but sysfs shows the namespace it was
    /// mounted in (`ip netns exec` remounts it), so the answer counts only when sysfs's
    /// ifindex for that name is this link's. `None`: cannot tell from here.
    pub fn mac_set_explicitly(&self, link: &Link) -> Option<bool> {
        let dir = Path::new("/sys/class/net").join(&link.name);
        let read = |f: &str| {
            crate::files::read_path(&dir.join(f), 64)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        };
        if read("ifindex")? != link.index.to_string() {
            return None;
        }
        Some(read("addr_assign_type")? == NET_ADDR_SET)
    }
}
