//! The few nf_tables netlink messages vnet sends, as bytes, and the parts of the kernel's
//! answers it reads. Pure: no socket here (see `nft.rs`), so every message is unit-tested.
//!
//! A message is a netlink header, a `nfgenmsg` (family, version 0, resource id) and
//! attributes (type, length, payload padded to 4 bytes; nested ones carry
//! `NLA_F_NESTED`). Changes go in a batch framed by `NFNL_MSG_BATCH_BEGIN`/`END`, which
//! the kernel applies as one transaction: all of it or nothing. Numbers are from
//! `linux/netfilter/nf_tables.h` and `nfnetlink.h`; values the kernel reads as `be32`
//! are written big-endian.

use std::net::IpAddr;

use ipnet::IpNet;

pub(crate) const NFNL_SUBSYS_NFTABLES: u16 = 10;
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;

pub(crate) const MSG_NEWTABLE: u16 = 0;
pub(crate) const MSG_NEWCHAIN: u16 = 3;
pub(crate) const MSG_NEWRULE: u16 = 6;
pub(crate) const MSG_GETRULE: u16 = 7;
pub(crate) const MSG_DELRULE: u16 = 8;
pub(crate) const MSG_NEWSET: u16 = 9;
const MSG_GETSET: u16 = 10;
pub(crate) const MSG_NEWSETELEM: u16 = 12;
pub(crate) const MSG_GETSETELEM: u16 = 13;
pub(crate) const MSG_DELSETELEM: u16 = 14;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_DUMP_INTR: u16 = 0x10;

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

pub(crate) const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

// Attribute numbers, by object.
const TABLE_NAME: u16 = 1;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const HOOK_HOOKNUM: u16 = 1;
const HOOK_PRIORITY: u16 = 2;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const RULE_USERDATA: u16 = 7;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const SET_TABLE: u16 = 1;
const SET_NAME: u16 = 2;
const SET_FLAGS: u16 = 3;
const SET_KEY_TYPE: u16 = 4;
const SET_KEY_LEN: u16 = 5;
const SET_ID: u16 = 10;
const ELEM_LIST_TABLE: u16 = 1;
const ELEM_LIST_SET: u16 = 2;
const ELEM_LIST_ELEMENTS: u16 = 3;
const ELEM_KEY: u16 = 1;
const ELEM_USERDATA: u16 = 6;
const DATA_VALUE: u16 = 1;
const PAYLOAD_DREG: u16 = 1;
const PAYLOAD_BASE: u16 = 2;
const PAYLOAD_OFFSET: u16 = 3;
const PAYLOAD_LEN: u16 = 4;
const LOOKUP_SET: u16 = 1;
const LOOKUP_SREG: u16 = 2;
const LOOKUP_SET_ID: u16 = 4;
const CMP_SREG: u16 = 1;
const CMP_OP: u16 = 2;
const CMP_DATA: u16 = 3;
const BITWISE_SREG: u16 = 1;
const BITWISE_DREG: u16 = 2;
const BITWISE_LEN: u16 = 3;
const BITWISE_MASK: u16 = 4;
const BITWISE_XOR: u16 = 5;
const META_DREG: u16 = 1;
const META_KEY: u16 = 2;

const META_NFPROTO: u32 = 15;
const PAYLOAD_NETWORK_HEADER: u32 = 1;
const REG_1: u32 = 1;
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const HOOK_POSTROUTING: u32 = 4;
/// `srcnat`.
const PRIORITY_SRCNAT: i32 = 100;
const POLICY_ACCEPT: u32 = 1;
/// nft's datatypes, which `nft list` uses to print the keys.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
/// The comment in a rule's or an element's user data, as nft writes it: a
/// type-length-value record of type 0 holding the text and a NUL.
const UDATA_COMMENT: u8 = 0;

