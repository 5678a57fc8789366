//! EnsureBridge, SetMaster, SetHairpin, LinkUp and PinMac against the kernel.

use super::{add_veth, ensure_bridge, has_flag, set_master, up, Lab};
use crate::cni::mac::{format_mac, parse_mac};
use crate::net::NetError;
use crate::plan::{Ns, Op};

#[test]
fn ensure_bridge_creates_then_reuses() {
    let Some(lab) = Lab::new("ensure_bridge_creates_then_reuses", 0) else {
        return;
    };
    let (first, second) = lab.with_node(None, |node| {
        let create = Op::EnsureBridge {
            name: "vbr0".into(),
            mtu: Some(1400),
            promisc: false,
        };
        node.apply(&[create]).unwrap();
        let first = node.link(Ns::Host, "vbr0").unwrap().unwrap();
        // An existing bridge is reused as is: a different MTU is not applied.
        let again = Op::EnsureBridge {
            name: "vbr0".into(),
            mtu: Some(9000),
            promisc: false,
        };
        node.apply(&[again]).unwrap();
        (first, node.link(Ns::Host, "vbr0").unwrap().unwrap())
    });
    assert_eq!(first.index, second.index);
    assert_eq!(first.kind.as_deref(), Some("bridge"));
    assert_eq!(second.mtu, 1400);
    assert!(!first.up && !first.promisc);

    let link = lab.link(&lab.node, "vbr0").unwrap();
    assert_eq!(link["ifindex"], first.index);
    assert_eq!(link["linkinfo"]["info_kind"], "bridge");
    assert_eq!(link["mtu"], 1400);
    assert!(!has_flag(&link, "UP"), "EnsureBridge must not bring it up");
    assert_eq!(link["address"], format_mac(&first.mac.unwrap()));
}

#[test]
fn ensure_bridge_sets_promisc() {
    let Some(lab) = Lab::new("ensure_bridge_sets_promisc", 0) else {
        return;
    };
    let link = lab.with_node(None, |node| {
        let op = Op::EnsureBridge {
            name: "vbr0".into(),
            mtu: None,
            promisc: true,
        };
        node.apply(&[op.clone(), op]).unwrap();
        node.link(Ns::Host, "vbr0").unwrap().unwrap()
    });
    assert!(link.promisc);
    assert!(has_flag(&lab.link(&lab.node, "vbr0").unwrap(), "PROMISC"));
}

#[test]
fn ensure_bridge_refuses_a_non_bridge() {
    let Some(lab) = Lab::new("ensure_bridge_refuses_a_non_bridge", 0) else {
        return;
    };
    lab.ip(
        &lab.node,
        &[
            "link", "add", "vbr0", "type", "veth", "peer", "name", "vbr0p",
        ],
    );
    let err = lab.with_node(None, |node| {
        node.apply(&[ensure_bridge("vbr0")]).unwrap_err()
    });
    assert!(
        matches!(&err, NetError::NotABridge { name } if name == "vbr0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "\"vbr0\" already exists but is not a bridge"
    );
}

#[test]
fn port_gets_master_hairpin_and_up() {
    let Some(lab) = Lab::new("port_gets_master_hairpin_and_up", 1) else {
        return;
    };
    let (bridge, port) = lab.with_node(Some(0), |node| {
        node.apply(&[
            ensure_bridge("vbr0"),
            up(Ns::Host, "vbr0"),
            add_veth("vethtest0"),
            set_master("vethtest0", "vbr0"),
            Op::SetHairpin {
                dev: "vethtest0".into(),
            },
            up(Ns::Host, "vethtest0"),
        ])
        .unwrap();
        let bridge = node.link(Ns::Host, "vbr0").unwrap().unwrap();
        let port = node.link(Ns::Host, "vethtest0").unwrap().unwrap();
        (bridge, port)
    });
    assert!(bridge.up && port.up);
    assert_eq!(port.master, Some(bridge.index));
    assert_eq!(port.hairpin, Some(true));
    assert_eq!(bridge.hairpin, None);

    let json = lab.link(&lab.node, "vethtest0").unwrap();
    assert_eq!(json["master"], "vbr0");
    assert!(has_flag(&json, "UP"));
    assert_eq!(json["linkinfo"]["info_slave_kind"], "bridge");
    assert_eq!(json["linkinfo"]["info_slave_data"]["hairpin"], true);
    assert!(has_flag(&lab.link(&lab.node, "vbr0").unwrap(), "UP"));
}

/// Without PinMac the bridge takes the lowest port MAC; with it, it keeps its own.
#[test]
fn pinned_bridge_mac_ignores_lower_port_mac() {
    let Some(lab) = Lab::new("pinned_bridge_mac_ignores_lower_port_mac", 2) else {
        return;
    };
    let low = "02:00:00:00:00:01";
    for (pod, pin) in [(0, false), (1, true)] {
        let bridge = format!("vbr{pod}");
        let port = format!("vethpin{pod}");
        let before = lab.with_node(Some(pod), |node| {
            node.apply(&[ensure_bridge(&bridge), add_veth(&port)])
                .unwrap();
            if pin {
                node.apply(&[Op::PinMac {
                    dev: bridge.clone(),
                }])
                .unwrap();
            }
            node.link(Ns::Host, &bridge).unwrap().unwrap().mac.unwrap()
        });
        assert_ne!(format_mac(&before), low);
        lab.ip(&lab.node, &["link", "set", &port, "address", low]);
        lab.ip(&lab.node, &["link", "set", &port, "master", &bridge]);

        let after = lab.link(&lab.node, &bridge).unwrap()["address"].clone();
        let assign = lab.exec(
            &lab.node,
            &["cat", &format!("/sys/class/net/{bridge}/addr_assign_type")],
        );
        if pin {
            assert_eq!(parse_mac(after.as_str().unwrap()), Some(before));
            assert_eq!(assign, "3", "NET_ADDR_SET");
        } else {
            assert_eq!(after, low, "control: an unpinned bridge follows its port");
        }
    }
}
