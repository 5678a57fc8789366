//! The bridge and its ports: create-or-reuse, promisc, hairpin, MAC pinning.

use rtnetlink::{LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec};

use super::{error::errno_of, link::Key, NetError, Node, Ns};

impl Node {
    /// Create the bridge unless a link of that name exists (then it must be a bridge).
    /// `mtu` applies only on creation. The bridge is left down (a `LinkUp` op follows).
    pub(crate) async fn ensure_bridge(
        &self,
        name: &str,
        mtu: Option<u32>,
        promisc: bool,
    ) -> Result<(), NetError> {
        let link = match self.find(Ns::Host, Key::Name(name)).await? {
            Some(link) => link,
            None => {
                self.create_bridge(name, mtu).await?;
                self.find(Ns::Host, Key::Name(name)).await?.ok_or_else(|| {
                    NetError::from_errno(format!("find link {name}"), libc::ENODEV)
                })?
            }
        };
        if link.kind.as_deref() != Some("bridge") {
            return Err(NetError::NotABridge { name: name.into() });
        }
        if promisc && !link.promisc {
            let msg = LinkUnspec::new_with_index(link.index)
                .promiscuous(true)
                .build();
            let op = || format!("set {name} promisc on");
            self.change_link(Ns::Host, &link, msg, op, |l| l.promisc = true)
                .await?;
        }
        Ok(())
    }

    /// `RTM_NEWLINK` for a bridge; a parallel ADD winning the race (EEXIST) is fine, the
    /// caller re-reads the link and checks its kind.
    async fn create_bridge(&self, name: &str, mtu: Option<u32>) -> Result<(), NetError> {
        // Not `LinkBridge::new`: that one also sets the bridge up.
        let mut builder = LinkMessageBuilder::<LinkBridge>::new(name);
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        match self.host.handle.link().add(builder.build()).execute().await {
            Err(e) if errno_of(&e) != Some(libc::EEXIST) => {
                Err(NetError::netlink(format!("create bridge {name}"), e))
            }
            _ => Ok(()),
        }
    }

    /// Turn on hairpin mode of the bridge port `dev` (`IFLA_BRPORT_MODE` in the port's
    /// `IFLA_INFO_SLAVE_DATA`), so frames may leave through the port they came in on.
    pub(crate) async fn set_hairpin(&self, dev: &str) -> Result<(), NetError> {
        let port = self.require(Ns::Host, dev).await?;
        let msg = LinkBridgePort::new(port.index).hairpin(true).build();
        self.host
            .handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("set hairpin on {dev}"), e))?;
        self.changed(Ns::Host, dev, |l| l.hairpin = Some(true));
        Ok(())
    }

    /// Set the bridge MAC to its current value. The kernel then marks the address as
    /// user-set (`addr_assign_type` 3) and stops replacing it with the lowest port MAC.
    pub(crate) async fn pin_mac(&self, dev: &str) -> Result<(), NetError> {
        let op = format!("pin the mac of {dev}");
        // Read afresh: until pinned, the MAC follows the ports added since.
        let link = self
            .find(Ns::Host, Key::Name(dev))
            .await?
            .ok_or_else(|| NetError::from_errno(format!("find link {dev}"), libc::ENODEV))?;
        let Some(mac) = link.mac else {
            return Err(NetError::from_errno(op, libc::EADDRNOTAVAIL));
        };
        let msg = LinkUnspec::new_with_index(link.index)
            .address(mac.to_vec())
            .build();
        self.change_link(Ns::Host, &link, msg, || op, |l| l.mac = Some(mac))
            .await
    }
}
