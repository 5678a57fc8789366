//! The store's side: the pod's reservation, addresses held twice, a full pool, and
//! reservations no pod holds any more.

use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::ipam::NetworkStatus;

use super::target::Target;
use crate::net::live::BridgePod;

use super::{ip_in, Check, Hop, Seen};

/// The same namespace, whatever file names it.
fn same_ns(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => a == b,
    }
}

pub(super) fn checks(seen: &Seen, t: Option<&Target>) -> Vec<Check> {
    let Some(status) = &seen.status else {
        return Vec::new(); // delegated IPAM: its store is not ours to read
    };
    let mut out = Vec::new();
    if let Some(t) = t {
        out.extend(reserved(seen, status, t));
    }
    out.push(duplicates(seen, status, t));
    out.extend(pool(seen, status));
    out.push(stale(seen, status, t));
    out
}

fn ls(status: &NetworkStatus) -> String {
    format!("ls -l {}", status.dir.display())
}

fn reserved(seen: &Seen, status: &NetworkStatus, t: &Target) -> Vec<Check> {
    let recreate = "re-create the pod (the runtime's DEL then ADD reserves an address for it)";
    let who = match &t.container {
        Some(id) => format!("container {id} ({})", t.ifname),
        None => format!("the pod's {}", t.ifname),
    };
    let check = Check::new(
        "store.reserved",
        Hop::Store,
        format!("the store holds the address of {who}"),
        ls(status),
    );
    if t.reserved.is_empty() {
        let problem = match t.addrs.iter().find(|a| in_ranges(seen, a.addr())) {
            Some(a) => format!(
                "{} is on the pod but reserved for nobody: IPAM can hand it to the next pod",
                a.addr()
            ),
            None => format!("no reservation names {who}"),
        };
        return vec![check.broken(problem, recreate)];
    }
    let list: Vec<String> = t.reserved.iter().map(ToString::to_string).collect();
    let mut check = check;
    check.fact = format!("{} reserved for {who}", list.join(", "));
    check.show = format!("cat {}", status.dir.join(&list[0]).display());
    vec![check]
}

fn in_ranges(seen: &Seen, ip: IpAddr) -> bool {
    seen.ipam
        .as_ref()
        .is_some_and(|c| c.range_sets.iter().any(|s| s.contains(ip)))
}

/// An address of the network on two pods of this bridge (for a pod: on it and another).
fn duplicates(seen: &Seen, status: &NetworkStatus, t: Option<&Target>) -> Check {
    let check = Check::new(
        "store.duplicate",
        Hop::Store,
        "no address of the network is on two pods of this node",
        format!("ip -br addr  # in each pod; owners: {}", ls(status)),
    );
    let mine: Vec<IpAddr> = match t {
        Some(t) => t.addrs.iter().map(|a| a.addr()).collect(),
        None => seen
            .pods
            .iter()
            .flat_map(|p| p.addrs.iter().map(|a| a.addr()))
            .collect(),
    };
    for ip in mine.into_iter().filter(|ip| in_ranges(seen, *ip)) {
        let holders: Vec<&BridgePod> = seen
            .pods
            .iter()
            .filter(|p| p.addrs.iter().any(|a| a.addr() == ip))
            .collect();
        let own = t.and_then(|t| t.netns.as_deref());
        let others: Vec<&BridgePod> = match own {
            Some(own) => holders
                .iter()
                .copied()
                .filter(|h| !same_ns(&h.netns, own))
                .collect(),
            None => holders.iter().skip(1).copied().collect(),
        };
        let Some(other) = others.first() else {
            continue;
        };
        let owner = status
            .reservations
            .iter()
            .find(|r| r.ip == ip)
            .and_then(|r| r.container_id.clone());
        let first = own.unwrap_or(holders[0].netns.as_path());
        let problem = format!(
            "{ip} is on two pods, {} and {}: replies go to whichever answered ARP last (the store reserves it for {})",
            first.display(),
            other.netns.display(),
            owner.as_deref().unwrap_or("nobody")
        );
        // The pod the store does not name gives the address up.
        let fix = match t {
            Some(t) if t.container.is_some() && t.container == owner => del_addr(other, ip),
            Some(t) if !t.reserved.contains(&ip) => t
                .netns
                .as_deref()
                .zip(t.addrs.iter().find(|a| a.addr() == ip))
                .map(|(ns, a)| format!("{} addr del {a} dev {}", ip_in(ns), t.ifname))
                .unwrap_or_default(),
            _ => format!("vnet doctor --pod on each of them says which one the store reserves {ip} for; remove it from the other"),
        };
        return check.broken(problem, fix);
    }
    check
}

/// The command that takes `ip` off a pod's interface.
fn del_addr(pod: &BridgePod, ip: IpAddr) -> String {
    match pod.addrs.iter().find(|a| a.addr() == ip) {
        Some(a) => format!("{} addr del {a} dev {}", ip_in(&pod.netns), pod.ifname),
        None => String::new(),
    }
}

