//! AddVeth: one message, peer straight into the pod namespace.

use super::{add_veth, Lab};
use crate::cni::mac::format_mac;
use crate::net::{random_veth_name, NetError, Node};
use crate::plan::{Ns, Op};

#[test]
fn veth_peer_lands_in_pod_only() {
    let Some(lab) = Lab::new("veth_peer_lands_in_pod_only", 1) else {
        return;
    };
    let host = random_veth_name();
    let mac = [0x0a, 0x58, 0x0a, 0x63, 0x00, 0x02];
    let (h, p) = lab.with_node(Some(0), |node| {
        assert!(node.has_pod());
        let op = Op::AddVeth {
            host: host.clone(),
            peer: "eth0".into(),
            mtu: Some(1450),
            peer_mac: Some(mac),
        };
        node.apply(&[op]).unwrap();
        assert_eq!(node.link(Ns::Host, "eth0").unwrap(), None);
        let h = node.link(Ns::Host, &host).unwrap().unwrap();
        let p = node.link(Ns::Pod, "eth0").unwrap().unwrap();
        assert_eq!(
            node.link_by_index(Ns::Pod, p.index).unwrap(),
            Some(p.clone())
        );
        (h, p)
    });
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(p.kind.as_deref(), Some("veth"));
    assert_eq!(p.mac, Some(mac));
    assert_eq!((h.mtu, p.mtu), (1450, 1450));
    assert_eq!(p.peer_index, Some(h.index));
    assert_eq!(h.peer_index, Some(p.index));

    assert!(lab.link(&lab.node, "eth0").is_none());
    let host_json = lab.link(&lab.node, &host).unwrap();
    assert_eq!(host_json["mtu"], 1450);
    let pod_json = lab.link(lab.pod(0), "eth0").unwrap();
    assert_eq!(pod_json["address"], format_mac(&mac));
    assert_eq!(pod_json["mtu"], 1450);
    assert_eq!(pod_json["link_index"], h.index);
}

#[test]
fn veth_name_clash_in_pod_is_eexist() {
    let Some(lab) = Lab::new("veth_name_clash_in_pod_is_eexist", 1) else {
        return;
    };
    lab.ip(
        lab.pod(0),
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "other",
        ],
    );
    let err = lab.with_node(Some(0), |node| {
        node.apply(&[add_veth("vethclash")]).unwrap_err()
    });
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    assert_eq!(err.to_string(), "add veth vethclash peer eth0");
    assert!(crate::cni::error::with_causes(&err)
        .starts_with("add veth vethclash peer eth0: file exists"));
    assert!(lab.link(&lab.node, "vethclash").is_none());
}

#[test]
fn pod_ops_without_pod_namespace_fail_cleanly() {
    let Some(lab) = Lab::new("pod_ops_without_pod_namespace_fail_cleanly", 0) else {
        return;
    };
    lab.in_node(|| {
        let node = Node::open(None).unwrap();
        assert!(!node.has_pod());
        let err = node.apply(&[add_veth("vethnopod")]).unwrap_err();
        assert!(matches!(err, NetError::Namespace(_)), "{err:?}");
        assert!(node.link(Ns::Pod, "eth0").is_err());
        assert_eq!(node.link(Ns::Host, "vethnopod").unwrap(), None);
    });
}
