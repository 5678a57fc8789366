//! Masquerade as plan values: the attachment's tag, the network's set and rule names, and
//! the ADD op with its place in the plan. Pure; `net/masq.rs` applies it.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{fnv1a, Op};
use crate::cni::{CniResult, NetConf};

/// The set of a network's pod addresses of one family in vnet's table:
/// `pods4_<network, cut to what nft names allow>_<hash>`, readable in `nft list` and
/// unique per network whatever its name.
pub fn masq_set(network: &str, v6: bool) -> String {
    let readable: String = network
        .chars()
        .take(24)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let family = if v6 { 6 } else { 4 };
    format!("pods{family}_{readable}_{:08x}", fnv1a(&[network]) as u32)
}

/// Multicast is never masqueraded: rewriting its source breaks protocols that reply to
/// the sender.
pub const MCAST4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4);
pub const MCAST6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8);

/// What a network's rule for one family leaves alone: the op's excluded prefixes of that
/// family, then multicast.
pub fn rule_exclusions(exclude: &[IpNet], v6: bool) -> Vec<IpNet> {
    let mut keep: Vec<IpNet> = exclude
        .iter()
        .copied()
        .filter(|n| n.addr().is_ipv6() == v6)
        .collect();
    keep.push(if v6 {
        IpNet::V6(MCAST6)
    } else {
        IpNet::V4(MCAST4)
    });
    keep
}

/// The comment on a network's rule for one family: `vnet <network> v4:<fingerprint of
/// the exclusions>`. The rule is made by the network's first pod; a later ADD whose
/// exclusions differ (a node joined the node table, the config changed) or that finds
/// the rule gone (a flushed chain) sees no rule with its comment, and puts its own in
/// place of the old one. The colon keeps it apart from older vnet's per-pod tags (a
/// container ID has none). nft keeps at most 128 bytes.
pub fn masq_rule_comment(network: &str, keep: &[IpNet]) -> String {
    let v6 = keep.first().is_some_and(|n| n.addr().is_ipv6());
    let mut text: Vec<String> = keep.iter().map(ToString::to_string).collect();
    text.sort();
    let refs: Vec<&str> = text.iter().map(String::as_str).collect();
    let print = format!("v{}:{:08x}", if v6 { 6 } else { 4 }, fnv1a(&refs) as u32);
    let plain = format!("vnet {network} {print}");
    if plain.len() <= MAX_TAG {
        return plain;
    }
    format!("vnet# {:016x} {print}", fnv1a(&[network]))
}

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
pub fn of_network(comment: &str, network: &str) -> bool {
    let mut parts = comment.split(' ');
    match (parts.next(), parts.next()) {
        (Some("vnet"), Some(n)) => n == network,
        (Some("vnet#"), Some(h)) => h == format!("{:016x}", fnv1a(&[network])),
        _ => false,
    }
}

/// The ADD op: masquerade the pod's addresses to anything outside the pod network: the
/// node table's cluster range (or all its pod subnets), the network's own subnets (every
/// range of the built-in IPAM) and the pod's. The first pod of the network sets the
/// network's rule with this list; later pods only add their addresses.
pub fn add_op(
    conf: &NetConf,
    ranges: &[IpNet],
    container_id: &str,
    ifname: &str,
    cluster: &[IpNet],
    res: &CniResult,
) -> Option<Op> {
    if !conf.ip_masq || res.ips.is_empty() {
        return None;
    }
    let mut exclude: Vec<IpNet> = cluster.to_vec();
    let own = res.ips.iter().map(|ip| ip.address.trunc());
    for net in ranges.iter().copied().chain(own) {
        if !exclude.iter().any(|n| n.contains(&net)) {
            exclude.push(net);
        }
    }
    Some(Op::AddMasquerade {
        network: conf.name.clone(),
        srcs: res.ips.iter().map(|ip| ip.address.addr()).collect(),
        exclude,
        tag: tag(&conf.name, container_id, ifname),
    })
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
    fn a_rules_comment_names_its_network_and_fingerprints_its_exclusions() {
        let a: IpNet = "10.244.0.0/16".parse().unwrap();
        let b: IpNet = "10.245.0.0/16".parse().unwrap();
        let v6: IpNet = "fd00::/64".parse().unwrap();
        let one = rule_exclusions(&[a, v6], false);
        assert_eq!(one, vec![a, IpNet::V4(MCAST4)]);
        let c1 = masq_rule_comment("v-net", &one);
        assert!(c1.starts_with("vnet v-net v4:"), "{c1}");
        // Same list in another order: same rule. A node more: another.
        assert_eq!(c1, masq_rule_comment("v-net", &[IpNet::V4(MCAST4), a]));
        assert_ne!(
            c1,
            masq_rule_comment("v-net", &rule_exclusions(&[a, b], false))
        );
        let c6 = masq_rule_comment("v-net", &rule_exclusions(&[a, v6], true));
        assert!(c6.starts_with("vnet v-net v6:"), "{c6}");
        // Never taken for an older vnet's per-pod tag of the same network.
        assert!(of_network(&c1, "v-net") && c1.split(' ').nth(2).unwrap().contains(':'));
        let long = masq_rule_comment(&"n".repeat(130), &one);
        assert!(
            long.len() <= MAX_TAG && long.starts_with("vnet# "),
            "{long}"
        );
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
    }
}
