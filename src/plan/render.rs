//! Each plan `Op` as the iproute2 (or sysctl) command a person would type, with the
//! concept it stands for. Pure: what exists already comes in as `Facts`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::plan::{
    masq_rule_comment, masq_set, rule_exclusions, Ns, Op, NFT_CHAIN, NFT_FAMILY, NFT_TABLE,
    VNET_ROUTE_PROTO,
};

/// One shell command and why it is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub cmd: String,
    pub why: String,
}

impl Line {
    pub fn new(cmd: impl Into<String>, why: impl Into<String>) -> Line {
        Line {
            cmd: cmd.into(),
            why: why.into(),
        }
    }

    /// A line that is only a comment (nothing to run).
    pub fn note(why: impl Into<String>) -> Line {
        Line::new("", why)
    }
}

/// How commands name the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodNs {
    /// `/run/netns/NAME`: `ip -n NAME`, `ip netns exec NAME`.
    Named(String),
    /// Any other path (`/proc/PID/ns/net`): `nsenter --net=PATH`.
    Path(String),
}

impl PodNs {
    pub fn from_path(path: &str) -> PodNs {
        for dir in ["/run/netns/", "/var/run/netns/"] {
            if let Some(name) = path.strip_prefix(dir) {
                if !name.is_empty() && !name.contains('/') {
                    return PodNs::Named(name.to_string());
                }
            }
        }
        PodNs::Path(path.to_string())
    }

    fn ip(&self) -> String {
        match self {
            PodNs::Named(n) => format!("ip -n {n}"),
            PodNs::Path(p) => format!("nsenter --net={p} ip"),
        }
    }

    fn exec(&self) -> String {
        match self {
            PodNs::Named(n) => format!("ip netns exec {n}"),
            PodNs::Path(p) => format!("nsenter --net={p}"),
        }
    }

    /// The `netns` argument of `ip link add … peer … netns X`: a name, or a PID's netns.
    fn link_arg(&self) -> String {
        match self {
            PodNs::Named(n) => n.clone(),
            PodNs::Path(p) => p
                .strip_prefix("/proc/")
                .and_then(|r| r.strip_suffix("/ns/net"))
                .map_or_else(|| p.clone(), str::to_string),
        }
    }
}

/// What the node already has, so shared pieces are shown as reused instead of created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub bridge_exists: bool,
    pub bridge_addrs: Vec<IpNet>,
    /// The network's masquerade sets and the rules reading them, IPv4 and IPv6.
    pub masq: [MasqFacts; 2],
}

/// One family's masquerade set on the node: whether it exists, and the `(handle,
/// comment)` of each rule that reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MasqFacts {
    pub set: bool,
    pub rules: Vec<(u64, String)>,
}

fn ip_in(ns: Ns, pod: &PodNs) -> String {
    match ns {
        Ns::Host => "ip".to_string(),
        Ns::Pod => pod.ip(),
    }
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv6() {
        " -6"
    } else {
        ""
    }
}

/// `net/ipv4/conf/eth0/arp_notify` → `net.ipv4.conf.eth0.arp_notify`, unless a component
/// holds a dot (an interface like `eth0.100`), where sysctl needs the slash form.
fn sysctl_name(key: &str) -> String {
    if key.split('/').any(|c| c.contains('.')) {
        key.to_string()
    } else {
        key.replace('/', ".")
    }
}

fn mac_text(mac: &[u8; 6]) -> String {
    crate::cni::mac::format_mac(mac)
}

/// The commands for `ops`, in order.
pub fn lines(ops: &[Op], pod: &PodNs, facts: &Facts) -> Vec<Line> {
    ops.iter().flat_map(|op| op_lines(op, pod, facts)).collect()
}

