//! `ipMasq` for DEL, GC and CHECK: the pod's set element removed by address or by its tag
//! (an empty or vanished `CNI_NETNS` does not matter: plugins issue #810), elements of
//! attachments no longer valid collected, one element looked up. ADD's element is a plan
//! op (`plan::masq`).

use std::net::IpAddr;

use crate::cni::CniResult;
use crate::net::Node;
use crate::plan::masq::{
    self as plan, masq_rule_comment, masq_set, of_network, rule_exclusions, tag,
};
use crate::plan::Op;

use super::error::Error;
use super::ipam;
use super::request::Request;
use super::trace;

/// DEL: remove this attachment's elements, by the addresses the store holds for it (read
/// before the release), else by its tag; needs no pod namespace. On `node` when the
/// caller has one open (see `del::del` for why), else on a Node of its own.
pub fn del(req: &Request, node: Option<&Node>) -> Result<(), Error> {
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
    match node {
        Some(node) => node.apply(&[op])?,
        None => Node::open(None)?.apply(&[op])?,
    }
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
    // A network's own rule reads its set, and `del_legacy_rules` never looks at those.
    let legacy = |c: &str| of_network(c, net) && !keep.iter().any(|k| k == c);
    if let Err(e) = node.del_legacy_rules(legacy) {
        errors.push(e.into());
    }
    Error::all(errors)
}

/// ADD's masquerade op: the pod's addresses into the network's sets, the rule leaving
/// alone the node table's pod network (or its subnets), the network's ranges and the
/// pod's own subnet.
pub fn add_op(req: &Request, res: &CniResult) -> Option<Op> {
    plan::add_op(
        &req.conf,
        &ipam::subnets(req),
        &req.env.container_id,
        &req.env.ifname,
        &req.cluster
            .as_ref()
            .map(|c| c.table.pod_network())
            .unwrap_or_default(),
        res,
    )
}

/// CHECK: each of the pod's addresses is an element of the network's set, tagged for
/// this attachment, and the network's rule reads the set with the exclusions this config
/// gives (what ADD would put there now).
pub fn check(req: &Request, node: &Node, prev: &CniResult) -> Result<(), Error> {
    let Some(Op::AddMasquerade { exclude, .. }) = add_op(req, prev) else {
        return Ok(());
    };
    let want = tag(&req.conf.name, &req.env.container_id, &req.env.ifname);
    let rules = node.masquerade_rules()?;
    // A pod made by earlier vnet has a rule of its own, tagged the same way.
    if rules
        .iter()
        .any(|r| !r.reads_named_set() && r.comment == want)
    {
        return Ok(());
    }
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
        let set = masq_set(&req.conf.name, addr.is_ipv6());
        let rule = masq_rule_comment(&req.conf.name, &rule_exclusions(&exclude, addr.is_ipv6()));
        if !rules
            .iter()
            .any(|r| r.set.as_deref() == Some(set.as_str()) && r.comment == rule)
        {
            return Err(Error::Check(format!(
                "no masquerade rule {rule:?} reads set {set} (missing, or made with other exclusions; the next ADD puts it right)"
            )));
        }
    }
    Ok(())
}
