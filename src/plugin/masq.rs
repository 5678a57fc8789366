//! `ipMasq`: one tagged nftables rule set per attachment, added by ADD (rolled back with
//! the rest of the plan), removed by DEL from the tag alone (an empty or vanished
//! `CNI_NETNS` does not matter: plugins issue #810) and by GC for attachments that are
//! no longer valid.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cluster::ClusterConf;
use crate::cni::{CniResult, NetConf};
use crate::net::Node;
use crate::plan::{masq_rule_comment, Op};

use super::error::Error;
use super::ipam;
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
    let all = crate::plan::fnv1a(&[network, container_id, ifname]);
    format!("vnet# {:016x} {all:016x}", crate::plan::fnv1a(&[network]))
}

/// Whether a rule comment is one of `network`'s tags.
fn of_network(comment: &str, network: &str) -> bool {
    let mut parts = comment.split(' ');
    match (parts.next(), parts.next()) {
        (Some("vnet"), Some(n)) => n == network,
        (Some("vnet#"), Some(h)) => h == format!("{:016x}", crate::plan::fnv1a(&[network])),
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
    cluster: Option<&ClusterConf>,
    res: &CniResult,
) -> Option<Op> {
    if !conf.ip_masq || res.ips.is_empty() {
        return None;
    }
    let mut exclude: Vec<IpNet> = cluster.map(|c| c.table.pod_network()).unwrap_or_default();
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

/// Put `op` before the bridge gateway steps: if the shared bridge then refuses its
/// gateway address, the element is rolled back with the pod's veth.
pub fn insert(ops: &mut Vec<Op>, op: Op) {
    let at = ops
        .iter()
        .position(|o| matches!(o, Op::EnsureBridgeAddr { .. }))
        .unwrap_or(ops.len());
    ops.insert(at, op);
}

/// DEL: remove this attachment's elements, by the addresses the store holds for it (read
/// before the release), else by its tag; needs no pod namespace.
pub fn del(req: &Request) -> Result<(), Error> {
    if !req.conf.ip_masq {
        return Ok(());
    }
    let op = Op::DelMasquerade {
        network: req.conf.name.clone(),
        addrs: ipam::held(req)?,
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

/// GC: remove the network's elements (and older vnet's per-pod rules) whose attachment
/// is not in `valid`: one pass over the set.
pub fn gc(req: &Request, valid: &[(String, String)]) -> Result<(), Error> {
    if !req.conf.ip_masq {
        return Ok(());
    }
    let node = Node::open(None)?;
    let net = &req.conf.name;
    let keep: Vec<String> = valid
        .iter()
        .map(|(id, ifname)| tag(net, id, ifname))
        .collect();
    let mut stale: Vec<(String, Vec<IpAddr>)> = Vec::new();
    for (ip, t) in node.masquerade_elements(net)? {
        let t = t.unwrap_or_default();
        if keep.contains(&t) {
            continue;
        }
        match stale.iter_mut().find(|(s, _)| *s == t) {
            Some((_, ips)) => ips.push(ip),
            None => stale.push((t, vec![ip])),
        }
    }
    let ops: Vec<Op> = stale
        .into_iter()
        .map(|(tag, addrs)| Op::DelMasquerade {
            network: net.clone(),
            addrs,
            tag,
        })
        .collect();
    trace::plan("GC", "", None, &ops);
    let mut errors: Vec<Error> = ops
        .iter()
        .filter_map(|op| node.apply(std::slice::from_ref(op)).err())
        .map(Error::from)
        .collect();
    let network_rule = masq_rule_comment(net);
    let legacy = |c: &str| of_network(c, net) && c != network_rule && !keep.iter().any(|k| k == c);
    if let Err(e) = node.del_legacy_rules(legacy) {
        errors.push(e.into());
    }
    match errors.len() {
        0 => Ok(()),
        _ => Err(Error::Several(errors)),
    }
}

/// CHECK: each of the pod's addresses is an element of the network's set, tagged for
/// this attachment.
pub fn check(req: &Request, node: &Node, prev: &CniResult) -> Result<(), Error> {
    if !req.conf.ip_masq || prev.ips.is_empty() {
        return Ok(());
    }
    let want = tag(&req.conf.name, &req.env.container_id, &req.env.ifname);
    let elems = node.masquerade_elements(&req.conf.name)?;
    for ip in &prev.ips {
        let addr = ip.address.addr();
        let found = elems.iter().find(|(e, _)| *e == addr);
        if found.and_then(|(_, t)| t.as_deref()) != Some(want.as_str()) {
            return Err(Error::Check(format!(
                "{addr} is not in the masquerade set of network {:?} as {want:?} (found {found:?})",
                req.conf.name
            )));
        }
    }
    Ok(())
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
    }

    #[test]
    fn the_element_goes_before_the_gateway_steps() {
        let mut ops = vec![
            Op::PinMac { dev: "b".into() },
            Op::EnsureBridgeAddr {
                dev: "b".into(),
                addr: "10.0.0.1/24".parse().unwrap(),
                force: false,
            },
        ];
        let masq = Op::DelMasquerade {
            network: "n".into(),
            addrs: vec![],
            tag: "t".into(),
        };
        insert(&mut ops, masq.clone());
        assert_eq!(ops[1], masq);
        let mut none = vec![Op::PinMac { dev: "b".into() }];
        insert(&mut none, masq.clone());
        assert_eq!(none[1], masq);
    }
}
