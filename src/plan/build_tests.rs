use super::*;
use crate::cni::args::CniArgs;
use crate::cni::result::IpConfig;
use serde_json::json;

fn conf(extra: serde_json::Value) -> NetConf {
    let mut v = json!({"cniVersion": "1.0.0", "name": "n", "type": "vnet", "bridge": "v-net-0",
                       "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    NetConf::parse(v, &CniArgs::default()).unwrap()
}

fn ipam_result(addrs: &[&str], gw: bool) -> CniResult {
    CniResult {
        ips: addrs
            .iter()
            .map(|a| {
                let address: IpNet = a.parse().unwrap();
                IpConfig {
                    address,
                    gateway: gw.then(|| first_host(address).unwrap()),
                    interface: None,
                }
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn default_gateway_route_per_family() {
    let c = conf(json!({"isDefaultGateway": true}));
    let mut r = ipam_result(&["10.244.1.2/24", "fd00::2/64"], false);
    finish_result(&c, &mut r);
    assert_eq!(r.ips[0].gateway, Some("10.244.1.1".parse().unwrap()));
    assert_eq!(r.ips[1].gateway, Some("fd00::1".parse().unwrap()));
    assert!(r.ips.iter().all(|ip| ip.interface == Some(POD_IFACE)));
    let dsts: Vec<String> = r.routes.iter().map(|r| r.dst.to_string()).collect();
    assert_eq!(dsts, vec!["0.0.0.0/0", "::/0"]);
}

#[test]
fn existing_default_route_with_gw_is_kept_alone() {
    let c = conf(json!({"isDefaultGateway": true}));
    let mut r = ipam_result(&["10.244.1.2/24"], true);
    r.routes.push(Route::new(
        "0.0.0.0/0".parse().unwrap(),
        Some("10.244.1.254".parse().unwrap()),
    ));
    finish_result(&c, &mut r);
    assert_eq!(r.routes.len(), 1);
    assert_eq!(r.routes[0].gw, Some("10.244.1.254".parse().unwrap()));
}

#[test]
fn no_gateway_without_is_gateway() {
    let c = conf(json!({}));
    let mut r = ipam_result(&["10.244.1.2/24"], false);
    finish_result(&c, &mut r);
    assert_eq!(r.ips[0].gateway, None);
    assert!(r.routes.is_empty());
}

#[test]
fn plan_order_and_content() {
    let c = conf(json!({"isDefaultGateway": true, "hairpinMode": true, "mtu": 1400}));
    let mut r = ipam_result(&["10.244.1.2/24"], true);
    finish_result(&c, &mut r);
    let ops = add_ops(&c, "eth0", "veth0a1b2c3d", Some(&r), None);
    let pos = |f: &dyn Fn(&Op) -> bool| ops.iter().position(f).unwrap();
    let bridge = pos(&|o| {
        matches!(
            o,
            Op::EnsureBridge {
                mtu: Some(1400),
                ..
            }
        )
    });
    let veth = pos(
        &|o| matches!(o, Op::AddVeth { host, peer, .. } if host == "veth0a1b2c3d" && peer == "eth0"),
    );
    let master = pos(&|o| matches!(o, Op::SetMaster { master, .. } if master == "v-net-0"));
    let addr = pos(&|o| matches!(o, Op::AddAddr { ns: Ns::Pod, .. }));
    let up = pos(&|o| matches!(o, Op::LinkUp { ns: Ns::Pod, .. }));
    let route = pos(&|o| matches!(o, Op::AddRoute { gw: Some(_), .. }));
    let gw = pos(
        &|o| matches!(o, Op::EnsureBridgeAddr { addr, .. } if addr.to_string() == "10.244.1.1/24"),
    );
    assert!(
        bridge < veth && veth < master && master < addr && addr < up && up < route && route < gw
    );
    assert!(ops.iter().any(|o| matches!(o, Op::SetHairpin { .. })));
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::Sysctl { key, .. } if key == "net/ipv4/ip_forward")));
    assert!(!ops
        .iter()
        .any(|o| matches!(o, Op::Sysctl { key, .. } if key.contains("accept_dad"))));
    assert!(matches!(ops.last(), Some(Op::PinMac { .. })));
}

#[test]
fn ipv6_turns_dad_off_unless_asked() {
    let c = conf(json!({"isGateway": true}));
    let r = ipam_result(&["fd00::2/64"], true);
    let ops = add_ops(&c, "eth0", "vethx", Some(&r), None);
    assert!(ops.iter().any(|o| matches!(o, Op::Sysctl { key, value, .. } if key == "net/ipv6/conf/eth0/accept_dad" && value == "0")));
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::Sysctl { key, .. } if key == "net/ipv6/conf/all/forwarding")));
    let c = conf(json!({"enabledad": true}));
    let ops = add_ops(&c, "eth0", "vethx", Some(&r), None);
    assert!(ops.iter().any(|o| matches!(o, Op::Sysctl { key, value, .. } if key == "net/ipv6/conf/eth0/accept_dad" && value == "1")));
}

