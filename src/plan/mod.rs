//! Kernel changes as plain values: the one place that knows what a node should look like.
//!
//! `build` turns the typed config and the IPAM allocation into a `Vec<Op>` (and shapes the
//! result), `masq` adds the masquerade op, `net::apply` executes the ops (rolling back on
//! failure), and `render` prints them as the iproute2 and nft commands a person would type
//! (`vnet explain`, `VNET_TRACE`). Nothing in here touches the kernel, so every plan is
//! unit-testable without root.

use std::net::IpAddr;

use ipnet::IpNet;

pub mod build;
pub mod masq;
pub mod render;

pub use masq::{masq_rule_comment, masq_set, rule_exclusions};

/// Which network namespace an operation runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ns {
    /// The namespace the plugin was started in (the node).
    Host,
    /// The pod's namespace (`CNI_NETNS`).
    Pod,
}

/// One kernel change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create the bridge unless a link of that name exists; fail if that link is not a bridge.
    /// `mtu` only applies when the bridge is created (an existing bridge keeps its MTU).
    EnsureBridge {
        name: String,
        mtu: Option<u32>,
        promisc: bool,
    },
    /// Create a veth pair in one message: `host` in the host namespace, `peer` straight in
    /// the pod namespace, so the pod end never appears on the node.
    AddVeth {
        host: String,
        peer: String,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
    },
    /// Enslave `dev` to the bridge `master` (host namespace).
    SetMaster { dev: String, master: String },
    /// Bridge-port hairpin mode on `dev` (host namespace).
    SetHairpin { dev: String },
    /// No IPv6 link-local address on `dev` (host namespace), a bridge port: IPv6 address
    /// generation mode `none`, set before the link comes up.
    NoLinkLocal { dev: String },
    /// Set a link administratively up.
    LinkUp { ns: Ns, dev: String },
    /// Write `value` to `/proc/sys/<key>` in `ns`, e.g. key `net/ipv4/conf/eth0/arp_notify`.
    Sysctl {
        ns: Ns,
        key: String,
        value: String,
        /// Some sysctls do not exist on every kernel (IPv6 disabled): then failure is fine.
        optional: bool,
    },
    /// Add an address to a link.
    AddAddr { ns: Ns, dev: String, addr: IpNet },
    /// Make sure the bridge holds `addr` (the pods' gateway). Tolerates the address already
    /// being there (parallel ADDs race for it). A conflicting address (any other IPv4
    /// address; an overlapping IPv6 prefix) is an error unless `force`, which replaces it.
    EnsureBridgeAddr {
        dev: String,
        addr: IpNet,
        force: bool,
    },
    /// Set the bridge MAC to its current value so it stops following its lowest port's MAC.
    PinMac { dev: String },
    /// Add a route; `gw` None means a link-scope route through `dev`.
    AddRoute {
        ns: Ns,
        dst: IpNet,
        gw: Option<IpAddr>,
        dev: String,
    },
    /// Delete a link; a missing link is not an error (DEL is idempotent).
    DelLink { ns: Ns, dev: String },
    /// Route to another node's pod subnet via that node's IP, in the host namespace's
    /// main table, marked with [`VNET_ROUTE_PROTO`] so vnet only ever removes its own.
    /// A route already there (a parallel ADD's sync) is success.
    AddNodeRoute { dst: IpNet, gw: IpAddr },
    /// Point a vnet route at a new gateway (a node changed its IP).
    ReplaceNodeRoute {
        dst: IpNet,
        gw: IpAddr,
        previous: IpAddr,
    },
    /// Remove a vnet route (its subnet left the node table). The kernel only deletes a
    /// route of protocol [`VNET_ROUTE_PROTO`], so a foreign route is never hit.
    DelNodeRoute { dst: IpNet, gw: Option<IpAddr> },
    /// Masquerade traffic from `srcs` (the pod's addresses) to anything outside
    /// `exclude` (the pod network), in vnet's own nftables table: the addresses become
    /// elements of the network's pod sets, each carrying `tag` as its comment so DEL and
    /// GC find it without the pod namespace. The first pod of a network also makes the
    /// sets and the network's one rule per family (with `exclude`).
    AddMasquerade {
        network: String,
        srcs: Vec<IpAddr>,
        exclude: Vec<IpNet>,
        tag: String,
    },
    /// Remove the attachment's elements: by address when the store still knew them
    /// (`addrs`), else by `tag`; also a rule of the per-pod layout of older vnet whose
    /// comment is `tag`. None is not an error.
    DelMasquerade {
        network: String,
        addrs: Vec<IpAddr>,
        tag: String,
    },
}

