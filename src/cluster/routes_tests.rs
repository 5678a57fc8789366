use serde_json::json;

use super::*;

fn table() -> NodeTable {
    NodeTable::from_json(
        &json!({"nodes": [
            {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"},
            {"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"},
            {"name": "node3", "ip": "192.168.1.13", "podCIDR": "10.244.3.0/24"}
        ]}),
        "t",
    )
    .unwrap()
}

fn route(dst: &str, gw: Option<&str>, protocol: u8) -> MainRoute {
    MainRoute {
        dst: dst.parse().unwrap(),
        gw: gw.map(|g| g.parse().unwrap()),
        protocol,
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_node_wants_the_other_nodes_subnets_via_their_ips() {
    assert_eq!(
        desired_routes(&table(), "node1"),
        vec![
            (net("10.244.2.0/24"), ip("192.168.1.12")),
            (net("10.244.3.0/24"), ip("192.168.1.13"))
        ]
    );
}

#[test]
fn an_empty_node_gets_adds_and_a_synced_node_gets_nothing() {
    let want = desired_routes(&table(), "node1");
    let kernel = vec![
        route("10.244.1.0/24", None, 2),
        route("192.168.1.0/24", None, 2),
    ];
    let d = diff(&want, &kernel);
    assert_eq!(
        d.ops,
        vec![
            Op::AddNodeRoute {
                dst: net("10.244.2.0/24"),
                gw: ip("192.168.1.12")
            },
            Op::AddNodeRoute {
                dst: net("10.244.3.0/24"),
                gw: ip("192.168.1.13")
            }
        ]
    );
    let mut synced = kernel.clone();
    synced.push(route("10.244.2.0/24", Some("192.168.1.12"), 118));
    synced.push(route("10.244.3.0/24", Some("192.168.1.13"), 118));
    let d = diff(&want, &synced);
    assert!(d.ops.is_empty(), "{:?}", d.ops);
    assert_eq!(d.in_sync.len(), 2);
}

#[test]
fn stale_vnet_routes_go_and_foreign_ones_stay() {
    let want = desired_routes(&table(), "node1");
    let kernel = vec![
        route("10.244.2.0/24", Some("192.168.1.12"), 118),
        route("10.244.3.0/24", Some("192.168.1.99"), 3), // foreign: left alone
        route("10.244.4.0/24", Some("192.168.1.14"), 118), // node4 left the table
        route("10.99.0.0/16", Some("192.168.1.1"), 3),   // foreign, not ours
    ];
    let d = diff(&want, &kernel);
    assert_eq!(
        d.ops,
        vec![Op::DelNodeRoute {
            dst: net("10.244.4.0/24"),
            gw: Some(ip("192.168.1.14"))
        }]
    );
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(d.skipped[0].dst, net("10.244.3.0/24"));
    assert_eq!(d.skipped[0].found.protocol, 3);
}

#[test]
fn a_moved_node_gets_its_route_replaced() {
    let want = desired_routes(&table(), "node1");
    let kernel = vec![
        route("10.244.2.0/24", Some("192.168.1.22"), 118),
        route("10.244.3.0/24", Some("192.168.1.13"), 118),
    ];
    let d = diff(&want, &kernel);
    assert_eq!(
        d.ops,
        vec![Op::ReplaceNodeRoute {
            dst: net("10.244.2.0/24"),
            gw: ip("192.168.1.12"),
            previous: ip("192.168.1.22")
        }]
    );
}

#[test]
fn duplicate_and_gatewayless_routes_of_ours_are_cleaned() {
    let want = vec![(net("10.244.2.0/24"), ip("192.168.1.12"))];
    let kernel = vec![
        route("10.244.2.0/24", Some("192.168.1.12"), 118),
        route("10.244.2.0/24", Some("192.168.1.50"), 118),
    ];
    let d = diff(&want, &kernel);
    assert_eq!(
        d.ops,
        vec![Op::DelNodeRoute {
            dst: net("10.244.2.0/24"),
            gw: Some(ip("192.168.1.50"))
        }]
    );
    let kernel = vec![route("10.244.2.0/24", None, 118)];
    let d = diff(&want, &kernel);
    assert_eq!(
        d.ops,
        vec![
            Op::DelNodeRoute {
                dst: net("10.244.2.0/24"),
                gw: None
            },
            Op::AddNodeRoute {
                dst: net("10.244.2.0/24"),
                gw: ip("192.168.1.12")
            }
        ]
    );
}