#[test]
fn route_without_gw_takes_the_family_gateway() {
    let c = conf(json!({"isGateway": true}));
    let mut r = ipam_result(&["10.244.1.2/24"], true);
    r.routes
        .push(Route::new("10.96.0.0/12".parse().unwrap(), None));
    r.routes
        .push(Route::new("fd01::/64".parse().unwrap(), None));
    let ops = add_ops(&c, "eth0", "vethx", Some(&r), None);
    let routes: Vec<&Op> = ops
        .iter()
        .filter(|o| matches!(o, Op::AddRoute { .. }))
        .collect();
    assert_eq!(
        routes[0],
        &Op::AddRoute {
            ns: Ns::Pod,
            dst: "10.96.0.0/12".parse().unwrap(),
            gw: Some("10.244.1.1".parse().unwrap()),
            dev: "eth0".into()
        }
    );
    assert!(
        matches!(routes[1], Op::AddRoute { gw: None, .. }),
        "no v6 gateway: on-link"
    );
}

#[test]
fn layer2_only_has_no_addresses() {
    let c = conf(json!({"ipam": {}}));
    let ops = add_ops(&c, "eth0", "vethx", None, None);
    assert!(!ops.iter().any(|o| matches!(
        o,
        Op::AddAddr { .. } | Op::AddRoute { .. } | Op::EnsureBridgeAddr { .. }
    )));
    assert!(ops
        .iter()
        .any(|o| matches!(o, Op::LinkUp { ns: Ns::Pod, .. })));
}

#[test]
fn the_masquerade_element_goes_before_the_gateway_steps() {
    let c = conf(json!({"isGateway": true}));
    let r = ipam_result(&["10.244.1.2/24"], true);
    let masq = Op::AddMasquerade {
        network: "n".into(),
        srcs: vec!["10.244.1.2".parse().unwrap()],
        exclude: vec![],
        tag: "t".into(),
    };
    let ops = add_ops(&c, "eth0", "vethx", Some(&r), Some(masq.clone()));
    let at = |want: &dyn Fn(&Op) -> bool| ops.iter().position(want).unwrap();
    let m = at(&|o| *o == masq);
    let gw = at(&|o| matches!(o, Op::EnsureBridgeAddr { .. }));
    assert!(m < gw, "{ops:?}");
    // The result's pod interface and the list of roles agree.
    assert_eq!(RESULT_IFACES[POD_IFACE], Iface::Pod);
    assert_eq!(iface_index(Iface::Pod), POD_IFACE);
}

#[test]
fn delegated_ipam_runs_after_the_link_and_host_local_first() {
    assert_eq!(ipam_step(&conf(json!({}))), IpamStep::First);
    assert_eq!(ipam_step(&conf(json!({"ipam": {}}))), IpamStep::First);
    for kind in ["dhcp", "static", "my-dhcp-wrapper"] {
        let c = conf(json!({"ipam": {"type": kind}}));
        assert_eq!(ipam_step(&c), IpamStep::AfterLink, "{kind}");
    }
}

#[test]
fn link_first_splits_the_same_plan_in_two() {
    let c = conf(json!({"isDefaultGateway": true, "hairpinMode": true}));
    let mut r = ipam_result(&["10.244.1.2/24", "fd00::2/64"], true);
    finish_result(&c, &mut r);
    let link = link_ops(&c, "eth0", "vethx");
    // The pod's end is up on the bridge, with nothing IPAM decides on it.
    assert!(matches!(link.first(), Some(Op::EnsureBridge { .. })));
    let up = link
        .iter()
        .position(|o| matches!(o, Op::LinkUp { ns: Ns::Pod, .. }))
        .unwrap();
    let master = link
        .iter()
        .position(|o| matches!(o, Op::SetMaster { .. }))
        .unwrap();
    assert!(master < up);
    assert!(!link.iter().any(|o| matches!(
        o,
        Op::AddAddr { .. } | Op::AddRoute { .. } | Op::EnsureBridgeAddr { .. }
    )));
    // Undoing the link phase is deleting the veth.
    let undo: Vec<Op> = link.iter().filter_map(Op::undo).collect();
    assert_eq!(
        undo,
        vec![Op::DelLink {
            ns: Ns::Host,
            dev: "vethx".into()
        }]
    );
    let masq = Op::AddMasquerade {
        network: "n".into(),
        srcs: vec!["10.244.1.2".parse().unwrap()],
        exclude: vec![],
        tag: "t".into(),
    };
    let addr = address_ops(&c, "eth0", &r, Some(masq.clone()));
    assert!(!addr
        .iter()
        .any(|o| matches!(o, Op::AddVeth { .. } | Op::EnsureBridge { .. })));
    // Together they are the address-first plan's ops, each once.
    let mut both: Vec<String> = link.iter().chain(&addr).map(|o| format!("{o:?}")).collect();
    let mut first: Vec<String> = add_ops(&c, "eth0", "vethx", Some(&r), Some(masq))
        .iter()
        .map(|o| format!("{o:?}"))
        .collect();
    both.sort();
    first.sort();
    assert_eq!(both, first);
}
