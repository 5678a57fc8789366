//! The kernel's side: each op of the pod's plan judged against what the node has.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cluster;
use crate::cni::result::IpConfig;
use crate::cni::CniResult;
use crate::net::{Link, Node, Ns};
use crate::plan::build::{add_ops, finish_result};
use crate::plan::render::{lines, Facts, PodNs};
use crate::plan::{masq, Op};

use super::target::Target;
use super::{ip_in, Check, Error, Hop, Seen};

/// Placeholder host veth name when the pod's veth has no end on the node.
const NO_VETH: &str = "<veth>";

/// How the pod's namespace is named in commands.
fn pod_ns(t: Option<&Target>) -> PodNs {
    let path = t.and_then(|t| t.netns.as_ref());
    PodNs::from_path(&path.map(|p| p.display().to_string()).unwrap_or_default())
}

/// The commands that make `op` true, as `vnet explain` prints them.
fn fix(op: &Op, pod: &PodNs, facts: &Facts) -> String {
    lines(std::slice::from_ref(op), pod, facts)
        .into_iter()
        .filter(|l| !l.cmd.is_empty())
        .map(|l| l.cmd)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Without a pod, what the node's shared part looks like: a result holding each range
/// set's gateway, enough for the bridge and forwarding steps.
fn node_result(seen: &Seen) -> Option<CniResult> {
    let conf = seen.ipam.as_ref()?;
    let mut r = CniResult {
        ips: conf
            .range_sets
            .iter()
            .filter_map(|s| s.ranges().first())
            .filter_map(|range| {
                Some(IpConfig {
                    address: IpNet::new(range.gateway(), range.subnet().prefix_len()).ok()?,
                    gateway: Some(range.gateway()),
                    interface: None,
                })
            })
            .collect(),
        ..Default::default()
    };
    finish_result(seen.conf, &mut r);
    Some(r)
}

fn masq_op(seen: &Seen, t: Option<&Target>, r: Option<&CniResult>) -> Option<Op> {
    let ranges: Vec<IpNet> = seen
        .ipam
        .as_ref()
        .map(|c| {
            c.range_sets
                .iter()
                .flat_map(|s| s.ranges())
                .map(|r| r.subnet())
                .collect()
        })
        .unwrap_or_default();
    let cluster_nets = seen
        .cluster
        .as_ref()
        .map(|c| c.table.pod_network())
        .unwrap_or_default();
    let (id, ifname) = match t {
        Some(t) => (t.container.as_deref().unwrap_or(""), t.ifname.as_str()),
        None => ("", ""),
    };
    masq::add_op(seen.conf, &ranges, id, ifname, &cluster_nets, r?)
}

pub(super) fn checks(seen: &Seen, t: Option<&Target>) -> Result<Vec<Check>, Error> {
    // A node that never had a pod of this network has no bridge yet, and needs none.
    let bridge = &seen.conf.bridge;
    if t.is_none() && seen.node.link(Ns::Host, bridge)?.is_none() {
        return Ok(vec![Check::new(
            "bridge.exists",
            Hop::Bridge,
            format!("no pod yet: the first ADD makes {bridge}"),
            format!("ip -d link show {bridge}"),
        )]);
    }
    let result = match t {
        Some(t) => t.expected(seen),
        None => node_result(seen),
    };
    let veth = t
        .and_then(|t| t.host_end.as_ref())
        .map_or(NO_VETH.to_string(), |l| l.name.clone());
    let ifname = t.map_or("eth0", |t| t.ifname.as_str());
    let masq = masq_op(seen, t, result.as_ref());
    let ops = add_ops(seen.conf, ifname, &veth, result.as_ref(), masq);
    let judge = Judge {
        seen,
        t,
        pod: pod_ns(t),
        veth,
    };
    let mut out = Vec::new();
    for op in &ops {
        out.extend(judge.op(op)?);
    }
    out.extend(node_routes(seen)?);
    Ok(out)
}

struct Judge<'a> {
    seen: &'a Seen<'a>,
    t: Option<&'a Target>,
    pod: PodNs,
    veth: String,
}

