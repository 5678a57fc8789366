//! Kernel changes as plain values.
//!
//! The plugin computes a `Vec<Op>` from the config and the IPAM allocation; `net::apply`
//! executes it (rolling back on failure) and `explain` prints it as iproute2 commands.
//! Nothing in here touches the kernel, so every plan is unit-testable without root.

use std::net::IpAddr;

use ipnet::IpNet;

/// Which network namespace an operation runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}
