//! From config + IPAM result to the list of kernel changes, without touching the kernel.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::cni::result::{IpConfig, Route};
use crate::cni::{CniResult, NetConf};
use crate::ipam::{self, IpamConf};
use crate::plan::{Ns, Op};

/// The interfaces of an ADD result, in the reference bridge's order. `ips[].interface`
/// is an index into this list, so the list and the index come from one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iface {
    Bridge,
    HostVeth,
    Pod,
}

pub const RESULT_IFACES: [Iface; 3] = [Iface::Bridge, Iface::HostVeth, Iface::Pod];

/// Where `role` stands in the result's interfaces.
pub fn iface_index(role: Iface) -> usize {
    RESULT_IFACES.iter().position(|r| *r == role).unwrap_or(0)
}

/// Index of the pod interface in the result.
pub const POD_IFACE: usize = 2;
const _: () = assert!(matches!(RESULT_IFACES[POD_IFACE], Iface::Pod));

/// Completes the IPAM result the way the reference bridge does: every address belongs to
/// the pod interface; with `isGateway` a missing gateway is the subnet's first address;
/// with `isDefaultGateway` each family with a gateway gets a default route through it,
/// unless IPAM already returned one with a gateway.
pub fn finish_result(conf: &NetConf, res: &mut CniResult) {
    for ip in &mut res.ips {
        ip.interface = Some(POD_IFACE);
        if ip.gateway.is_none() && conf.is_gateway {
            ip.gateway = first_host(ip.address);
        }
    }
    if !conf.is_default_gateway {
        return;
    }
    let gateways: Vec<IpAddr> = res.ips.iter().filter_map(|ip| ip.gateway).collect();
    for v4 in [true, false] {
        let Some(gw) = gateways.iter().find(|g| g.is_ipv4() == v4) else {
            continue;
        };
        let has_default = res
            .routes
            .iter()
            .any(|r| r.dst.prefix_len() == 0 && r.dst.addr().is_ipv4() == v4 && r.gw.is_some());
        if !has_default {
            res.routes.push(Route::new(default_dst(v4), Some(*gw)));
        }
    }
}

fn first_host(net: IpNet) -> Option<IpAddr> {
    match net.network() {
        IpAddr::V4(a) => Some(IpAddr::V4((u32::from(a).checked_add(1)?).into())),
        IpAddr::V6(a) => Some(IpAddr::V6((u128::from(a).checked_add(1)?).into())),
    }
}

fn default_dst(v4: bool) -> IpNet {
    if v4 {
        IpNet::V4(Default::default())
    } else {
        IpNet::V6(Default::default())
    }
}

fn sysctl(ns: Ns, key: String, value: &str, optional: bool) -> Op {
    Op::Sysctl {
        ns,
        key,
        value: value.to_string(),
        optional,
    }
}

/// When ADD asks IPAM for the pod's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpamStep {
    /// Before the first change (built-in host-local, or no IPAM): the store needs nothing
    /// from the kernel, so a full range or a bad `resolvConf` fails with nothing to undo,
    /// and the plan is [`add_ops`].
    First,
    /// Once the pod's link is up on the bridge ([`link_ops`]), then [`address_ops`] with
    /// the plugin's answer.
    AfterLink,
}

/// Every delegated plugin runs after the link, not only `dhcp` by name. `dhcp` must: its
/// daemon runs a DHCP client on `CNI_IFNAME` inside `CNI_NETNS`, which has to exist, be up
/// and reach the server through the bridge. The reference bridge calls every IPAM plugin
/// once the veth exists, so that is what a delegated plugin is written against, and vnet
/// cannot see what a plugin does with the interface (a copy or a wrapper of dhcp under
/// another name would slip past a name check). The cost is only on failure: a plugin that
/// refuses makes ADD delete the veth it just made. What vnet checks itself (config,
/// `CNI_PATH` and the plugin in it, the namespace, the interface name) still fails before
/// any change.
pub fn ipam_step(conf: &NetConf) -> IpamStep {
    match &conf.ipam_type {
        Some(_) if !conf.builtin_ipam() => IpamStep::AfterLink,
        _ => IpamStep::First,
    }
}

