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
use std::net::IpAddr;

use ipnet::IpNet;
use nix::errno::Errno;

use crate::plan::render::MasqFacts;
use crate::plan::{masq_rule_comment, masq_set, rule_exclusions, NFT_CHAIN, NFT_TABLE};

use super::nft::{NftResult, NftSock};
use super::nft_wire::{self as wire, Family, Names, RuleInfo};
use super::{netns, NetError, Node};

const NAMES: Names<'static> = Names {
    table: NFT_TABLE,
    chain: NFT_CHAIN,
};

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
            let keep = rule_exclusions(exclude, f == Family::V6);
            let mut sock = self.nft()?;
            let add = |sock: &mut NftSock| {
                sock.transact(|seq| vec![wire::set_elems(&NAMES, &set, &elems, false, seq)])
            };
            match add(&mut sock) {
                Ok(()) => Ok(()),
                // No table or no set yet: this is the network's first pod of this family.
                Err(Errno::ENOENT) => {
                    match create_layout(&mut sock, network, f, &keep, &set, &elems) {
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
            .and_then(|()| ensure_rule(&mut sock, network, &keep, &set))
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

    /// The network's sets (IPv4, IPv6): whether each exists and the rules that read it,
    /// so `vnet explain` prints what ADD will do (make them, keep them, or put a rule
    /// with the config's exclusions in place of a stale or missing one).
    pub fn masquerade_facts(&self, network: &str) -> Result<[MasqFacts; 2], NetError> {
        let rules = self.masquerade_rules()?;
        let mut out: [MasqFacts; 2] = Default::default();
        for (i, f) in [Family::V4, Family::V6].into_iter().enumerate() {
            let set = set_name(network, f);
            match self.nft()?.request(
                wire::MSG_NEWSET,
                |seq| wire::get_set(&NAMES, &set, seq),
                false,
            ) {
                Ok(found) => out[i].set = !found.is_empty(),
                Err(Errno::ENOENT) => {}
                Err(e) => return Err(nft_err(format!("get set {set}"), e)),
            }
            out[i].rules = rules
                .iter()
                .filter(|r| r.set.as_deref() == Some(set.as_str()))
                .map(|r| (r.handle, r.comment.clone()))
                .collect();
        }
        Ok(out)
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

    /// Rules of vnet's chain that read no set and whose comment `matches` (the per-pod
    /// rules of older vnet),
    /// deleted in one transaction; how many.
    pub(crate) fn del_legacy_rules(
        &self,
        matches: impl Fn(&str) -> bool,
    ) -> Result<usize, NetError> {
        let handles: Vec<u64> = self
            .masquerade_rules()?
            .into_iter()
            .filter(|r| !r.reads_named_set() && matches(&r.comment))
            .map(|r| r.handle)
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

    /// Every rule in vnet's chain; none when the table or chain is absent.
    pub fn masquerade_rules(&self) -> Result<Vec<RuleInfo>, NetError> {
        list_rules(&mut *self.nft()?)
            .map_err(|e| nft_err(format!("list chain {NFT_TABLE} {NFT_CHAIN}"), e))
    }
}

fn addrs_only(ips: &[IpAddr]) -> Vec<(IpAddr, Option<&'static str>)> {
    ips.iter().map(|ip| (*ip, None)).collect()
}

fn list_rules(sock: &mut NftSock) -> NftResult<Vec<RuleInfo>> {
    match sock.request(wire::MSG_NEWRULE, |seq| wire::get_rules(&NAMES, seq), true) {
        Ok(msgs) => Ok(msgs.iter().filter_map(|m| wire::parse_rule(m)).collect()),
        Err(Errno::ENOENT) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Table and chain (kept if there), the set (exclusively) and the rule, then the pod's
/// elements: one transaction.
fn create_layout(
    sock: &mut NftSock,
    network: &str,
    f: Family,
    keep: &[IpNet],
    set: &str,
    elems: &[(IpAddr, Option<&str>)],
) -> NftResult<()> {
    let comment = masq_rule_comment(network, keep);
    let set_id = 1;
    sock.transact(|seq| {
        vec![
            wire::new_table(&NAMES, seq),
            wire::new_chain(&NAMES, seq + 1),
            wire::new_set(&NAMES, set, set_id, f, seq + 2),
            wire::new_rule(&NAMES, set, set_id, f, keep, &comment, seq + 3),
            wire::set_elems(&NAMES, set, elems, false, seq + 4),
        ]
    })
}

/// The set exists: make sure exactly one rule reads it, with this config's exclusions.
/// One dump of the chain (a rule or two per network). A rule that is missing (a flushed
/// chain) or stale (a node joined the node table since the network's first pod) is put
/// right in one transaction: the new rule, then the old ones deleted by handle. Two ADDs
/// repairing at once: the second's delete of a handle already gone fails the whole
/// transaction with ENOENT, and it reads the chain again and finds the rule in place.
fn ensure_rule(sock: &mut NftSock, network: &str, keep: &[IpNet], set: &str) -> NftResult<()> {
    let want = masq_rule_comment(network, keep);
    let f = Family::of(keep[0].addr());
    let mut tries = 0;
    loop {
        let mine: Vec<RuleInfo> = list_rules(sock)?
            .into_iter()
            .filter(|r| r.set.as_deref() == Some(set))
            .collect();
        // Of several good copies the oldest stays, whoever decides.
        let kept = mine.iter().find(|r| r.comment == want).map(|r| r.handle);
        let stale: Vec<u64> = mine
            .iter()
            .map(|r| r.handle)
            .filter(|h| Some(*h) != kept)
            .collect();
        if kept.is_some() && stale.is_empty() {
            return Ok(());
        }
        let r = sock.transact(|seq| {
            let mut msgs = Vec::new();
            if kept.is_none() {
                msgs.push(wire::new_table(&NAMES, seq));
                msgs.push(wire::new_chain(&NAMES, seq + 1));
                msgs.push(wire::new_rule(&NAMES, set, 0, f, keep, &want, seq + 2));
            }
            let first = seq + msgs.len() as u32;
            for chunk in stale.chunks(BATCH).take(1) {
                for (i, h) in chunk.iter().enumerate() {
                    msgs.push(wire::del_rule(&NAMES, *h, first + i as u32));
                }
            }
            msgs
        });
        match r {
            Err(Errno::ENOENT) if tries < 3 => tries += 1,
            Ok(()) if stale.len() > BATCH => {}
            r => return r,
        }
    }
}