fn pool(seen: &Seen, status: &NetworkStatus) -> Vec<Check> {
    let Some(sets) = &status.sets else {
        return Vec::new();
    };
    let conf = seen.conf_path();
    let orphans = orphans(seen, status, None);
    sets.iter()
        .map(|set| {
            let ranges: Vec<String> = set
                .ranges
                .iter()
                .map(|r| r.range.subnet().to_string())
                .collect();
            let check = Check::new(
                "store.pool",
                Hop::Store,
                format!(
                    "range set {} ({}) has a free address ({} of {} reserved)",
                    set.index,
                    ranges.join(", "),
                    set.reserved(),
                    set.size()
                ),
                format!("vnet ipam status --conf {conf}"),
            );
            if set.reserved() < set.size() {
                return check;
            }
            let fix = if orphans.is_empty() {
                "every address is held by a live pod: a larger range in ipam.ranges, or fewer pods".to_string()
            } else {
                del_fix(seen, &orphans)
            };
            check.broken(
                format!(
                    "the pool is exhausted: every new pod's ADD fails, pods stay without an address ({} of the reservations name no live pod)",
                    orphans.len()
                ),
                fix,
            )
        })
        .collect()
}

/// Reservations whose address is on no pod of this bridge, nor on the pod asked about
/// (whose cable may be what is broken): (address, container, ifname).
fn orphans(
    seen: &Seen,
    status: &NetworkStatus,
    t: Option<&Target>,
) -> Vec<(IpAddr, String, String)> {
    let own = t.map(|t| t.addrs.as_slice()).unwrap_or_default();
    let live: Vec<IpAddr> = seen
        .pods
        .iter()
        .flat_map(|p| p.addrs.iter())
        .chain(own)
        .map(|a| a.addr())
        .collect();
    status
        .reservations
        .iter()
        .filter(|r| !live.contains(&r.ip))
        .map(|r| {
            (
                r.ip,
                r.container_id.clone().unwrap_or_default(),
                r.ifname.clone().unwrap_or_else(|| "eth0".into()),
            )
        })
        .collect()
}

/// The DEL the runtime never sent, for each orphaned reservation: without a netns, as
/// the spec allows, so the plugin releases the address and its masquerade element.
fn del_fix(seen: &Seen, orphans: &[(IpAddr, String, String)]) -> String {
    let plugin = &seen.plugin;
    // CNI_PATH is where the plugin is; a bare name was found on PATH, where
    // install.sh puts it next to the runtime's /opt/cni/bin.
    let dir = std::path::Path::new(plugin)
        .parent()
        .map(|d| d.display().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/opt/cni/bin".into());
    let conf = seen.conf_path();
    let del = |id: &str, ifname: &str| {
        format!("CNI_COMMAND=DEL CNI_CONTAINERID={id} CNI_IFNAME={ifname} CNI_NETNS= CNI_PATH={dir} {plugin} <{conf} >/dev/null")
    };
    let mut ids: Vec<&str> = orphans.iter().map(|(_, id, _)| id.as_str()).collect();
    ids.dedup();
    let same_if = orphans.windows(2).all(|w| w[0].2 == w[1].2);
    match (ids.as_slice(), same_if) {
        ([one], _) => del(one, &orphans[0].2),
        (_, true) => format!(
            "for id in {}; do {}; done",
            ids.join(" "),
            del("\"$id\"", &orphans[0].2)
        ),
        _ => orphans
            .iter()
            .map(|(_, id, ifname)| del(id, ifname))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Reservations whose address is on no pod of this bridge.
fn stale(seen: &Seen, status: &NetworkStatus, t: Option<&Target>) -> Check {
    let conf = seen.conf_path();
    let check = Check::new(
        "store.stale",
        Hop::Store,
        "every reservation is held by a pod of this node",
        format!("vnet ipam status --conf {conf}"),
    );
    let orphans = orphans(seen, status, t);
    if orphans.is_empty() {
        return check;
    }
    // Named up to a few; a full pool of orphans is counted, not listed.
    const NAMED: usize = 5;
    let mut named: Vec<String> = orphans
        .iter()
        .take(NAMED)
        .map(|(ip, id, _)| {
            format!(
                "{ip} ({})",
                if id.is_empty() {
                    "owner unreadable"
                } else {
                    id
                }
            )
        })
        .collect();
    if orphans.len() > NAMED {
        named.push(format!("and {} more", orphans.len() - NAMED));
    }
    check.broken(
        format!(
            "{} reservation(s) name no live pod: {} (a crash or a lost DEL; a pod being created right now looks like this for a moment)",
            orphans.len(),
            named.join(", ")
        ),
        del_fix(seen, &orphans),
    )
}
