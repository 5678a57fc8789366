//! Interface addresses: listing, adding, and the bridge gateway address rule.

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};

use super::{error::errno_of, ns_suffix, NetError, Node, Ns};

/// Whether the kernel runs duplicate address detection on a new IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dad {
    /// As the interface's `accept_dad` says (the pod's: see the plan's sysctls).
    AsConfigured,
    /// `IFA_F_NODAD`: the address is usable at once.
    Skip,
}

impl Node {
    /// Every address on `dev` in `ns` (global and link-local; the caller filters).
    pub fn addrs(&self, ns: Ns, dev: &str) -> Result<Vec<IpNet>, NetError> {
        self.block_on(async {
            let msgs = self.addr_messages(ns, dev).await?;
            Ok(msgs.iter().filter_map(addr_of).collect())
        })
    }

    async fn addr_messages(&self, ns: Ns, dev: &str) -> Result<Vec<AddressMessage>, NetError> {
        let link = self.require(ns, dev).await?;
        let mut request = self.handle(ns)?.address().get();
        // The kernel's filter (strict checking, see conn.rs); rtnetlink's own filter below
        // stays as a guard.
        request.message_mut().header.index = link.index;
        request
            .set_link_index_filter(link.index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetError::netlink(format!("list addresses of {dev}{}", ns_suffix(ns)), e))
    }

    /// Add `addr` to `dev`. `nodad` skips IPv6 duplicate address detection so the address
    /// is usable at once instead of tentative for about a second.
    pub(crate) async fn add_addr(
        &self,
        ns: Ns,
        dev: &str,
        addr: IpNet,
        dad: Dad,
    ) -> Result<(), NetError> {
        let link = self.require(ns, dev).await?;
        let mut request =
            self.handle(ns)?
                .address()
                .add(link.index, addr.addr(), addr.prefix_len());
        if dad == Dad::Skip && addr.addr().is_ipv6() {
            request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        request.execute().await.map_err(|e| {
            NetError::netlink(format!("add address {addr} to {dev}{}", ns_suffix(ns)), e)
        })
    }

    /// Make sure the bridge `dev` holds `wanted`; see `Op::EnsureBridgeAddr`.
    pub(crate) async fn ensure_bridge_addr(
        &self,
        dev: &str,
        wanted: IpNet,
        force: bool,
    ) -> Result<(), NetError> {
        let msgs = self.addr_messages(Ns::Host, dev).await?;
        if msgs.iter().any(|m| addr_of(m) == Some(wanted)) {
            return Ok(());
        }
        let mut in_the_way = Vec::new();
        for msg in msgs {
            let Some(existing) = addr_of(&msg) else {
                continue;
            };
            if conflicts(existing, wanted) {
                if !force {
                    return Err(NetError::BridgeAddrConflict {
                        dev: dev.into(),
                        existing,
                        wanted,
                    });
                }
                in_the_way.push((existing, msg));
            }
        }
        for (existing, msg) in in_the_way {
            match self.host.handle.address().del(msg).execute().await {
                Err(e) if errno_of(&e) != Some(libc::EADDRNOTAVAIL) => {
                    return Err(NetError::netlink(
                        format!("delete address {existing} from {dev}"),
                        e,
                    ))
                }
                _ => {}
            }
        }
        match self.add_addr(Ns::Host, dev, wanted, Dad::Skip).await {
            // A parallel ADD put the same address there first.
            Err(e) if e.errno() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }
}

/// Whether an existing bridge address stands in the way of the gateway address `wanted`:
/// any other IPv4 address does; an IPv6 one only if the two prefixes overlap.
pub(crate) fn conflicts(existing: IpNet, wanted: IpNet) -> bool {
    match (existing, wanted) {
        (IpNet::V4(_), IpNet::V4(_)) => existing != wanted,
        (IpNet::V6(_), IpNet::V6(_)) => {
            existing != wanted
                && (existing.contains(&wanted.addr()) || wanted.contains(&existing.addr()))
        }
        _ => false,
    }
}

/// The address (with its prefix length) an `RTM_NEWADDR` message describes. IPv4 puts
/// the interface's own address in `IFA_LOCAL` (`IFA_ADDRESS` is the peer on point-to-point
/// links); IPv6 only sends `IFA_ADDRESS` unless a peer is set.
fn addr_of(msg: &AddressMessage) -> Option<IpNet> {
    let find = |want_local: bool| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if want_local => Some(*ip),
            AddressAttribute::Address(ip) if !want_local => Some(*ip),
            _ => None,
        })
    };
    let ip: IpAddr = find(true).or_else(|| find(false))?;
    IpNet::new(ip, msg.header.prefix_len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn any_other_ipv4_address_conflicts() {
        assert!(conflicts(net("10.9.9.1/24"), net("10.244.1.1/24")));
        assert!(conflicts(net("10.244.1.1/16"), net("10.244.1.1/24")));
        assert!(!conflicts(net("10.244.1.1/24"), net("10.244.1.1/24")));
    }

    #[test]
    fn ipv6_conflicts_only_when_prefixes_overlap() {
        assert!(!conflicts(net("fd00:1::1/64"), net("fd00:2::1/64")));
        assert!(conflicts(net("fd00:1::5/64"), net("fd00:1::1/64")));
        assert!(conflicts(net("fd00::1/48"), net("fd00:0:0:7::1/64")));
        assert!(!conflicts(net("fe80::1/64"), net("fd00::1/64")));
    }

    #[test]
    fn families_never_conflict() {
        assert!(!conflicts(net("10.0.0.1/24"), net("fd00::1/64")));
        assert!(!conflicts(net("fd00::1/64"), net("10.0.0.1/24")));
    }
}
