//! Masquerade in vnet's own nftables table, through netlink (`nft.rs`): one rule per
//! network and family, and a set of the network's pod addresses.
//!
//! ```text
//! table inet vnet {
//!   set pods4_v_net_1a2b3c4d {
//!     type ipv4_addr
//!     elements = { 10.244.1.2 comment "vnet v-net c1 eth0", … }
//!   }
//!   chain postrouting {
//!     type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr @pods4_v_net_1a2b3c4d ip daddr != 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade comment "vnet v-net"
//!   }
//! }
//! ```
//!
//! ADD adds one element, DEL removes one by its address (or, when the store no longer
//! knows it, by the attachment's tag in the element's comment), so the packet path does
//! one set lookup however many pods the node runs, and neither call lists the pods.
//! Older vnet wrote one rule per pod with the tag as the rule's comment; DEL and GC still
//! find and remove those, so a node upgraded with pods running leaks nothing.

use std::cell::RefMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nix::errno::Errno;

use crate::plan::{masq_rule_comment, masq_set, NFT_CHAIN, NFT_TABLE};

use super::nft::{NftResult, NftSock};
use super::nft_wire::{self as wire, Family, Names};
use super::{netns, NetError, Node};

const NAMES: Names<'static> = Names {
    table: NFT_TABLE,
    chain: NFT_CHAIN,
};

/// Multicast is never masqueraded: rewriting its source breaks protocols that reply to
/// the sender.
const MCAST4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4);
const MCAST6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8);

/// Messages per transaction where a call may send many (GC of older vnet's rules).
const BATCH: usize = 50;

fn set_name(network: &str, f: Family) -> String {
    masq_set(network, f == Family::V6)
}

/// The families present in `ips`, IPv4 first.
fn families(ips: &[IpAddr]) -> Vec<Family> {
    [Family::V4, Family::V6]
        .into_iter()
        .filter(|f| ips.iter().any(|ip| Family::of(*ip) == *f))
        .collect()
}

fn nft_err(op: String, e: Errno) -> NetError {
    NetError::from_errno(op, e as i32)
}

