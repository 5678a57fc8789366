//! Pod-side addresses, routes and sysctls.

use std::net::IpAddr;

use super::{add_veth, pod_addr, pod_route, up, Lab};
use crate::net::{NetError, Route};
use crate::plan::{Ns, Op};

#[test]
fn pod_gets_addresses_and_routes() {
    let Some(lab) = Lab::new("pod_gets_addresses_and_routes", 1) else {
        return;
    };
    let (eth0, addrs, routes) = lab.with_node(Some(0), |node| {
        node.apply(&[
            add_veth("vethroute0"),
            up(Ns::Pod, "eth0"),
            pod_addr("10.99.0.2/24"),
            pod_addr("fd00:99::2/64"),
            pod_route("0.0.0.0/0", Some("10.99.0.1")),
            pod_route("192.168.50.0/24", None),
            pod_route("::/0", Some("fd00:99::1")),
        ])
        .unwrap();
        let eth0 = node.link(Ns::Pod, "eth0").unwrap().unwrap();
        (
            eth0,
            node.addrs(Ns::Pod, "eth0").unwrap(),
            node.routes(Ns::Pod).unwrap(),
        )
    });
    assert!(eth0.up);
    assert!(addrs.contains(&"10.99.0.2/24".parse().unwrap()));
    assert!(addrs.contains(&"fd00:99::2/64".parse().unwrap()));
    let expect = |dst: &str, gw: Option<&str>| Route {
        dst: dst.parse().unwrap(),
        gw: gw.map(|g| g.parse::<IpAddr>().unwrap()),
        oif: Some(eth0.index),
    };
    for want in [
        expect("0.0.0.0/0", Some("10.99.0.1")),
        expect("10.99.0.0/24", None),
        expect("192.168.50.0/24", None),
        expect("::/0", Some("fd00:99::1")),
        expect("fd00:99::/64", None),
    ] {
        assert!(routes.contains(&want), "{want:?} not in {routes:?}");
    }

    let pod = lab.pod(0);
    assert!(lab.addrs(pod, "eth0").contains(&"10.99.0.2/24".to_string()));
    let v4 = lab.ip_json(pod, &["-4", "route", "show"]);
    let v4 = v4.as_array().unwrap();
    let default = v4.iter().find(|r| r["dst"] == "default").unwrap();
    assert_eq!(default["gateway"], "10.99.0.1");
    assert_eq!(default["dev"], "eth0");
    let onlink = v4.iter().find(|r| r["dst"] == "192.168.50.0/24").unwrap();
    assert_eq!(onlink["scope"], "link");
    assert!(onlink.get("gateway").is_none());
    let v6 = lab.ip_json(pod, &["-6", "route", "show", "default"]);
    assert_eq!(v6[0]["gateway"], "fd00:99::1");
}

#[test]
fn sysctl_applies_to_its_namespace_only() {
    let Some(lab) = Lab::new("sysctl_applies_to_its_namespace_only", 1) else {
        return;
    };
    let key = "net/ipv4/ip_forward";
    let read = |ns: &str| lab.exec(ns, &["cat", &format!("/proc/sys/{key}")]);
    assert_eq!(
        (read(&lab.node), read(lab.pod(0))),
        ("0".into(), "0".into())
    );

    let sysctl = |ns: Ns, key: &str, optional: bool| Op::Sysctl {
        ns,
        key: key.into(),
        value: "1".into(),
        optional,
    };
    lab.with_node(Some(0), |node| {
        node.apply(&[sysctl(Ns::Pod, key, false)]).unwrap();
    });
    assert_eq!(
        (read(&lab.node), read(lab.pod(0))),
        ("0".into(), "1".into())
    );

    lab.with_node(Some(0), |node| {
        node.apply(&[sysctl(Ns::Host, "net/ipv4/conf/lo/arp_notify", false)])
            .unwrap();
    });
    let arp = |ns: &str| lab.exec(ns, &["cat", "/proc/sys/net/ipv4/conf/lo/arp_notify"]);
    assert_eq!((arp(&lab.node), arp(lab.pod(0))), ("1".into(), "0".into()));

    let missing = "net/ipv4/conf/nosuchdev/arp_notify";
    let err = lab.with_node(Some(0), |node| {
        node.apply(&[sysctl(Ns::Pod, missing, true)]).unwrap();
        node.apply(&[sysctl(Ns::Pod, missing, false)]).unwrap_err()
    });
    assert!(
        matches!(&err, NetError::Sysctl { key, .. } if key == missing),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(libc::ENOENT));
}
