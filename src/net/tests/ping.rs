//! End to end: two pods on one bridge reach each other and the gateway.

use super::{add_veth, bridge_addr, ensure_bridge, pod_addr, pod_route, set_master, up, Lab};
use crate::net::random_veth_name;
use crate::plan::{Ns, Op};

fn pod_plan(host: &str, addr: &str) -> Vec<Op> {
    vec![
        add_veth(host),
        set_master(host, "vbr0"),
        up(Ns::Host, host),
        up(Ns::Pod, "eth0"),
        pod_addr(addr),
        pod_route("0.0.0.0/0", Some("10.99.0.1")),
    ]
}

#[test]
fn two_pods_on_one_bridge_ping() {
    let Some(lab) = Lab::new("two_pods_on_one_bridge_ping", 2) else {
        return;
    };
    let bridge = [
        ensure_bridge("vbr0"),
        up(Ns::Host, "vbr0"),
        bridge_addr("vbr0", "10.99.0.1/24", false),
        Op::PinMac { dev: "vbr0".into() },
    ];
    for (pod, addr) in [(0, "10.99.0.2/24"), (1, "10.99.0.3/24")] {
        lab.with_node(Some(pod), |node| {
            let mut plan = bridge.to_vec();
            plan.extend(pod_plan(&random_veth_name(), addr));
            node.apply(&plan).unwrap();
        });
    }
    let ping = |from: usize, to: &str| lab.exec_ok(lab.pod(from), &["ping", "-c1", "-W1", to]);
    assert!(ping(0, "10.99.0.3"), "pod0 -> pod1");
    assert!(ping(1, "10.99.0.2"), "pod1 -> pod0");
    assert!(ping(0, "10.99.0.1"), "pod0 -> gateway");
}
