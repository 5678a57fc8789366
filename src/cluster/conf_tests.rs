use serde_json::json;

use super::*;

fn nodes() -> Value {
    json!([
        {"name": "node1", "ip": "192.168.1.11", "podCIDR": "10.244.1.0/24"},
        {"name": "node2", "ip": "192.168.1.12", "podCIDR": "10.244.2.0/24"}
    ])
}

#[test]
fn no_vnet_key_is_a_single_node_network() {
    assert_eq!(
        ClusterConf::from_config(&json!({"name": "n", "type": "vnet"})).unwrap(),
        None
    );
}

#[test]
fn inline_table_with_node_and_cluster_cidr() {
    let raw = json!({"vnet": {"node": "node2", "clusterCIDR": "10.244.0.0/16", "nodes": nodes()}});
    let c = ClusterConf::from_config(&raw).unwrap().unwrap();
    assert_eq!(c.node.as_deref(), Some("node2"));
    assert_eq!(c.table.nodes.len(), 2);
    assert_eq!(c.table.cluster_cidr, Some("10.244.0.0/16".parse().unwrap()));
}

#[test]
fn table_from_a_file_and_from_any_kind_of_file() {
    let dir = std::env::temp_dir().join(format!("vnet-conf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = dir.join("nodes.json");
    std::fs::write(&table, json!({"nodes": nodes()}).to_string()).unwrap();
    let raw = json!({"vnet": {"nodesFile": table}});
    let c = ClusterConf::from_config(&raw).unwrap().unwrap();
    assert_eq!(c.node, None);
    assert_eq!(c.table.nodes[1].name, "node2");

    assert_eq!(load_any(&table).unwrap().table, c.table);
    let conf = dir.join("10-bridge.conf");
    std::fs::write(
        &conf,
        json!({"type": "vnet", "vnet": {"node": "node1", "nodes": nodes()}}).to_string(),
    )
    .unwrap();
    assert_eq!(load_any(&conf).unwrap().node.as_deref(), Some("node1"));
    let list = dir.join("10-vnet.conflist");
    std::fs::write(
        &list,
        json!({"plugins": [{"type": "vnet", "vnet": {"nodes": nodes()}}, {"type": "portmap"}]})
            .to_string(),
    )
    .unwrap();
    assert_eq!(load_any(&list).unwrap().table.nodes.len(), 2);
    let other = dir.join("other.json");
    std::fs::write(&other, "{\"type\": \"bridge\"}").unwrap();
    assert!(load_any(&other)
        .unwrap_err()
        .to_string()
        .contains("neither a node table"));
    let missing =
        ClusterConf::from_config(&json!({"vnet": {"nodesFile": dir.join("nope")}})).unwrap_err();
    assert!(matches!(missing, ClusterError::Io { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_vnet_keys_are_refused_naming_them() {
    let cases = [
        (json!({"vnet": true}), "must be an object"),
        (
            json!({"vnet": {"nodes": nodes(), "nodez": 1}}),
            "vnet.nodez",
        ),
        (json!({"vnet": {}}), "needs the node table"),
        (
            json!({"vnet": {"nodes": nodes(), "nodesFile": "/x"}}),
            "both",
        ),
        (
            json!({"vnet": {"nodes": nodes(), "node": "node9"}}),
            "\"node9\" is not in",
        ),
        (
            json!({"vnet": {"nodes": nodes(), "node": 3}}),
            "must be a string",
        ),
        (
            json!({"vnet": {"nodes": nodes(), "clusterCIDR": "10.244.1.0/16"}}),
            "host bits",
        ),
        (
            json!({"vnet": {"nodes": nodes(), "clusterCIDR": "10.9.0.0/16"}}),
            "outside clusterCIDR",
        ),
        (json!({"vnet": {"nodes": [{"name": "a"}]}}), "vnet.nodes"),
    ];
    for (raw, want) in cases {
        let e = ClusterConf::from_config(&raw).unwrap_err().to_string();
        assert!(e.contains(want), "{raw}: {e}");
    }
}