fn op_lines(op: &Op, pod: &PodNs, facts: &Facts) -> Vec<Line> {
    match op {
        Op::EnsureBridge { name, mtu, promisc } => bridge_lines(name, *mtu, *promisc, facts),
        Op::AddVeth { host, peer, mtu, peer_mac } => {
            let mtu_s = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
            let mac_s = peer_mac.map(|m| format!(" address {}", mac_text(&m))).unwrap_or_default();
            vec![Line::new(
                format!("ip link add {host}{mtu_s} type veth peer name {peer}{mtu_s}{mac_s} netns {}", pod.link_arg()),
                format!("the pod's \"cable\": a veth pair, {peer} created straight inside the pod, {host} on the node"),
            )]
        }
        Op::SetMaster { dev, master } => vec![Line::new(
            format!("ip link set {dev} master {master}"),
            "plug the node end into the bridge, like a cable into a switch port",
        )],
        Op::NoLinkLocal { dev } => vec![Line::new(
            format!("ip link set {dev} addrgenmode none"),
            "no IPv6 link-local address on a bridge port: it carries frames, the bridge holds the node's addresses",
        )],
        Op::SetHairpin { dev } => vec![Line::new(
            format!("ip link set {dev} type bridge_slave hairpin on"),
            "hairpin: let the pod reach itself through a service address",
        )],
        Op::LinkUp { ns, dev } => vec![Line::new(
            format!("{} link set {dev} up", ip_in(*ns, pod)),
            match ns {
                Ns::Host => format!("bring {dev} up on the node"),
                Ns::Pod => format!("bring {dev} up inside the pod"),
            },
        )],
        Op::Sysctl { ns, key, value, optional } => sysctl_line(*ns, key, value, *optional, pod),
        Op::AddAddr { ns, dev, addr } => vec![Line::new(
            format!("{} addr add {addr} dev {dev}", ip_in(*ns, pod)),
            "the pod's address, from IPAM; the kernel adds the route to its subnet",
        )],
        Op::EnsureBridgeAddr { dev, addr, force } => gateway_lines(dev, *addr, *force, facts),
        Op::PinMac { dev } => vec![Line::new(
            format!("ip link set {dev} address $(cat /sys/class/net/{dev}/address)"),
            "pin the bridge MAC: otherwise it follows its lowest port's MAC and neighbours' ARP goes stale",
        )],
        Op::AddRoute { ns, dst, gw, dev } => vec![route_line(*ns, *dst, *gw, dev, pod)],
        Op::DelLink { ns, dev } => vec![Line::new(
            format!("{} link del {dev}", ip_in(*ns, pod)),
            "deleting one end of a veth pair deletes both; addresses and routes go with it",
        )],
        Op::AddNodeRoute { dst, gw } => vec![Line::new(
            format!("ip{} route add {dst} via {gw} proto {VNET_ROUTE_PROTO}", family(*gw)),
            "pods of another node live behind that node: route its pod subnet via its node IP",
        )],
        Op::ReplaceNodeRoute { dst, gw, previous } => vec![Line::new(
            format!("ip{} route replace {dst} via {gw} proto {VNET_ROUTE_PROTO}", family(*gw)),
            format!("that node's IP changed (was {previous})"),
        )],
        Op::DelNodeRoute { dst, gw } => {
            let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
            vec![Line::new(
                format!("ip{} route del {dst}{via} proto {VNET_ROUTE_PROTO}", family(dst.addr())),
                "this subnet left the node table; proto 118 marks routes vnet made, so no other route is touched",
            )]
        }
        Op::AddMasquerade {
            network,
            srcs,
            exclude,
            tag,
        } => masquerade_lines(network, srcs, exclude, tag, facts),
        Op::DelMasquerade {
            network,
            addrs,
            tag,
        } => unmasquerade_lines(network, addrs, tag),
    }
}

fn set_family(ip: IpAddr) -> (&'static str, &'static str, &'static str) {
    if ip.is_ipv4() {
        ("ip", "ipv4_addr", "224.0.0.0/4")
    } else {
        ("ip6", "ipv6_addr", "ff00::/8")
    }
}