impl Judge<'_> {
    fn node(&self) -> &Node {
        &self.seen.node
    }

    fn bridge(&self) -> &str {
        &self.seen.conf.bridge
    }

    fn pod_ip(&self) -> String {
        self.t
            .and_then(|t| t.netns.as_deref())
            .map_or("ip".into(), ip_in)
    }

    /// Which part of the path a host-side link is.
    fn hop_of(&self, dev: &str) -> Hop {
        if dev == self.bridge() {
            Hop::Bridge
        } else {
            Hop::Cable
        }
    }

    fn host_link(&self, dev: &str) -> Result<Option<Link>, Error> {
        if dev == NO_VETH {
            return Ok(None);
        }
        Ok(self.node().link(Ns::Host, dev)?)
    }

    fn op(&self, op: &Op) -> Result<Vec<Check>, Error> {
        let facts = Facts::default();
        let pod_known = self.t.is_some_and(|t| t.node.is_some());
        let fix = |op: &Op| fix(op, &self.pod, &facts);
        Ok(match op {
            Op::EnsureBridge { name, promisc, .. } => {
                self.bridge_exists(name, *promisc, fix(op))?
            }
            Op::PinMac { dev } => self.mac_pinned(dev, fix(op))?,
            Op::LinkUp { ns: Ns::Host, dev } => {
                let Some(link) = self.host_link(dev)? else {
                    return Ok(vec![]);
                };
                let id = if dev == self.bridge() { "bridge.up" } else { "cable.up" };
                vec![up_check(id, self.hop_of(dev), &link, format!("ip link show {dev}"), fix(op))]
            }
            Op::LinkUp { ns: Ns::Pod, dev } => match self.t.and_then(|t| t.link.as_ref()) {
                Some(link) => vec![up_check(
                    "pod.up",
                    Hop::Pod,
                    link,
                    format!("{} link show {dev}", self.pod_ip()),
                    fix(op),
                )],
                None => vec![],
            },
            Op::AddVeth { peer, .. } if self.t.is_some() => self.veth(peer),
            Op::Sysctl {
                ns,
                key,
                value,
                optional,
            } => self.sysctl(*ns, key, value, *optional, fix(op))?,
            Op::SetMaster { dev, master } => self.master(dev, master, fix(op))?,
            Op::SetHairpin { dev } => match self.host_link(dev)? {
                Some(link) => vec![judged(
                    Check::new(
                        "cable.hairpin",
                        Hop::Cable,
                        format!("{dev} has hairpin mode on (\"hairpinMode\": true)"),
                        format!("bridge -d link show dev {dev}"),
                    ),
                    link.hairpin == Some(true),
                    format!("hairpin mode is off on {dev}: the pod cannot reach itself through a service"),
                    fix(op),
                )],
                None => vec![],
            },
            Op::AddAddr { dev, addr, .. } if pod_known => {
                let have = self.t.map(|t| t.addrs.as_slice()).unwrap_or_default();
                let holds = have.contains(addr);
                vec![judged(
                    Check::new(
                        "pod.address",
                        Hop::Pod,
                        format!("{dev} holds {addr}, the address IPAM reserved for it"),
                        format!("{} addr show {dev}", self.pod_ip()),
                    ),
                    holds,
                    format!("{addr} is not on {dev} in the pod: nothing reaches the pod at the address its reservation names"),
                    fix(op),
                )]
            }
            Op::AddRoute { dst, gw, dev, .. } if pod_known => self.pod_route(*dst, *gw, dev, fix(op))?,
            Op::EnsureBridgeAddr { dev, addr, .. } => {
                let have = self.node().addrs(Ns::Host, dev).unwrap_or_default();
                let gw_facts = Facts {
                    bridge_exists: true,
                    bridge_addrs: have.clone(),
                    ..Default::default()
                };
                vec![judged(
                    Check::new(
                        "bridge.gateway",
                        Hop::Bridge,
                        format!("{dev} holds the pods' gateway {addr}"),
                        format!("ip addr show {dev}"),
                    ),
                    have.contains(addr),
                    format!("{dev} does not hold {addr}: the pods' default route points at an address nobody answers for, so nothing off their subnet is reachable"),
                    self::fix(op, &self.pod, &gw_facts),
                )]
            }
            Op::AddMasquerade { .. } => self.masquerade(op)?,
            _ => vec![],
        })
    }

    /// Once a port is attached the kernel makes the bridge's MAC its lowest port's, which
    /// changes as pods come and go; ADD sets it explicitly to keep it.
    fn mac_pinned(&self, dev: &str, fix: String) -> Result<Vec<Check>, Error> {
        let Some(link) = self.node().link(Ns::Host, dev)? else {
            return Ok(vec![]);
        };
        let Some(pinned) = self.node().mac_set_explicitly(&link) else {
            return Ok(vec![]); // sysfs here shows another namespace's links
        };
        Ok(vec![judged(
            Check::new(
                "bridge.mac",
                Hop::Bridge,
                format!("{dev}'s MAC is pinned"),
                format!("cat /sys/class/net/{dev}/addr_assign_type  # 3: set explicitly"),
            ),
            pinned,
            format!("{dev}'s MAC is the kernel's pick: it follows its lowest port's MAC, so it changes when pods come and go and neighbours' ARP entries for the gateway go stale"),
            fix,
        )])
    }

    fn bridge_exists(&self, name: &str, promisc: bool, fix: String) -> Result<Vec<Check>, Error> {
        let check = Check::new(
            "bridge.exists",
            Hop::Bridge,
            format!("bridge {name} exists"),
            format!("ip -d link show {name}"),
        );
        Ok(vec![match self.node().link(Ns::Host, name)? {
            None => check.broken(
                format!(
                    "no link {name} on the node: no pod of this network has a switch to plug into"
                ),
                fix,
            ),
            Some(l) if l.kind.as_deref() != Some("bridge") => check.broken(
                format!(
                    "{name} is a {} link, not a bridge",
                    l.kind.as_deref().unwrap_or("plain")
                ),
                format!("ip link del {name}  # then re-create the pods: ADD makes the bridge"),
            ),
            Some(l) => {
                let mut out = vec![check];
                if promisc {
                    out.push(judged(
                        Check::new(
                            "bridge.promisc",
                            Hop::Bridge,
                            format!("{name} is promiscuous (\"promiscMode\": true)"),
                            format!("ip -d link show {name}  # promiscuity"),
                        ),
                        l.promisc,
                        format!("{name} is not promiscuous: it drops frames not addressed to it"),
                        format!("ip link set {name} promisc on"),
                    ));
                }
                return Ok(out);
            }
        }])
    }

    /// The pod's end and the node's end of its veth.
    fn veth(&self, peer: &str) -> Vec<Check> {
        let Some(t) = self.t else { return vec![] };
        let recreate = "re-create the pod (the runtime's DEL then ADD builds a new veth)";
        let show = format!("{} -d link show {peer}", self.pod_ip());
        let link = Check::new(
            "pod.link",
            Hop::Pod,
            format!("{peer} exists in the pod, a veth"),
            show,
        );
        let link = match &t.link {
            None => link.broken(format!("no interface {peer} in the pod"), recreate),
            Some(l) if l.kind.as_deref() != Some("veth") => link.broken(
                format!(
                    "{peer} is a {} link, not a veth",
                    l.kind.as_deref().unwrap_or("plain")
                ),
                recreate,
            ),
            Some(_) => link,
        };
        if !link.ok {
            return vec![link];
        }
        let cable = Check::new(
            "cable.peer",
            Hop::Cable,
            format!("the other end of {peer} is on this node ({})", self.veth),
            "ip -d link show type veth".to_string(),
        );
        let cable = match &t.host_end {
            Some(_) => cable,
            None => cable.broken(
                format!("the other end of the pod's {peer} is not on this node"),
                recreate,
            ),
        };
        vec![link, cable]
    }

    fn master(&self, dev: &str, master: &str, fix: String) -> Result<Vec<Check>, Error> {
        let Some(port) = self.host_link(dev)? else {
            return Ok(vec![]);
        };
        let bridge = self.node().link(Ns::Host, master)?;
        let check = Check::new(
            "cable.master",
            Hop::Cable,
            format!("{dev} is a port of {master}"),
            format!("ip link show master {master}"),
        );
        let ok = bridge.is_some_and(|b| port.master == Some(b.index));
        Ok(vec![judged(
            check,
            ok,
            format!("{dev} is not attached to {master}: the pod's frames reach no bridge"),
            fix,
        )])
    }

    fn sysctl(
        &self,
        ns: Ns,
        key: &str,
        value: &str,
        optional: bool,
        fix: String,
    ) -> Result<Vec<Check>, Error> {
        let dotted = key.replace('/', ".");
        let (id, hop, reader) = match ns {
            Ns::Pod => {
                let Some(pod) = self.t.and_then(|t| t.node.as_ref()) else {
                    return Ok(vec![]);
                };
                let id = if key.ends_with("/arp_notify") {
                    "pod.arp_notify"
                } else {
                    "pod.sysctl"
                };
                (id, Hop::Pod, pod)
            }
            Ns::Host if key.contains(&format!("/{}/", self.bridge())) => {
                ("bridge.sysctl", Hop::Bridge, self.node())
            }
            Ns::Host if key.contains("/conf/") && !key.contains("/conf/all/") => {
                if self.veth == NO_VETH {
                    return Ok(vec![]);
                }
                ("cable.sysctl", Hop::Cable, self.node())
            }
            Ns::Host => ("node.forwarding", Hop::Node, self.node()),
        };
        let show = match ns {
            Ns::Pod => match self.t.and_then(|t| t.netns.as_deref()) {
                Some(p) => format!("nsenter --net={} sysctl {dotted}", p.display()),
                None => format!("sysctl {dotted}"),
            },
            Ns::Host => format!("sysctl {dotted}"),
        };
        let have = reader.read_sysctl(ns, key)?;
        if have.is_none() && optional {
            return Ok(vec![]);
        }
        let problem = match (&have, id) {
            (Some(v), "node.forwarding") => format!(
                "{dotted} is {v}: the node does not forward, so pods reach only their own subnet"
            ),
            (Some(v), _) => format!("{dotted} is {v}, the plan sets {value}"),
            (None, _) => format!("{dotted} does not exist"),
        };
        Ok(vec![judged(
            Check::new(id, hop, format!("{dotted} = {value}"), show),
            have.as_deref() == Some(value),
            problem,
            fix,
        )])
    }

    fn pod_route(
        &self,
        dst: IpNet,
        gw: Option<IpAddr>,
        dev: &str,
        fix: String,
    ) -> Result<Vec<Check>, Error> {
        let Some(pod) = self.t.and_then(|t| t.node.as_ref()) else {
            return Ok(vec![]);
        };
        let routes = pod.routes(Ns::Pod)?;
        let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
        let name = if dst.prefix_len() == 0 {
            "default".to_string()
        } else {
            dst.to_string()
        };
        let found = routes
            .iter()
            .any(|r| r.dst == dst && (gw.is_none() || r.gw == gw));
        Ok(vec![judged(
            Check::new(
                "pod.route",
                Hop::Pod,
                format!("the pod routes {name}{via} dev {dev}"),
                format!("{} route show", self.pod_ip()),
            ),
            found,
            format!(
                "route {name}{via} missing in the pod: its packets to {name} have nowhere to go"
            ),
            fix,
        )])
    }

    /// The network's rule (with the exclusions the plan computes) and, for a pod, its
    /// addresses in the network's set.
    fn masquerade(&self, op: &Op) -> Result<Vec<Check>, Error> {
        let Op::AddMasquerade {
            network,
            srcs,
            exclude,
            tag,
        } = op
        else {
            return Ok(vec![]);
        };
        let rules = self.node().masquerade_rules()?;
        let elems = self.node().masquerade_elements(network)?;
        // A pod made by an older vnet has a per-pod rule of its own.
        let legacy = rules
            .iter()
            .any(|r| !r.reads_named_set() && &r.comment == tag);
        let mut out = Vec::new();
        for v6 in [false, true] {
            let Some(src) = srcs.iter().find(|s| s.is_ipv6() == v6) else {
                continue;
            };
            let set = masq::masq_set(network, v6);
            // Without a pod, the rule matters once some pod's address is in the set.
            if self.t.is_none() && !elems.iter().any(|(e, _)| e.is_ipv6() == v6) {
                continue;
            }
            let keep = masq::rule_exclusions(exclude, v6);
            let want = masq::masq_rule_comment(network, &keep);
            let present = rules
                .iter()
                .any(|r| r.set.as_deref() == Some(set.as_str()) && r.comment == want);
            let fam = if v6 { "ip6" } else { "ip" };
            let not: Vec<String> = keep.iter().map(ToString::to_string).collect();
            out.push(judged(
                Check::new(
                    "node.masquerade",
                    Hop::Node,
                    format!(
                        "one rule masquerades {fam} saddr @{set} to anything but {}",
                        not.join(", ")
                    ),
                    "nft list chain inet vnet postrouting".to_string(),
                ),
                present || legacy,
                format!("no rule reads @{set} with the exclusions of this config (missing, or made before the node table changed): pods leave the node with their own addresses, which the outside cannot answer (the next ADD on this network also puts the rule back)"),
                self.masq_fix(op, &set, " rule ")?,
            ));
            if self.t.is_some() && !legacy {
                let found = elems.iter().any(|(e, _)| e == src);
                out.push(judged(
                    Check::new(
                        "node.masquerade_pod",
                        Hop::Node,
                        format!("{src} is in @{set}"),
                        format!("nft list set inet vnet {set}"),
                    ),
                    found,
                    format!("{src} is not in @{set}: this pod's traffic to the outside keeps its pod address"),
                    self.masq_fix(op, &set, " element ")?,
                ));
            }
        }
        Ok(out)
    }
}

