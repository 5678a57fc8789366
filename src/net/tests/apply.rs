//! apply's rollback, DelLink idempotence and NetnsOpen.

use std::path::Path;

use super::{add_veth, ensure_bridge, pod_addr, pod_route, set_master, up, Lab};
use crate::net::{NetError, Node};
use crate::plan::{Ns, Op};

#[test]
fn failed_route_rolls_back_the_veth() {
    let Some(lab) = Lab::new("failed_route_rolls_back_the_veth", 1) else {
        return;
    };
    let err = lab.with_node(Some(0), |node| {
        node.apply(&[
            ensure_bridge("vbr0"),
            up(Ns::Host, "vbr0"),
            add_veth("vethrb0"),
            set_master("vethrb0", "vbr0"),
            up(Ns::Host, "vethrb0"),
            up(Ns::Pod, "eth0"),
            pod_addr("10.99.0.2/24"),
            pod_route("0.0.0.0/0", Some("192.0.2.1")),
        ])
        .unwrap_err()
    });
    assert_eq!(err.errno(), Some(libc::ENETUNREACH), "{err}");
    assert_eq!(
        crate::cni::error::with_causes(&err),
        "add route 0.0.0.0/0 via 192.0.2.1 dev eth0 in pod: network is unreachable (os error 101)"
    );
    assert!(lab.link(&lab.node, "vethrb0").is_none());
    assert!(lab.link(lab.pod(0), "eth0").is_none());
    assert!(
        lab.link(&lab.node, "vbr0").is_some(),
        "the shared bridge stays"
    );
}

#[test]
fn del_link_is_idempotent() {
    let Some(lab) = Lab::new("del_link_is_idempotent", 1) else {
        return;
    };
    lab.with_node(Some(0), |node| {
        let del = |ns| Op::DelLink {
            ns,
            dev: "eth0".into(),
        };
        node.apply(&[del(Ns::Pod), del(Ns::Host)]).unwrap();
        assert!(!node.del_link(Ns::Pod, "eth0").unwrap());

        node.apply(&[add_veth("vethdel0")]).unwrap();
        node.apply(&[del(Ns::Pod)]).unwrap();
        assert_eq!(node.link(Ns::Pod, "eth0").unwrap(), None);
        assert_eq!(
            node.link(Ns::Host, "vethdel0").unwrap(),
            None,
            "peer goes too"
        );

        node.apply(&[add_veth("vethdel1")]).unwrap();
        assert!(node.del_link(Ns::Host, "vethdel1").unwrap());
        assert!(!node.del_link(Ns::Host, "vethdel1").unwrap());
    });
    assert!(lab.link(lab.pod(0), "eth0").is_none());
}

#[test]
fn missing_pod_netns_is_netns_open() {
    let Some(lab) = Lab::new("missing_pod_netns_is_netns_open", 0) else {
        return;
    };
    let gone = Path::new("/run/netns/vnt-does-not-exist");
    let err = lab.in_node(|| Node::open(Some(gone)).err().unwrap());
    match &err {
        NetError::NetnsOpen { path, source } => {
            assert_eq!(path, gone);
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("expected NetnsOpen, got {other:?}"),
    }
    assert_eq!(err.errno(), Some(libc::ENOENT));
    // Not a namespace file at all.
    let err = lab.in_node(|| {
        Node::open(Some(Path::new("/proc/self/status")))
            .err()
            .unwrap()
    });
    assert!(matches!(err, NetError::NetnsOpen { .. }), "{err:?}");
}

#[test]
fn unknown_device_is_enodev() {
    let Some(lab) = Lab::new("unknown_device_is_enodev", 1) else {
        return;
    };
    let err = lab.with_node(Some(0), |node| {
        assert_eq!(node.link(Ns::Pod, "nosuch0").unwrap(), None);
        assert_eq!(node.link_by_index(Ns::Pod, 4242).unwrap(), None);
        node.apply(&[up(Ns::Pod, "nosuch0")]).unwrap_err()
    });
    assert_eq!(err.errno(), Some(libc::ENODEV));
    assert_eq!(
        crate::cni::error::with_causes(&err),
        "find link nosuch0 in pod: no such device (os error 19)"
    );
}
