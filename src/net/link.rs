//! Reading links, deleting them, and the small per-link changes (up, master, promisc).

use futures::TryStreamExt;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridgePort, InfoPortData, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::LinkUnspec;

use super::{error::errno_of, ns_suffix, NetError, Node, Ns};

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "bridge", "veth", ... (`None` for e.g. `lo`).
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Index of the master (bridge) this link is enslaved to.
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's index (in the peer's namespace).
    pub peer_index: Option<u32>,
    /// Promiscuous mode as set by a user (not the bridge-port implied one).
    pub promisc: bool,
    /// Bridge-port hairpin mode, when the link is a bridge port.
    pub hairpin: Option<bool>,
    /// `IFLA_LINK_NETNSID`: for a veth whose peer is in another namespace, the id this
    /// namespace gave that one (`ip link` prints it as `link-netnsid`).
    pub peer_netnsid: Option<i32>,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            master: None,
            peer_index: None,
            promisc: msg.header.flags.contains(LinkFlags::Promisc),
            hairpin: None,
            peer_netnsid: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name.clone(),
                LinkAttribute::Address(mac) => link.mac = <[u8; 6]>::try_from(&mac[..]).ok(),
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::Controller(index) => link.master = Some(*index),
                LinkAttribute::Link(index) => link.peer_index = Some(*index),
                LinkAttribute::LinkInfo(infos) => link.read_info(infos),
                LinkAttribute::LinkNetNsId(id) => link.peer_netnsid = Some(*id),
                _ => {}
            }
        }
        link
    }

    fn read_info(&mut self, infos: &[LinkInfo]) {
        for info in infos {
            match info {
                LinkInfo::Kind(kind) => self.kind = Some(kind.to_string()),
                LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                    self.hairpin = port.iter().find_map(|a| match a {
                        InfoBridgePort::HairpinMode(on) => Some(*on),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
    }
}

/// How to find a link.
#[derive(Clone, Copy)]
pub(crate) enum Key<'a> {
    Name(&'a str),
    Index(u32),
}

impl Node {
    /// The link called `name` in `ns`, if any, as the kernel has it now.
    pub fn link(&self, ns: Ns, name: &str) -> Result<Option<Link>, NetError> {
        self.block_on(self.find(ns, Key::Name(name)))
    }

    /// The link called `name` as this invocation last read or changed it, asking the kernel
    /// only if it has not seen it yet. For what does not change behind our back within one
    /// call (index, MACs of the links it made); `link` for everything else.
    pub fn known_link(&self, ns: Ns, name: &str) -> Result<Option<Link>, NetError> {
        match self.remembered(ns, name) {
            Some(link) => Ok(Some(link)),
            None => self.link(ns, name),
        }
    }

    /// The link with ifindex `index` in `ns`, if any.
    pub fn link_by_index(&self, ns: Ns, index: u32) -> Result<Option<Link>, NetError> {
        self.block_on(self.find(ns, Key::Index(index)))
    }

    /// Every link of `ns`.
    pub fn links(&self, ns: Ns) -> Result<Vec<Link>, NetError> {
        self.block_on(async {
            let msgs: Vec<LinkMessage> = self
                .handle(ns)?
                .link()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| NetError::netlink(format!("list links{}", ns_suffix(ns)), e))?;
            Ok(msgs.iter().map(Link::from_message).collect())
        })
    }

    /// Delete the link `name` in `ns`. `Ok(false)` if it was not there.
    pub fn del_link(&self, ns: Ns, name: &str) -> Result<bool, NetError> {
        self.block_on(self.delete_link(ns, name))
    }

    /// Asks the kernel, and remembers the answer.
    pub(crate) async fn find(&self, ns: Ns, key: Key<'_>) -> Result<Option<Link>, NetError> {
        let request = self.handle(ns)?.link().get();
        let (request, what) = match key {
            Key::Name(name) => (request.match_name(name), name.to_string()),
            Key::Index(index) => (request.match_index(index), format!("index {index}")),
        };
        let found = match request.execute().try_next().await {
            Ok(msg) => msg.as_ref().map(Link::from_message),
            Err(e) if is_missing(&e) => None,
            Err(e) => {
                return Err(NetError::netlink(
                    format!("get link {what}{}", ns_suffix(ns)),
                    e,
                ))
            }
        };
        if let Some(link) = &found {
            self.remember(ns, link.clone());
        }
        Ok(found)
    }

    /// A link by name for a change to it: remembered, or else looked up (a missing link is
    /// an `ENODEV` error). Saves the `RTM_GETLINK` round trip each step of a plan would
    /// otherwise make for the same few links. An index that went stale because someone
    /// deleted the link meanwhile makes the change fail with ENODEV, as a fresh lookup an
    /// instant earlier would have.
    pub(crate) async fn require(&self, ns: Ns, name: &str) -> Result<Link, NetError> {
        if let Some(link) = self.remembered(ns, name) {
            return Ok(link);
        }
        self.find(ns, Key::Name(name)).await?.ok_or_else(|| {
            NetError::from_errno(format!("find link {name}{}", ns_suffix(ns)), libc::ENODEV)
        })
    }

    fn remembered(&self, ns: Ns, name: &str) -> Option<Link> {
        self.known.borrow().get(&(ns, name.to_string())).cloned()
    }

    pub(crate) fn remember(&self, ns: Ns, link: Link) {
        self.known
            .borrow_mut()
            .insert((ns, link.name.clone()), link);
    }

    /// Every change to a link's attributes goes through here: `RTM_NEWLINK` for `link`,
    /// then, once the kernel acknowledged it, `update` applied to the remembered copy, so
    /// what this call remembers never disagrees with what it did. Links it creates are
    /// not remembered until read (`find`), and addresses are not part of `Link`.
    pub(crate) async fn change_link(
        &self,
        ns: Ns,
        link: &Link,
        msg: LinkMessage,
        op: impl FnOnce() -> String,
        update: impl FnOnce(&mut Link),
    ) -> Result<(), NetError> {
        self.handle(ns)?
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| NetError::netlink(format!("{}{}", op(), ns_suffix(ns)), e))?;
        self.changed(ns, &link.name, update);
        Ok(())
    }

    /// Applies a change the kernel acknowledged to the remembered link, if any: for
    /// `change_link`, and the one change that is not an `RTM_NEWLINK` of the link itself
    /// (a bridge port's hairpin flag).
    pub(crate) fn changed(&self, ns: Ns, name: &str, f: impl FnOnce(&mut Link)) {
        if let Some(link) = self.known.borrow_mut().get_mut(&(ns, name.to_string())) {
            f(link);
        }
    }

    pub(crate) async fn delete_link(&self, ns: Ns, name: &str) -> Result<bool, NetError> {
        let Some(link) = self.find(ns, Key::Name(name)).await? else {
            return Ok(false);
        };
        self.known.borrow_mut().remove(&(ns, name.to_string()));
        match self.handle(ns)?.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            // Gone in between (e.g. its veth peer's namespace was just deleted).
            Err(e) if is_missing(&e) => Ok(false),
            Err(e) => Err(NetError::netlink(
                format!("delete link {name}{}", ns_suffix(ns)),
                e,
            )),
        }
    }

    /// Up, unless this call has already seen it up (the bridge on every ADD but the first).
    pub(crate) async fn set_up(&self, ns: Ns, name: &str) -> Result<(), NetError> {
        let link = self.require(ns, name).await?;
        if link.up {
            return Ok(());
        }
        let msg = LinkUnspec::new_with_index(link.index).up().build();
        self.change_link(ns, &link, msg, || format!("set {name} up"), |l| l.up = true)
            .await
    }

    /// Enslave `dev` to `master` (host namespace).
    /// IPv6 address generation mode `none`: no link-local address when the link comes up.
    /// The kernel takes `IFLA_AF_SPEC` only on a link that exists (EAFNOSUPPORT when
    /// creating one), so this is a request of its own after the veth's creation.
    pub(crate) async fn no_link_local(&self, dev: &str) -> Result<(), NetError> {
        let port = self.require(Ns::Host, dev).await?;
        let mode = AfSpecInet6::AddrGenMode(In6AddrGenMode::None);
        let msg = LinkUnspec::new_with_index(port.index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![mode],
            )]))
            .build();
        let set = self.change_link(
            Ns::Host,
            &port,
            msg,
            || format!("set {dev} addrgenmode none"),
            |_| {},
        );
        match set.await {
            // A kernel booted with ipv6.disable=1 has no IPv6 to configure on any link.
            Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => Ok(()),
            r => r,
        }
    }

    pub(crate) async fn set_master(&self, dev: &str, master: &str) -> Result<(), NetError> {
        let port = self.require(Ns::Host, dev).await?;
        let bridge = self.require(Ns::Host, master).await?;
        let msg = LinkUnspec::new_with_index(port.index)
            .controller(bridge.index)
            .build();
        self.change_link(
            Ns::Host,
            &port,
            msg,
            || format!("set {dev} master {master}"),
            |l| l.master = Some(bridge.index),
        )
        .await
    }
}

/// The kernel answers ENODEV for an unknown name/index (ENOENT from some paths).
pub(crate) fn is_missing(err: &rtnetlink::Error) -> bool {
    matches!(errno_of(err), Some(libc::ENODEV) | Some(libc::ENOENT))
}
