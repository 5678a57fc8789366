use super::*;

fn nodes(n: usize) -> Vec<NodeSpec> {
    (1..=n)
        .map(|i| NodeSpec {
            name: format!("node{i}"),
            ip: format!("192.168.1.{}", 10 + i).parse().unwrap(),
        })
        .collect()
}

fn cidrs(s: &Split) -> Vec<String> {
    s.table
        .nodes
        .iter()
        .map(|n| format!("{}={}", n.name, n.pod_cidr))
        .collect()
}

#[test]
fn weave_range_over_three_nodes_gives_three_of_four_slash_14s() {
    let s = split_equal("10.32.0.0/12".parse().unwrap(), &nodes(3)).unwrap();
    assert_eq!(
        cidrs(&s),
        vec![
            "node1=10.32.0.0/14",
            "node2=10.36.0.0/14",
            "node3=10.40.0.0/14"
        ]
    );
    assert_eq!(s.spare, vec!["10.44.0.0/14".parse::<IpNet>().unwrap()]);
    assert_eq!(s.table.cluster_cidr, Some("10.32.0.0/12".parse().unwrap()));
    assert_eq!(s.table.nodes[1].ip.to_string(), "192.168.1.12");
}

#[test]
fn equal_split_of_powers_of_two_and_one_node() {
    let s = split_equal("10.32.0.0/12".parse().unwrap(), &nodes(4)).unwrap();
    assert_eq!(s.table.nodes[3].pod_cidr.to_string(), "10.44.0.0/14");
    assert!(s.spare.is_empty());
    let s = split_equal("10.32.0.0/12".parse().unwrap(), &nodes(5)).unwrap();
    assert_eq!(s.table.nodes[4].pod_cidr.to_string(), "10.40.0.0/15");
    assert_eq!(s.spare.len(), 3);
    let s = split_equal("10.32.0.0/12".parse().unwrap(), &nodes(1)).unwrap();
    assert_eq!(cidrs(&s), vec!["node1=10.32.0.0/12"]);
}

#[test]
fn per_node_slash_24_counts_from_the_second_block_like_flannel() {
    let range: IpNet = "10.244.0.0/16".parse().unwrap();
    let s = split_per_node(range, 24, 1, &nodes(3)).unwrap();
    assert_eq!(
        cidrs(&s),
        vec![
            "node1=10.244.1.0/24",
            "node2=10.244.2.0/24",
            "node3=10.244.3.0/24"
        ]
    );
    assert!(s.spare.is_empty());
    // kube-controller-manager's order: the first node gets the first block.
    let s = split_per_node(range, 24, 0, &nodes(2)).unwrap();
    assert_eq!(
        cidrs(&s),
        vec!["node1=10.244.0.0/24", "node2=10.244.1.0/24"]
    );
}

#[test]
fn ipv6_ranges_split_too() {
    let nodes = vec![
        NodeSpec {
            name: "a".into(),
            ip: "fd00:1::11".parse().unwrap(),
        },
        NodeSpec {
            name: "b".into(),
            ip: "fd00:1::12".parse().unwrap(),
        },
    ];
    let s = split_per_node("fd00:10::/56".parse().unwrap(), 64, 1, &nodes).unwrap();
    assert_eq!(cidrs(&s), vec!["a=fd00:10:0:1::/64", "b=fd00:10:0:2::/64"]);
}

fn err(r: Result<Split, ClusterError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn too_small_and_overlapping_inputs_are_refused_clearly() {
    let e = err(split_equal("10.0.0.0/29".parse().unwrap(), &nodes(3)));
    assert!(
        e.contains("too small for 3 nodes") && e.contains("/31"),
        "{e}"
    );
    let e = err(split_per_node(
        "10.244.0.0/23".parse().unwrap(),
        24,
        1,
        &nodes(3),
    ));
    assert!(e.contains("holds 2 blocks of /24"), "{e}");
    let e = err(split_per_node(
        "10.244.0.0/16".parse().unwrap(),
        12,
        1,
        &nodes(3),
    ));
    assert!(e.contains("per-node prefix /12"), "{e}");
    let mut inside = nodes(2);
    inside[1].ip = "10.244.7.7".parse().unwrap();
    let e = err(split_per_node(
        "10.244.0.0/16".parse().unwrap(),
        24,
        1,
        &inside,
    ));
    assert!(e.contains("inside the cluster range"), "{e}");
    let mut dup = nodes(2);
    dup[1].name = "node1".into();
    let e = err(split_equal("10.32.0.0/12".parse().unwrap(), &dup));
    assert!(e.contains("listed twice"), "{e}");
    let e = err(split_equal("10.32.0.1/12".parse().unwrap(), &nodes(2)));
    assert!(e.contains("host bits"), "{e}");
    let e = err(split_equal("10.32.0.0/12".parse().unwrap(), &[]));
    assert!(e.contains("no nodes"), "{e}");
}

#[test]
fn nodes_argument_parses_and_rejects_garbage() {
    let n = parse_nodes_arg("node1=192.168.1.11, node2=192.168.1.12").unwrap();
    assert_eq!(n, nodes(2));
    assert!(parse_nodes_arg("node1")
        .unwrap_err()
        .to_string()
        .contains("NAME=NODE_IP"));
    assert!(parse_nodes_arg("node1=1.2.3")
        .unwrap_err()
        .to_string()
        .contains("not an IP address"));
}
