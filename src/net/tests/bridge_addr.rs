//! EnsureBridgeAddr: idempotence, the conflict rule, force, and IPv6 without DAD.

use super::{bridge_addr, ensure_bridge, up, Lab};
use crate::net::NetError;
use crate::plan::Ns;

#[test]
fn bridge_addr_is_idempotent() {
    let Some(lab) = Lab::new("bridge_addr_is_idempotent", 0) else {
        return;
    };
    let addrs = lab.with_node(None, |node| {
        let op = bridge_addr("vbr0", "10.99.0.1/24", false);
        node.apply(&[ensure_bridge("vbr0"), op.clone(), op])
            .unwrap();
        node.addrs(Ns::Host, "vbr0").unwrap()
    });
    assert_eq!(addrs, vec!["10.99.0.1/24".parse().unwrap()]);
    assert_eq!(lab.addrs(&lab.node, "vbr0"), vec!["10.99.0.1/24"]);
}

#[test]
fn bridge_addr_conflict_and_force() {
    let Some(lab) = Lab::new("bridge_addr_conflict_and_force", 0) else {
        return;
    };
    let err = lab.with_node(None, |node| {
        node.apply(&[
            ensure_bridge("vbr0"),
            bridge_addr("vbr0", "10.9.9.1/24", false),
        ])
        .unwrap();
        node.apply(&[bridge_addr("vbr0", "10.244.1.1/24", false)])
            .unwrap_err()
    });
    match &err {
        NetError::BridgeAddrConflict {
            dev,
            existing,
            wanted,
        } => {
            assert_eq!(dev, "vbr0");
            assert_eq!(existing.to_string(), "10.9.9.1/24");
            assert_eq!(wanted.to_string(), "10.244.1.1/24");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "\"vbr0\" already has an IP address 10.9.9.1/24 different from 10.244.1.1/24"
    );
    assert_eq!(lab.addrs(&lab.node, "vbr0"), vec!["10.9.9.1/24"]);

    lab.with_node(None, |node| {
        node.apply(&[bridge_addr("vbr0", "10.244.1.1/24", true)])
            .unwrap();
    });
    assert_eq!(lab.addrs(&lab.node, "vbr0"), vec!["10.244.1.1/24"]);
}

#[test]
fn bridge_v6_addrs_coexist_unless_overlapping() {
    let Some(lab) = Lab::new("bridge_v6_addrs_coexist_unless_overlapping", 0) else {
        return;
    };
    let err = lab.with_node(None, |node| {
        node.apply(&[
            ensure_bridge("vbr0"),
            up(Ns::Host, "vbr0"),
            bridge_addr("vbr0", "10.99.0.1/24", false),
            bridge_addr("vbr0", "fd00:1::1/64", false),
            bridge_addr("vbr0", "fd00:2::1/64", false),
        ])
        .unwrap();
        node.apply(&[bridge_addr("vbr0", "fd00:1::5/64", false)])
            .unwrap_err()
    });
    assert!(
        matches!(&err, NetError::BridgeAddrConflict { existing, .. } if existing.to_string() == "fd00:1::1/64"),
        "{err:?}"
    );
    let addrs = lab.addrs(&lab.node, "vbr0");
    for want in ["10.99.0.1/24", "fd00:1::1/64", "fd00:2::1/64"] {
        assert!(addrs.contains(&want.to_string()), "{want} not in {addrs:?}");
    }
    // Added with IFA_F_NODAD on an up bridge: never tentative, so pods can use it at once.
    let json = lab.ip_json(&lab.node, &["-6", "addr", "show", "dev", "vbr0"]);
    for a in json[0]["addr_info"].as_array().unwrap() {
        if a["local"].as_str().unwrap().starts_with("fd00:") {
            assert!(a.get("tentative").is_none(), "{a}");
            assert_eq!(a["nodad"], true, "{a}");
        }
    }

    lab.with_node(None, |node| {
        node.apply(&[bridge_addr("vbr0", "fd00:1::5/64", true)])
            .unwrap();
    });
    let addrs = lab.addrs(&lab.node, "vbr0");
    assert!(addrs.contains(&"fd00:1::5/64".to_string()), "{addrs:?}");
    assert!(!addrs.contains(&"fd00:1::1/64".to_string()), "{addrs:?}");
    assert!(addrs.contains(&"fd00:2::1/64".to_string()), "{addrs:?}");
    assert!(
        addrs.contains(&"10.99.0.1/24".to_string()),
        "v4 untouched: {addrs:?}"
    );
}

/// Parallel ADDs race to create the bridge and its gateway address; all must succeed.
#[test]
fn parallel_ensures_all_succeed() {
    let Some(lab) = Lab::new("parallel_ensures_all_succeed", 0) else {
        return;
    };
    let plan = [
        ensure_bridge("vbr0"),
        bridge_addr("vbr0", "10.99.0.1/24", false),
        bridge_addr("vbr0", "fd00:99::1/64", false),
    ];
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    lab.with_node(None, |node| {
                        start.wait();
                        node.apply(&plan)
                    })
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap().unwrap();
        }
    });
    let addrs = lab.addrs(&lab.node, "vbr0");
    assert_eq!(addrs, vec!["10.99.0.1/24", "fd00:99::1/64"]);
}