impl Judge<'_> {
    /// What ADD would run for the network's `set` given what the node has now, the
    /// lines about `what` (" rule " or " element ") only.
    fn masq_fix(&self, op: &Op, set: &str, what: &str) -> Result<String, Error> {
        let facts = Facts {
            masq: self.node().masquerade_facts(&self.seen.conf.name)?,
            ..Default::default()
        };
        Ok(lines(std::slice::from_ref(op), &self.pod, &facts)
            .into_iter()
            .filter(|l| l.cmd.contains(what) && l.cmd.contains(set))
            .map(|l| l.cmd)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

fn judged(check: Check, ok: bool, problem: String, fix: String) -> Check {
    if ok {
        check
    } else {
        check.broken(problem, fix)
    }
}

fn up_check(id: &'static str, hop: Hop, link: &Link, show: String, fix: String) -> Check {
    judged(
        Check::new(id, hop, format!("{} is up", link.name), show),
        link.up,
        format!("{} is down: nothing passes through it", link.name),
        fix,
    )
}

/// Every other node's pod subnet routed via that node, and no foreign route in its way.
fn node_routes(seen: &Seen) -> Result<Vec<Check>, Error> {
    let Some(c) = &seen.cluster else {
        return Ok(vec![]);
    };
    let me = cluster::find_self(&seen.node, c)?;
    let want = cluster::desired_routes(&c.table, &me);
    let v4 = want.iter().any(|(d, _)| d.addr().is_ipv4());
    let v6 = want.iter().any(|(d, _)| d.addr().is_ipv6());
    let have = seen.node.main_routes(v4, v6)?;
    let mut out = Vec::new();
    for (dst, gw) in want {
        let owner = c
            .table
            .nodes
            .iter()
            .find(|n| n.pod_cidr == dst)
            .map_or(String::new(), |n| n.name.clone());
        let check = Check::new(
            "node.route",
            Hop::Node,
            format!("{dst} ({owner}'s pods) is routed via {gw}"),
            format!("ip route show {dst}"),
        )
        .about(dst);
        let add = fix(
            &Op::AddNodeRoute { dst, gw },
            &PodNs::Named(String::new()),
            &Facts::default(),
        );
        let exact = have.iter().find(|r| r.dst == dst);
        let shadow = have
            .iter()
            .find(|r| r.dst != dst && dst.contains(&r.dst) && r.gw != Some(gw));
        out.push(match (exact, shadow) {
            (None, _) => check.broken(
                format!("no route to {dst}: packets for {owner}'s pods follow the default route instead"),
                add,
            ),
            (Some(r), _) if r.gw != Some(gw) => check.broken(
                format!(
                    "{dst} goes via {}, but {owner} is {gw}",
                    r.gw.map_or("no gateway".into(), |g| g.to_string())
                ),
                format!("ip route replace {dst} via {gw} proto 118  # or: vnet routes sync --replace-foreign {}", seen.conf_path()),
            ),
            (Some(_), Some(s)) => check.broken(
                format!(
                    "a more specific route {} via {} takes part of {dst} elsewhere",
                    s.dst,
                    s.gw.map_or("no gateway".into(), |g| g.to_string())
                ),
                format!("ip route del {}", s.dst),
            ),
            (Some(_), None) => check,
        });
    }
    Ok(out)
}