/// One netlink message being built.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `done`
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        buf.extend_from_slice(&[family, 0]);
        buf.extend_from_slice(&res_id.to_be_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    /// An nf_tables request.
    fn nft(kind: u16, flags: u16, seq: u32) -> Msg {
        let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
        Msg::new(kind, NLM_F_REQUEST | flags, seq, NFPROTO_INET, 0)
    }

    fn pad(&mut self) {
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v)
    }

    fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_be_bytes())
    }

    fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Self {
        if let Some(at) = self.nests.pop() {
            let len = (self.buf.len() - at) as u16;
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// `NFTA_DATA_VALUE` inside a nest of type `kind`.
    fn data(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.begin(kind).attr(DATA_VALUE, value).end()
    }

    fn done(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The two families vnet masquerades, with what differs between them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn nfproto(self) -> u8 {
        match self {
            Family::V4 => NFPROTO_IPV4,
            Family::V6 => NFPROTO_IPV6,
        }
    }
    fn key_type(self) -> u32 {
        match self {
            Family::V4 => TYPE_IPADDR,
            Family::V6 => TYPE_IP6ADDR,
        }
    }
    fn addr_len(self) -> u32 {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
    /// Offsets of the source and destination address in the network header.
    fn saddr(self) -> u32 {
        match self {
            Family::V4 => 12,
            Family::V6 => 8,
        }
    }
    fn daddr(self) -> u32 {
        match self {
            Family::V4 => 16,
            Family::V6 => 24,
        }
    }
}

pub(crate) fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn comment_udata(text: &str) -> Vec<u8> {
    // The record's length is one byte: nft keeps comments short (vnet's tags are ≤ 128).
    let bytes = &text.as_bytes()[..text.len().min(250)];
    let mut v = vec![UDATA_COMMENT, (bytes.len() + 1) as u8];
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// The comment in a user-data blob, if it has one.
pub(crate) fn comment_of(udata: &[u8]) -> Option<String> {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let value = rest.get(2..2 + len)?;
        if kind == UDATA_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        rest = &rest[2 + len..];
    }
    None
}

/// The batch frame around changes.
pub(crate) fn batch(seq: u32, msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Msg::new(BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES).done();
    for m in msgs {
        out.extend_from_slice(m);
    }
    let end = Msg::new(
        BATCH_END,
        NLM_F_REQUEST,
        seq + msgs.len() as u32 + 1,
        0,
        NFNL_SUBSYS_NFTABLES,
    );
    out.extend_from_slice(&end.done());
    out
}

/// Where vnet's objects live: the table, its chain, and a network's set names.
pub(crate) struct Names<'a> {
    pub(crate) table: &'a str,
    pub(crate) chain: &'a str,
}

/// `table inet vnet` (no error if it exists).
pub(crate) fn new_table(n: &Names, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_NEWTABLE, NLM_F_CREATE | NLM_F_ACK, seq);
    m.str(TABLE_NAME, n.table);
    m.done()
}

/// `chain postrouting { type nat hook postrouting priority srcnat; policy accept; }`.
pub(crate) fn new_chain(n: &Names, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_ACK, seq);
    m.str(CHAIN_TABLE, n.table).str(CHAIN_NAME, n.chain);
    m.begin(CHAIN_HOOK)
        .be32(HOOK_HOOKNUM, HOOK_POSTROUTING)
        .attr(HOOK_PRIORITY, &PRIORITY_SRCNAT.to_be_bytes())
        .end();
    m.be32(CHAIN_POLICY, POLICY_ACCEPT).str(CHAIN_TYPE, "nat");
    m.done()
}

/// `set NAME { type ipv4_addr; }`, failing with EEXIST if it is there: whoever creates
/// the set also adds the network's one rule, exactly once.
pub(crate) fn new_set(n: &Names, set: &str, id: u32, f: Family, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, seq);
    m.str(SET_TABLE, n.table)
        .str(SET_NAME, set)
        .be32(SET_FLAGS, 0)
        .be32(SET_KEY_TYPE, f.key_type())
        .be32(SET_KEY_LEN, f.addr_len())
        .be32(SET_ID, id);
    m.done()
}

fn expr(m: &mut Msg, name: &str, body: impl FnOnce(&mut Msg)) {
    m.begin(LIST_ELEM).str(EXPR_NAME, name).begin(EXPR_DATA);
    body(m);
    m.end().end();
}