impl Node {
    /// The netfilter socket, made on first use in the node namespace (on a thread that
    /// entered it, so a `Node` moved to another thread still changes the right one).
    fn nft(&self) -> Result<RefMut<'_, NftSock>, NetError> {
        let mut slot = self.nft.borrow_mut();
        if slot.is_none() {
            let sock = netns::run_in(&self.host.ns, NftSock::open)
                .map_err(|e| NetError::Namespace(e.describe("host")))?
                .map_err(|e| NetError::Namespace(format!("open a netfilter socket: {e}")))?;
            *slot = Some(sock);
        }
        RefMut::filter_map(slot, Option::as_mut)
            .map_err(|_| NetError::Namespace("no netfilter socket".into()))
    }

    /// Adds the pod's addresses to the network's sets, tagged. One transaction when the
    /// network's sets exist; else one that makes table, chain, set and rule first. The
    /// set is created exclusively, so of two first pods racing exactly one adds the
    /// rule and the other, refused with EEXIST, just adds its elements.
    pub(crate) fn add_masquerade(
        &self,
        network: &str,
        srcs: &[IpAddr],
        exclude: &[IpNet],
        tag: &str,
    ) -> Result<(), NetError> {
        let op = || format!("add masquerade elements {tag:?}");
        for f in families(srcs) {
            let set = set_name(network, f);
            let ips: Vec<IpAddr> = srcs
                .iter()
                .copied()
                .filter(|ip| Family::of(*ip) == f)
                .collect();
            let elems: Vec<(IpAddr, Option<&str>)> =
                ips.iter().map(|ip| (*ip, Some(tag))).collect();
            let mut sock = self.nft()?;
            let add = |sock: &mut NftSock| {
                sock.transact(|seq| vec![wire::set_elems(&NAMES, &set, &elems, false, seq)])
            };
            match add(&mut sock) {
                Ok(()) => continue,
                // No table or no set yet: this is the network's first pod of this family.
                Err(Errno::ENOENT) => {
                    match create_layout(&mut sock, network, f, exclude, &set, &elems) {
                        Ok(()) => continue,
                        Err(Errno::EEXIST) => add(&mut sock),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            }
            .or_else(|e| match e {
                // An element left by a pod that never got its DEL: its address is this
                // pod's now (the store says so), and so is the element.
                Errno::EEXIST => sock.transact(|seq| {
                    vec![
                        wire::set_elems(&NAMES, &set, &addrs_only(&ips), true, seq),
                        wire::set_elems(&NAMES, &set, &elems, false, seq + 1),
                    ]
                }),
                e => Err(e),
            })
            .map_err(|e| nft_err(op(), e))?;
        }
        Ok(())
    }

    /// Removes the attachment's elements (by address, else by tag) and any rule of the
    /// old per-pod layout tagged for it; returns how many it removed.
    pub(crate) fn del_masquerade(
        &self,
        network: &str,
        addrs: &[IpAddr],
        tag: &str,
    ) -> Result<usize, NetError> {
        let op = || format!("delete masquerade elements {tag:?}");
        let mut removed = 0;
        // An empty tag (an element someone added without a comment) is looked for by
        // address only: it must never match every comment-less rule or element.
        let tagged = !tag.is_empty();
        let mut by_tag = addrs.is_empty() && tagged;
        for f in families(addrs) {
            let set = set_name(network, f);
            let ips: Vec<IpAddr> = addrs
                .iter()
                .copied()
                .filter(|ip| Family::of(*ip) == f)
                .collect();
            let mut sock = self.nft()?;
            match sock
                .transact(|seq| vec![wire::set_elems(&NAMES, &set, &addrs_only(&ips), true, seq)])
            {
                Ok(()) => removed += ips.len(),
                // Not there (already gone, or never added): look by tag, which also
                // catches an address the store did not know.
                Err(Errno::ENOENT) => by_tag = tagged,
                Err(e) => return Err(nft_err(op(), e)),
            }
        }
        if by_tag {
            for (f, ip) in self
                .masquerade_elements(network)?
                .into_iter()
                .filter_map(|(ip, t)| (t.as_deref() == Some(tag)).then_some((Family::of(ip), ip)))
            {
                let set = set_name(network, f);
                match self
                    .nft()?
                    .transact(|seq| vec![wire::set_elems(&NAMES, &set, &[(ip, None)], true, seq)])
                {
                    Ok(()) => removed += 1,
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(nft_err(op(), e)),
                }
            }
        }
        if tagged {
            removed += self.del_legacy_rules(|comment| comment == tag)?;
        }
        Ok(removed)
    }

    /// Which of the network's sets exist (IPv4, IPv6): the first pod of a family makes
    /// its set and rule, later ones only add an element (for `vnet explain`).
    pub fn masquerade_sets(&self, network: &str) -> Result<(bool, bool), NetError> {
        let mut has = [false; 2];
        for (i, f) in [Family::V4, Family::V6].into_iter().enumerate() {
            let set = set_name(network, f);
            match self.nft()?.request(
                wire::MSG_NEWSET,
                |seq| wire::get_set(&NAMES, &set, seq),
                false,
            ) {
                Ok(found) => has[i] = !found.is_empty(),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(nft_err(format!("get set {set}"), e)),
            }
        }
        Ok((has[0], has[1]))
    }

    /// Every element (address, tag) of the network's two sets; none when absent.
    pub fn masquerade_elements(
        &self,
        network: &str,
    ) -> Result<Vec<(IpAddr, Option<String>)>, NetError> {
        let mut out = Vec::new();
        for f in [Family::V4, Family::V6] {
            let set = set_name(network, f);
            let dump = self.nft()?.request(
                wire::MSG_NEWSETELEM,
                |seq| wire::get_set_elems(&NAMES, &set, seq),
                true,
            );
            match dump {
                Ok(msgs) => out.extend(msgs.iter().flat_map(|m| wire::parse_set_elems(m))),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(nft_err(format!("list set {set}"), e)),
            }
        }
        Ok(out)
    }

    /// Rules of vnet's chain whose comment `matches` (the per-pod rules of older vnet),
    /// deleted in one transaction; how many.
    pub(crate) fn del_legacy_rules(
        &self,
        matches: impl Fn(&str) -> bool,
    ) -> Result<usize, NetError> {
        let handles: Vec<u64> = self
            .masquerade_rules()?
            .into_iter()
            .filter(|(_, c)| matches(c))
            .map(|(h, _)| h)
            .collect();
        // In batches: every message is acknowledged, and a few hundred acknowledgements
        // overflow the socket's receive buffer (ENOBUFS after the batch succeeded).
        for chunk in handles.chunks(BATCH) {
            self.nft()?
                .transact(|seq| {
                    chunk
                        .iter()
                        .enumerate()
                        .map(|(i, h)| wire::del_rule(&NAMES, *h, seq + i as u32))
                        .collect()
                })
                .map_err(|e| nft_err("delete per-pod masquerade rules".into(), e))?;
        }
        Ok(handles.len())
    }

    /// `(handle, comment)` of every rule in vnet's chain; none when the table is absent.
    pub fn masquerade_rules(&self) -> Result<Vec<(u64, String)>, NetError> {
        match self
            .nft()?
            .request(wire::MSG_NEWRULE, |seq| wire::get_rules(&NAMES, seq), true)
        {
            Ok(msgs) => Ok(msgs.iter().filter_map(|m| wire::parse_rule(m)).collect()),
            Err(Errno::ENOENT) => Ok(Vec::new()),
            Err(e) => Err(nft_err(format!("list chain {NFT_TABLE} {NFT_CHAIN}"), e)),
        }
    }
}

fn addrs_only(ips: &[IpAddr]) -> Vec<(IpAddr, Option<&'static str>)> {
    ips.iter().map(|ip| (*ip, None)).collect()
}

/// Table and chain (kept if there), the set (exclusively) and the rule, then the pod's
/// elements: one transaction.
fn create_layout(
    sock: &mut NftSock,
    network: &str,
    f: Family,
    exclude: &[IpNet],
    set: &str,
    elems: &[(IpAddr, Option<&str>)],
) -> NftResult<()> {
    let mut keep: Vec<IpNet> = exclude.to_vec();
    keep.push(match f {
        Family::V4 => IpNet::V4(MCAST4),
        Family::V6 => IpNet::V6(MCAST6),
    });
    let comment = masq_rule_comment(network);
    let set_id = 1;
    sock.transact(|seq| {
        vec![
            wire::new_table(&NAMES, seq),
            wire::new_chain(&NAMES, seq + 1),
            wire::new_set(&NAMES, set, set_id, f, seq + 2),
            wire::new_rule(&NAMES, set, set_id, f, &keep, &comment, seq + 3),
            wire::set_elems(&NAMES, set, elems, false, seq + 4),
        ]
    })
}