/// The route protocol number vnet marks its node routes with (`ip route ... proto 118`;
/// 118 is ASCII `v`, unassigned in iproute2's `rt_protos`).
pub const VNET_ROUTE_PROTO: u8 = 118;

/// vnet's nftables table (family `inet`: one table for IPv4 and IPv6) and its chain.
pub const NFT_FAMILY: &str = "inet";
pub const NFT_TABLE: &str = "vnet";
pub const NFT_CHAIN: &str = "postrouting";

/// FNV-1a 64 over the parts, each followed by a NUL so ("ab","c") ≠ ("a","bc").
pub fn fnv1a(parts: &[&str]) -> u64 {
    crate::hash::fnv1a64(parts.iter().flat_map(|p| p.bytes().chain([0])))
}

impl Op {
    /// The operation that undoes this one during ADD rollback, if it leaves anything
    /// behind on its own. Pod-side addresses, routes and sysctls go away with the veth;
    /// the bridge, its gateway address and forwarding are shared by every pod on the
    /// node and are deliberately kept (deleting them races with parallel ADDs).
    pub fn undo(&self) -> Option<Op> {
        match self {
            Op::AddVeth { host, .. } => Some(Op::DelLink {
                ns: Ns::Host,
                dev: host.clone(),
            }),
            Op::AddNodeRoute { dst, gw } => Some(Op::DelNodeRoute {
                dst: *dst,
                gw: Some(*gw),
            }),
            Op::ReplaceNodeRoute { dst, gw, previous } => Some(Op::ReplaceNodeRoute {
                dst: *dst,
                gw: *previous,
                previous: *gw,
            }),
            Op::DelNodeRoute { dst, gw: Some(gw) } => Some(Op::AddNodeRoute { dst: *dst, gw: *gw }),
            Op::AddMasquerade {
                network, srcs, tag, ..
            } => Some(Op::DelMasquerade {
                network: network.clone(),
                addrs: srcs.clone(),
                tag: tag.clone(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_veth_is_undone() {
        let veth = Op::AddVeth {
            host: "veth01234567".into(),
            peer: "eth0".into(),
            mtu: None,
            peer_mac: None,
        };
        assert_eq!(
            veth.undo(),
            Some(Op::DelLink {
                ns: Ns::Host,
                dev: "veth01234567".into()
            })
        );
        let br = Op::EnsureBridge {
            name: "v-net-0".into(),
            mtu: None,
            promisc: false,
        };
        assert_eq!(br.undo(), None);
    }

    #[test]
    fn node_routes_and_masquerade_undo_each_other() {
        let dst: IpNet = "10.244.2.0/24".parse().unwrap();
        let gw: IpAddr = "192.168.1.12".parse().unwrap();
        let old: IpAddr = "192.168.1.99".parse().unwrap();
        let add = Op::AddNodeRoute { dst, gw };
        let del = Op::DelNodeRoute { dst, gw: Some(gw) };
        assert_eq!(add.undo(), Some(del.clone()));
        assert_eq!(del.undo(), Some(add));
        assert_eq!(Op::DelNodeRoute { dst, gw: None }.undo(), None);
        let rep = Op::ReplaceNodeRoute {
            dst,
            gw,
            previous: old,
        };
        assert_eq!(
            rep.undo(),
            Some(Op::ReplaceNodeRoute {
                dst,
                gw: old,
                previous: gw
            })
        );
        let ip: IpAddr = "10.244.1.2".parse().unwrap();
        let masq = Op::AddMasquerade {
            network: "v-net".into(),
            srcs: vec![ip],
            exclude: vec!["10.244.0.0/16".parse().unwrap()],
            tag: "vnet v-net c1 eth0".into(),
        };
        let del = Op::DelMasquerade {
            network: "v-net".into(),
            addrs: vec![ip],
            tag: "vnet v-net c1 eth0".into(),
        };
        assert_eq!(masq.undo(), Some(del.clone()));
        assert_eq!(del.undo(), None);
    }

    #[test]
    fn masquerade_set_names_are_readable_and_distinct() {
        assert!(masq_set("v-net", false).starts_with("pods4_v_net_"));
        assert!(masq_set("v-net", true).starts_with("pods6_v_net_"));
        // Same readable part, different networks.
        assert_ne!(masq_set("v-net", false), masq_set("v_net", false));
        let long = masq_set(&"n".repeat(200), false);
        assert!(long.len() < 64, "{long}");
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
    }
}