fn load_payload(m: &mut Msg, offset: u32, len: u32) {
    expr(m, "payload", |m| {
        m.be32(PAYLOAD_DREG, REG_1)
            .be32(PAYLOAD_BASE, PAYLOAD_NETWORK_HEADER)
            .be32(PAYLOAD_OFFSET, offset)
            .be32(PAYLOAD_LEN, len);
    });
}

fn cmp(m: &mut Msg, op: u32, value: &[u8]) {
    expr(m, "cmp", |m| {
        m.be32(CMP_SREG, REG_1)
            .be32(CMP_OP, op)
            .data(CMP_DATA, value);
    });
}

/// The network's rule for one family:
/// `meta nfproto F  F saddr @SET  F daddr != EXCL1 …  masquerade comment "…"`.
/// Each excluded prefix is a mask and a compare; all must differ for the packet to be
/// masqueraded. The packet path does one set lookup however many pods there are.
pub(crate) fn new_rule(
    n: &Names,
    set: &str,
    set_id: u32,
    f: Family,
    exclude: &[IpNet],
    comment: &str,
    seq: u32,
) -> Vec<u8> {
    let mut m = Msg::nft(MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, seq);
    m.str(RULE_TABLE, n.table).str(RULE_CHAIN, n.chain);
    m.begin(RULE_EXPRESSIONS);
    expr(&mut m, "meta", |m| {
        m.be32(META_DREG, REG_1).be32(META_KEY, META_NFPROTO);
    });
    cmp(&mut m, CMP_EQ, &[f.nfproto()]);
    load_payload(&mut m, f.saddr(), f.addr_len());
    expr(&mut m, "lookup", |m| {
        m.str(LOOKUP_SET, set)
            .be32(LOOKUP_SREG, REG_1)
            .be32(LOOKUP_SET_ID, set_id);
    });
    for net in exclude.iter().filter(|n| Family::of(n.addr()) == f) {
        load_payload(&mut m, f.daddr(), f.addr_len());
        let mask = addr_bytes(net.netmask());
        expr(&mut m, "bitwise", |m| {
            m.be32(BITWISE_SREG, REG_1)
                .be32(BITWISE_DREG, REG_1)
                .be32(BITWISE_LEN, f.addr_len())
                .data(BITWISE_MASK, &mask)
                .data(BITWISE_XOR, &vec![0; mask.len()]);
        });
        cmp(&mut m, CMP_NEQ, &addr_bytes(net.network()));
    }
    expr(&mut m, "masq", |_| {});
    m.end();
    m.attr(RULE_USERDATA, &comment_udata(comment));
    m.done()
}

/// Add (`NEWSETELEM`, failing with EEXIST for an address already there) or delete
/// (`DELSETELEM`) elements; added ones carry the attachment's tag as their comment.
pub(crate) fn set_elems(
    n: &Names,
    set: &str,
    elems: &[(IpAddr, Option<&str>)],
    delete: bool,
    seq: u32,
) -> Vec<u8> {
    let (kind, flags) = if delete {
        (MSG_DELSETELEM, NLM_F_ACK)
    } else {
        (MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK)
    };
    let mut m = Msg::nft(kind, flags, seq);
    m.str(ELEM_LIST_TABLE, n.table).str(ELEM_LIST_SET, set);
    m.begin(ELEM_LIST_ELEMENTS);
    for (ip, comment) in elems {
        m.begin(LIST_ELEM).data(ELEM_KEY, &addr_bytes(*ip));
        if let Some(c) = comment {
            m.attr(ELEM_USERDATA, &comment_udata(c));
        }
        m.end();
    }
    m.end();
    m.done()
}

/// Dump of a set's elements.
pub(crate) fn get_set_elems(n: &Names, set: &str, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_GETSETELEM, NLM_F_DUMP, seq);
    m.str(ELEM_LIST_TABLE, n.table).str(ELEM_LIST_SET, set);
    m.done()
}

/// One set, by name (the answer is a `NEWSET` message, or ENOENT).
pub(crate) fn get_set(n: &Names, set: &str, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_GETSET, 0, seq);
    m.str(SET_TABLE, n.table).str(SET_NAME, set);
    m.done()
}

/// Dump of the chain's rules.
pub(crate) fn get_rules(n: &Names, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_GETRULE, NLM_F_DUMP, seq);
    m.str(RULE_TABLE, n.table).str(RULE_CHAIN, n.chain);
    m.done()
}

