//! The veth pair, created in one `RTM_NEWLINK` with its peer placed in the pod namespace.

use std::os::fd::AsRawFd;

use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute};
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
        // One TX and one RX queue for each end, asked for explicitly. Without them the
        // kernel allocates a queue per possible CPU and then cuts the real number to one
        // (`veth_init_queues`), and each cut waits for an expedited RCU grace period
        // while holding the RTNL lock: two per ADD, which every other link change on the
        // machine (parallel ADDs included) queued behind. One queue each is also what
        // the default ends up with.
        let mut peer_msg = LinkUnspec::new_with_name(peer)
            .setns_by_fd(pod.ns.as_raw_fd())
            .append_extra_attribute(LinkAttribute::NumTxQueues(1))
            .append_extra_attribute(LinkAttribute::NumRxQueues(1));
        let mut host_msg = LinkVeth::new(host, peer)
            .append_extra_attribute(LinkAttribute::NumTxQueues(1))
            .append_extra_attribute(LinkAttribute::NumRxQueues(1));
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