/// The ADD plan when IPAM ran first. `res` is the finished result (see `finish_result`);
/// `None` for L2 only. `masq` (see `masq::add_op`) goes before the bridge gateway steps: if
/// the shared bridge then refuses its gateway address, the element is rolled back with the
/// pod's veth.
pub fn add_ops(
    conf: &NetConf,
    ifname: &str,
    host_veth: &str,
    res: Option<&CniResult>,
    masq: Option<Op>,
) -> Vec<Op> {
    let ips = res.map(|r| r.ips.as_slice()).unwrap_or_default();
    let mut ops = bridge_and_veth(conf, ifname, host_veth);
    ops.extend(pod_sysctls(conf, ifname, ips));
    ops.extend(attach(conf, host_veth));
    ops.extend(pod_addrs(ifname, ips));
    ops.push(pod_up(ifname));
    if let Some(res) = res {
        ops.extend(layer3(conf, ifname, res, masq));
    }
    // Once a port is attached the bridge MAC would follow the lowest port MAC; pin it.
    ops.push(Op::PinMac {
        dev: conf.bridge.clone(),
    });
    ops
}

/// The first phase when IPAM runs after the link: the bridge, the veth plugged in and up
/// at both ends. Undone by deleting the veth (the bridge stays, as in every ADD).
pub fn link_ops(conf: &NetConf, ifname: &str, host_veth: &str) -> Vec<Op> {
    let mut ops = bridge_and_veth(conf, ifname, host_veth);
    ops.extend(attach(conf, host_veth));
    ops.push(pod_up(ifname));
    ops.push(Op::PinMac {
        dev: conf.bridge.clone(),
    });
    ops
}

/// The second phase: what the plugin answered with (`res`, finished). The pod's link is up
/// already, so `arp_notify` cannot announce this address (the kernel announces on link up
/// and MAC changes); it is set all the same, for the link's later changes.
pub fn address_ops(conf: &NetConf, ifname: &str, res: &CniResult, masq: Option<Op>) -> Vec<Op> {
    let mut ops = pod_sysctls(conf, ifname, &res.ips);
    ops.extend(pod_addrs(ifname, &res.ips));
    ops.extend(layer3(conf, ifname, res, masq));
    ops
}

fn bridge_and_veth(conf: &NetConf, ifname: &str, host_veth: &str) -> Vec<Op> {
    let br = conf.bridge.as_str();
    vec![
        Op::EnsureBridge {
            name: br.into(),
            mtu: conf.mtu,
            promisc: conf.promisc,
        },
        // Router advertisements on the bridge would give the node addresses from pods.
        sysctl(Ns::Host, format!("net/ipv6/conf/{br}/accept_ra"), "0", true),
        Op::LinkUp {
            ns: Ns::Host,
            dev: br.into(),
        },
        Op::AddVeth {
            host: host_veth.into(),
            peer: ifname.into(),
            mtu: conf.mtu,
            peer_mac: conf.mac,
        },
        sysctl(
            Ns::Host,
            format!("net/ipv6/conf/{host_veth}/accept_ra"),
            "0",
            true,
        ),
        // A bridge port carries frames; the node's addresses live on the bridge. With a
        // link-local address each port adds two IPv6 routes of its own, and the kernel
        // walks the node's whole IPv6 routing table at every link up and down
        // (fib6_ifup/fib6_ifdown): ADD and DEL would slow down with every pod on the node.
        // Not `disable_ipv6=1`: that sysctl only try-locks RTNL and restarts the write
        // until it gets it, which spins against parallel ADDs (measured twice as slow).
        Op::NoLinkLocal {
            dev: host_veth.into(),
        },
    ]
}

/// The node end into the bridge, and up.
fn attach(conf: &NetConf, host_veth: &str) -> Vec<Op> {
    let mut ops = vec![Op::SetMaster {
        dev: host_veth.into(),
        master: conf.bridge.clone(),
    }];
    if conf.hairpin {
        ops.push(Op::SetHairpin {
            dev: host_veth.into(),
        });
    }
    ops.push(Op::LinkUp {
        ns: Ns::Host,
        dev: host_veth.into(),
    });
    ops
}

fn pod_up(ifname: &str) -> Op {
    Op::LinkUp {
        ns: Ns::Pod,
        dev: ifname.into(),
    }
}