fn masquerade_lines(
    network: &str,
    srcs: &[IpAddr],
    exclude: &[IpNet],
    tag: &str,
    facts: &Facts,
) -> Vec<Line> {
    let of = |ip: &IpAddr| &facts.masq[usize::from(ip.is_ipv6())];
    let mut out = Vec::new();
    if srcs.iter().any(|s| !of(s).set) {
        out.push(Line::new(
            format!("nft add table {NFT_FAMILY} {NFT_TABLE}"),
            "vnet's own nftables table: nobody else's rules are touched",
        ));
        out.push(Line::new(
            format!("nft add chain {NFT_FAMILY} {NFT_TABLE} {NFT_CHAIN} '{{ type nat hook postrouting priority srcnat; policy accept; }}'"),
            "source NAT happens after routing, on the way out",
        ));
    }
    let mut seen = Vec::new();
    for src in srcs {
        let (fam, kind, _) = set_family(*src);
        let set = masq_set(network, src.is_ipv6());
        if seen.contains(&set) {
            continue;
        }
        seen.push(set.clone());
        let keep = rule_exclusions(exclude, src.is_ipv6());
        let want = masq_rule_comment(network, &keep);
        let here = of(src);
        let add_rule = Line::new(
            format!(
                "nft add rule {NFT_FAMILY} {NFT_TABLE} {NFT_CHAIN} {fam} saddr @{set} {} masquerade comment '\"{want}\"'",
                keep.iter()
                    .map(|n| format!("{fam} daddr != {n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "ipMasq, one rule per network: leaving the pod network, a pod's address is replaced by the node's (one set lookup per packet however many pods); the comment fingerprints what it leaves alone",
        );
        if !here.set {
            out.push(Line::new(
                format!("nft add set {NFT_FAMILY} {NFT_TABLE} {set} '{{ type {kind}; }}'"),
                "the network's pods, one set per family: the first pod of the network makes it (vnet makes it exclusively, so two first pods cannot both add the rule)",
            ));
            out.push(add_rule);
        } else if here.rules.iter().any(|(_, c)| *c == want) && here.rules.len() == 1 {
            out.push(Line::note(format!(
                "masquerade set {set} and the network's rule exist already (its first pod made them)"
            )));
        } else {
            let kept = here.rules.iter().find(|(_, c)| *c == want).map(|(h, _)| *h);
            if kept.is_none() {
                out.push(add_rule);
            }
            for (h, c) in here.rules.iter().filter(|(h, _)| Some(*h) != kept) {
                out.push(Line::new(
                    format!("nft delete rule {NFT_FAMILY} {NFT_TABLE} {NFT_CHAIN} handle {h}"),
                    format!("{c:?} reads the set with other exclusions than this config's (a node joined?) or twice: this ADD's rule replaces it"),
                ));
            }
            if kept.is_none() && here.rules.is_empty() {
                if let Some(l) = out.last_mut() {
                    l.why = "the set exists but no rule reads it (a flushed chain?): this ADD puts the network's rule back".into();
                }
            }
        }
        out.push(Line::new(
            format!(
                "nft add element {NFT_FAMILY} {NFT_TABLE} {set} '{{ {src} comment \"{tag}\" }}'"
            ),
            "this pod's address joins the set, tagged with its attachment",
        ));
    }
    out
}

fn unmasquerade_lines(network: &str, addrs: &[IpAddr], tag: &str) -> Vec<Line> {
    if addrs.is_empty() {
        return vec![Line::new(
            format!("nft list set {NFT_FAMILY} {NFT_TABLE} {} | grep 'comment \"{tag}\"'", masq_set(network, false)),
            format!("then `nft delete element {NFT_FAMILY} {NFT_TABLE} SET '{{ ADDRESS }}'` for each (and the same in the IPv6 set): the pod's elements, found by their tag even without its namespace or its addresses"),
        )];
    }
    addrs
        .iter()
        .map(|a| {
            Line::new(
                format!(
                    "nft delete element {NFT_FAMILY} {NFT_TABLE} {} '{{ {a} }}'",
                    masq_set(network, a.is_ipv6())
                ),
                "the pod's address leaves the network's masquerade set",
            )
        })
        .collect()
}

fn bridge_lines(name: &str, mtu: Option<u32>, promisc: bool, facts: &Facts) -> Vec<Line> {
    let mut out = if facts.bridge_exists {
        vec![Line::note(format!(
            "bridge {name} exists already: every pod of this node shares it"
        ))]
    } else {
        let mtu_s = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
        vec![Line::new(
            format!("ip link add {name}{mtu_s} type bridge"),
            "one bridge per node: the virtual switch all its pods plug into",
        )]
    };
    if promisc {
        out.push(Line::new(
            format!("ip link set {name} promisc on"),
            "promiscMode: the bridge sees every frame",
        ));
    }
    out
}

fn sysctl_line(ns: Ns, key: &str, value: &str, optional: bool, pod: &PodNs) -> Vec<Line> {
    let prefix = match ns {
        Ns::Host => String::new(),
        Ns::Pod => format!("{} ", pod.exec()),
    };
    let tail = if optional { " 2>/dev/null || true" } else { "" };
    let why = match key.rsplit('/').next().unwrap_or_default() {
        "ip_forward" | "forwarding" => {
            "let the node route between pods and the rest of the network"
        }
        "arp_notify" => {
            "announce the new MAC so neighbours drop stale ARP entries for a reused address"
        }
        "accept_dad" if value == "0" => {
            "no duplicate address detection: IPAM already guarantees uniqueness, DAD costs ~1 s"
        }
        "accept_dad" | "enhanced_dad" => "duplicate address detection on, as asked (enabledad)",
        "accept_ra" => "ignore router advertisements: addresses here come from IPAM only",
        "disable_ipv6" => "make sure IPv6 is on where an IPv6 address goes",
        "keep_addr_on_down" => "keep IPv6 addresses when the link goes down",
        _ => "kernel setting",
    };
    vec![Line::new(
        format!("{prefix}sysctl -qw {}={value}{tail}", sysctl_name(key)),
        why,
    )]
}

fn gateway_lines(dev: &str, addr: IpNet, force: bool, facts: &Facts) -> Vec<Line> {
    if facts.bridge_addrs.contains(&addr) {
        return vec![Line::note(format!(
            "{dev} already holds the gateway {addr}"
        ))];
    }
    let mut out = Vec::new();
    // As the reference bridge judges it: any other IPv4 address on the bridge, or an
    // overlapping IPv6 one, conflicts with the gateway.
    let clashes = facts.bridge_addrs.iter().filter(|old| {
        old.addr().is_ipv4() == addr.addr().is_ipv4()
            && (addr.addr().is_ipv4()
                || old.contains(&addr.network())
                || addr.contains(&old.network()))
    });
    for old in clashes {
        if force {
            out.push(Line::new(
                format!("ip addr del {old} dev {dev}"),
                "forceAddress: drop the conflicting address",
            ));
        } else {
            out.push(Line::note(format!(
                "WARNING: the real ADD fails here (code 106): {dev} holds {old}, which conflicts with the gateway {addr}; set \"forceAddress\": true to replace it, or use another bridge"
            )));
        }
    }
    let nodad = if addr.addr().is_ipv6() { " nodad" } else { "" };
    out.push(Line::new(
        format!("ip addr add {addr} dev {dev}{nodad}"),
        "the gateway lives on the bridge: pods send off-subnet traffic here",
    ));
    out
}

fn route_line(ns: Ns, dst: IpNet, gw: Option<IpAddr>, dev: &str, pod: &PodNs) -> Line {
    let dst_s = if dst.prefix_len() == 0 {
        "default".to_string()
    } else {
        dst.to_string()
    };
    let fam = family(dst.addr());
    let via = gw.map(|g| format!(" via {g}")).unwrap_or_default();
    let why = match (dst.prefix_len(), gw) {
        (0, Some(_)) => "default route: everything off the pod's subnet goes to the gateway",
        (_, Some(_)) => "a route from the IPAM config, through the gateway",
        (_, None) => "an on-link route from the IPAM config",
    };
    Line::new(
        format!("{}{fam} route add {dst_s}{via} dev {dev}", ip_in(ns, pod)),
        why,
    )
}

/// A call of the delegated IPAM plugin (an `ipam.type` other than host-local): `plugin`
/// is its path, or `CNI_PATH/<type>` where it is not resolved (explain).
pub fn delegate_line(command: &str, plugin: &str) -> Line {
    let what = match command {
        "ADD" => ": it answers with the pod's addresses and routes",
        "DEL" => ": it releases what it handed out",
        _ => "",
    };
    Line::new(
        format!("CNI_COMMAND={command} {plugin} < $CONF"),
        format!("the ipam.type plugin, given the network config on stdin and vnet's CNI_* variables{what}"),
    )
}

/// Widest comment line: explain is read in a terminal, and a student's is rarely wider.
const WRAP: usize = 100;

/// Lines as text, each command under the comment that says why, so a line stays about as
/// wide as its command (a comment beside the longest command made lines of 170 columns and
/// more). A note that opens a new part after commands gets a blank line before it.
pub fn render(lines: &[Line]) -> String {
    let mut out = String::new();
    let mut after_cmd = false;
    for l in lines {
        if l.cmd.is_empty() && after_cmd {
            out.push('\n');
        }
        comment(&mut out, &l.why);
        if !l.cmd.is_empty() {
            out.push_str(&l.cmd);
            out.push('\n');
        }
        after_cmd = !l.cmd.is_empty();
    }
    out
}

/// `# text`, wrapped at word boundaries to `WRAP` columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > WRAP {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
