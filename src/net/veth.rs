//! The veth pair, created in one `RTM_NEWLINK` with its peer placed in the pod namespace.

use std::os::fd::AsRawFd;

use netlink_packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkUnspec, LinkVeth};

use super::{NetError, Node, Ns};

impl Node {
    /// `host` appears in the host namespace; `peer` is created directly in the pod
    /// namespace through the peer message's `IFLA_NET_NS_FD`, so it never exists on the
    /// host (no rename or move, and no name clash with a host `eth0`).
    pub(crate) async fn add_veth(
        &self,
        host: &str,
        peer: &str,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<(), NetError> {
        let pod = self.side(Ns::Pod)?;
        let mut peer_msg = LinkUnspec::new_with_name(peer).setns_by_fd(pod.ns.as_raw_fd());
        let mut host_msg = LinkVeth::new(host, peer);
        if let Some(mtu) = mtu {
            peer_msg = peer_msg.mtu(mtu);
            host_msg = host_msg.mtu(mtu);
        }
        if let Some(mac) = peer_mac {
            peer_msg = peer_msg.address(mac.to_vec());
        }
        let msg = host_msg
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build())))
            .build();
        // `pod.ns` stays open until the request is answered: it borrows from `self`.
        self.host
            .handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("add veth {host} peer {peer}"), e))
    }
}