fn pod_sysctls(conf: &NetConf, ifname: &str, ips: &[IpConfig]) -> Vec<Op> {
    let mut ops = Vec::new();
    if !ips.is_empty() {
        // Announce the new MAC so neighbours drop stale ARP entries for a reused address.
        ops.push(sysctl(
            Ns::Pod,
            format!("net/ipv4/conf/{ifname}/arp_notify"),
            "1",
            false,
        ));
    }
    if ips.iter().any(|ip| ip.address.addr().is_ipv6()) {
        ops.extend(ipv6_pod_sysctls(conf, ifname));
    }
    ops
}

fn pod_addrs(ifname: &str, ips: &[IpConfig]) -> Vec<Op> {
    ips.iter()
        .map(|ip| Op::AddAddr {
            ns: Ns::Pod,
            dev: ifname.into(),
            addr: ip.address,
        })
        .collect()
}

/// The pod's routes, its masquerade element, and (with `isGateway`) the gateway on the
/// bridge with forwarding on.
fn layer3(conf: &NetConf, ifname: &str, res: &CniResult, masq: Option<Op>) -> Vec<Op> {
    let mut ops = pod_routes(ifname, res);
    ops.extend(masq);
    if conf.is_gateway {
        ops.extend(gateway_ops(conf, &res.ips));
    }
    ops
}

fn ipv6_pod_sysctls(conf: &NetConf, ifname: &str) -> Vec<Op> {
    let v6 = |what: &str| format!("net/ipv6/conf/{ifname}/{what}");
    let mut ops = vec![
        sysctl(Ns::Pod, "net/ipv6/conf/lo/disable_ipv6".into(), "0", true),
        sysctl(Ns::Pod, v6("disable_ipv6"), "0", true),
        sysctl(Ns::Pod, v6("keep_addr_on_down"), "1", true),
    ];
    // DAD holds a fresh address "tentative" for about a second, which is most of a
    // pod's start-up; the addresses come from IPAM, so duplicates are not expected.
    if conf.enable_dad {
        ops.push(sysctl(Ns::Pod, v6("enhanced_dad"), "1", true));
        ops.push(sysctl(Ns::Pod, v6("accept_dad"), "1", false));
    } else {
        ops.push(sysctl(Ns::Pod, v6("accept_dad"), "0", false));
    }
    ops
}

/// Each route goes out of the pod interface; a route without `gw` uses the first
/// gateway of its family, or is on-link when there is none.
fn pod_routes(ifname: &str, res: &CniResult) -> Vec<Op> {
    res.routes
        .iter()
        .map(|r| {
            let v4 = r.dst.addr().is_ipv4();
            let gw = r.gw.or_else(|| {
                res.ips
                    .iter()
                    .filter_map(|ip| ip.gateway)
                    .find(|g| g.is_ipv4() == v4)
            });
            Op::AddRoute {
                ns: Ns::Pod,
                dst: r.dst,
                gw,
                dev: ifname.into(),
            }
        })
        .collect()
}

fn gateway_ops(conf: &NetConf, ips: &[IpConfig]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut seen: Vec<IpNet> = Vec::new();
    for ip in ips {
        let Some(gw) = ip.gateway else { continue };
        let Ok(addr) = IpNet::new(gw, ip.address.prefix_len()) else {
            continue;
        };
        if !seen.contains(&addr) {
            seen.push(addr);
            ops.push(Op::EnsureBridgeAddr {
                dev: conf.bridge.clone(),
                addr,
                force: conf.force_address,
            });
        }
    }
    if seen.iter().any(|a| a.addr().is_ipv4()) {
        ops.push(sysctl(Ns::Host, "net/ipv4/ip_forward".into(), "1", false));
    }
    if seen.iter().any(|a| a.addr().is_ipv6()) {
        ops.push(sysctl(
            Ns::Host,
            "net/ipv6/conf/all/forwarding".into(),
            "1",
            false,
        ));
    }
    ops
}

/// The IPAM result of an allocation: addresses in range-set order, the configured routes.
pub fn ipam_result(
    conf: &IpamConf,
    allocs: Vec<ipam::Allocation>,
    dns: crate::cni::result::Dns,
) -> CniResult {
    CniResult {
        interfaces: vec![],
        ips: allocs
            .into_iter()
            .map(|a| IpConfig {
                address: a.address,
                gateway: a.gateway,
                interface: None,
            })
            .collect(),
        routes: conf.routes.clone(),
        dns,
    }
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
