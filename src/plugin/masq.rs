//! `ipMasq`: one tagged nftables rule set per attachment, added by ADD (rolled back with
//! the rest of the plan), removed by DEL from the tag alone (an empty or vanished
//! `CNI_NETNS` does not matter: plugins issue #810) and by GC for attachments that are
//! no longer valid.

use ipnet::IpNet;

use crate::cluster::ClusterConf;
use crate::cni::{CniResult, NetConf};
use crate::net::{nft_available, Node};
use crate::plan::Op;

use super::error::Error;
use super::request::Request;
use super::trace;

/// nft keeps at most 128 bytes of comment.
const MAX_TAG: usize = 128;

/// The comment on an attachment's rules: `vnet <network> <containerID> <ifname>`, or, when
/// that would be too long, `vnet# <hash of network> <hash of all three>`.
pub fn tag(network: &str, container_id: &str, ifname: &str) -> String {
    let plain = format!("vnet {network} {container_id} {ifname}");
    if plain.len() <= MAX_TAG {
        return plain;
    }
    let all = fnv1a(&[network, container_id, ifname]);
    format!("vnet# {:016x} {all:016x}", fnv1a(&[network]))
}

/// Whether a rule comment is one of `network`'s tags.
fn of_network(comment: &str, network: &str) -> bool {
    let mut parts = comment.split(' ');
    match (parts.next(), parts.next()) {
        (Some("vnet"), Some(n)) => n == network,
        (Some("vnet#"), Some(h)) => h == format!("{:016x}", fnv1a(&[network])),
        _ => false,
    }
}

/// FNV-1a 64 over the parts, each followed by a NUL so ("ab","c") ≠ ("a","bc").
pub(super) fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The ADD op: masquerade the pod's addresses to anything outside the pod network, which
/// is the node table's cluster range (or all its pod subnets) plus the pod's own subnets.
pub fn add_op(
    conf: &NetConf,
    container_id: &str,
    ifname: &str,
    cluster: Option<&ClusterConf>,
    res: &CniResult,
) -> Option<Op> {
    if !conf.ip_masq || res.ips.is_empty() {
        return None;
    }
    let mut exclude: Vec<IpNet> = cluster.map(|c| c.table.pod_network()).unwrap_or_default();
    for ip in &res.ips {
        let own = ip.address.trunc();
        if !exclude.iter().any(|n| n.contains(&own)) {
            exclude.push(own);
        }
    }
    Some(Op::AddMasquerade {
        srcs: res.ips.iter().map(|ip| ip.address.addr()).collect(),
        exclude,
        tag: tag(&conf.name, container_id, ifname),
    })
}

/// Put `op` before the bridge gateway steps: if the shared bridge then refuses its
/// gateway address, the rule is rolled back with the pod's veth.
pub fn insert(ops: &mut Vec<Op>, op: Op) {
    let at = ops
        .iter()
        .position(|o| matches!(o, Op::EnsureBridgeAddr { .. }))
        .unwrap_or(ops.len());
    ops.insert(at, op);
}

/// Whether there can be rules to remove: without `nft` vnet never made any.
fn may_have_rules(req: &Request) -> bool {
    req.conf.ip_masq && nft_available()
}

/// DEL: remove this attachment's rules; needs nothing but the config and the IDs.
pub fn del(req: &Request) -> Result<(), Error> {
    if !may_have_rules(req) {
        return Ok(());
    }
    let op = Op::DelMasquerade {
        tag: tag(&req.conf.name, &req.env.container_id, &req.env.ifname),
    };
    trace::plan(
        "DEL",
        &req.env.container_id,
        None,
        std::slice::from_ref(&op),
    );
    Node::open(None)?.apply(&[op])?;
    Ok(())
}

/// GC: remove the rules of this network whose attachment is not in `valid`.
pub fn gc(req: &Request, valid: &[(String, String)]) -> Result<(), Error> {
    if !may_have_rules(req) {
        return Ok(());
    }
    let node = Node::open(None)?;
    let keep: Vec<String> = valid
        .iter()
        .map(|(id, ifname)| tag(&req.conf.name, id, ifname))
        .collect();
    let mut stale: Vec<String> = node
        .masquerade_rules()?
        .into_iter()
        .map(|(_, comment)| comment)
        .filter(|c| of_network(c, &req.conf.name) && !keep.contains(c))
        .collect();
    stale.dedup();
    let ops: Vec<Op> = stale
        .into_iter()
        .map(|tag| Op::DelMasquerade { tag })
        .collect();
    trace::plan("GC", "", None, &ops);
    let errors: Vec<Error> = ops
        .iter()
        .filter_map(|op| node.apply(std::slice::from_ref(op)).err())
        .map(Error::from)
        .collect();
    match errors.len() {
        0 => Ok(()),
        _ => Err(Error::Several(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_name_the_attachment_and_stay_within_nft_limits() {
        assert_eq!(tag("v-net", "c1", "eth0"), "vnet v-net c1 eth0");
        let long_id = "a".repeat(64);
        let t = tag("v-net", &long_id, "eth0");
        assert_eq!(t, format!("vnet v-net {long_id} eth0"));
        let long_net = "n".repeat(100);
        let t = tag(&long_net, &long_id, "eth0");
        assert!(t.len() <= MAX_TAG && t.starts_with("vnet# "), "{t}");
        assert_ne!(t, tag(&long_net, &long_id, "eth1"));
        assert_eq!(t, tag(&long_net, &long_id, "eth0"));
    }

    #[test]
    fn rules_are_told_apart_by_network() {
        assert!(of_network("vnet v-net c1 eth0", "v-net"));
        assert!(!of_network("vnet other c1 eth0", "v-net"));
        assert!(!of_network("something else", "v-net"));
        let long_net = "n".repeat(100);
        let t = tag(&long_net, &"a".repeat(64), "eth0");
        assert!(of_network(&t, &long_net));
        assert!(!of_network(&t, "v-net"));
        assert_ne!(fnv1a(&["ab", "c"]), fnv1a(&["a", "bc"]));
    }

    #[test]
    fn the_rule_goes_before_the_gateway_steps() {
        let mut ops = vec![
            Op::PinMac { dev: "b".into() },
            Op::EnsureBridgeAddr {
                dev: "b".into(),
                addr: "10.0.0.1/24".parse().unwrap(),
                force: false,
            },
        ];
        let masq = Op::DelMasquerade { tag: "t".into() };
        insert(&mut ops, masq.clone());
        assert_eq!(ops[1], masq);
        let mut none = vec![Op::PinMac { dev: "b".into() }];
        insert(&mut none, masq.clone());
        assert_eq!(none[1], masq);
    }
}