pub(crate) fn del_rule(n: &Names, handle: u64, seq: u32) -> Vec<u8> {
    let mut m = Msg::nft(MSG_DELRULE, NLM_F_ACK, seq);
    m.str(RULE_TABLE, n.table)
        .str(RULE_CHAIN, n.chain)
        .attr(RULE_HANDLE, &handle.to_be_bytes());
    m.done()
}

/// One message of the kernel's answer.
pub(crate) struct Reply<'a> {
    pub(crate) kind: u16,
    /// `NLM_F_DUMP_INTR` here: the ruleset changed while the kernel was dumping it.
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
}

/// The messages in a buffer the kernel filled.
pub(crate) fn replies(mut buf: &[u8]) -> Vec<Reply<'_>> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            break;
        }
        out.push(Reply {
            kind: u16::from_ne_bytes([buf[4], buf[5]]),
            flags: u16::from_ne_bytes([buf[6], buf[7]]),
            seq: u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]),
            payload: &buf[16..len],
        });
        let next = ((len + 3) & !3).min(buf.len());
        buf = &buf[next..];
    }
    out
}

/// The errno of an `NLMSG_ERROR` payload (0 for an acknowledgement).
pub(crate) fn error_code(payload: &[u8]) -> Option<i32> {
    let b = payload.get(..4)?;
    Some(-i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// `(type, payload)` of the attributes in `buf`.
pub(crate) fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        let next = ((len + 3) & !3).min(buf.len());
        buf = &buf[next..];
    }
    out
}

fn find(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf)
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v)
}

/// The elements (address, comment) of one `NEWSETELEM` message of a dump.
pub(crate) fn parse_set_elems(payload: &[u8]) -> Vec<(IpAddr, Option<String>)> {
    let Some(list) = payload.get(4..).and_then(|a| find(a, ELEM_LIST_ELEMENTS)) else {
        return Vec::new();
    };
    attrs(list)
        .into_iter()
        .filter(|(k, _)| *k == LIST_ELEM)
        .filter_map(|(_, elem)| {
            let key = find(find(elem, ELEM_KEY)?, DATA_VALUE)?;
            let ip = match key.len() {
                4 => IpAddr::from(<[u8; 4]>::try_from(key).ok()?),
                16 => IpAddr::from(<[u8; 16]>::try_from(key).ok()?),
                _ => return None,
            };
            Some((ip, find(elem, ELEM_USERDATA).and_then(comment_of)))
        })
        .collect()
}

/// One rule of vnet's chain, as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub handle: u64,
    pub comment: String,
    /// The set its first `lookup` expression reads (see `reads_named_set`).
    pub set: Option<String>,
}

/// The rule in one `NEWRULE` message of a dump.
pub(crate) fn parse_rule(payload: &[u8]) -> Option<RuleInfo> {
    let a = payload.get(4..)?;
    let handle = u64::from_be_bytes(find(a, RULE_HANDLE)?.try_into().ok()?);
    let comment = find(a, RULE_USERDATA)
        .and_then(comment_of)
        .unwrap_or_default();
    let set = find(a, RULE_EXPRESSIONS).and_then(|list| {
        attrs(list)
            .into_iter()
            .filter(|(k, _)| *k == LIST_ELEM)
            .find(|(_, e)| find(e, EXPR_NAME) == Some(b"lookup\0".as_slice()))
            .and_then(|(_, e)| find(find(e, EXPR_DATA)?, LOOKUP_SET))
            .map(|name| {
                String::from_utf8_lossy(name.strip_suffix(b"\0").unwrap_or(name)).into_owned()
            })
    });
    Some(RuleInfo {
        handle,
        comment,
        set,
    })
}

impl RuleInfo {
    /// Whether the rule reads a named set: a network's rule does. Older vnet's per-pod
    /// rules read an anonymous one (`ip daddr != { … }`), which nft names `__set<N>`.
    pub fn reads_named_set(&self) -> bool {
        self.set.as_deref().is_some_and(|s| !s.starts_with("__set"))
    }
}

#[cfg(test)]
#[path = "nft_wire_tests.rs"]
mod tests;
