use serde_json::json;

use super::*;

#[test]
fn add_batch_creates_table_chain_and_a_rule_per_family() {
    let srcs: Vec<IpAddr> = vec!["10.244.1.2".parse().unwrap(), "fd00::2".parse().unwrap()];
    let exclude: Vec<IpNet> = vec![
        "10.244.0.0/16".parse().unwrap(),
        "fd00::/64".parse().unwrap(),
    ];
    let b = add_batch(&srcs, &exclude, "vnet v-net c1 eth0");
    let cmds = b["nftables"].as_array().unwrap();
    assert_eq!(cmds.len(), 4);
    assert_eq!(cmds[0]["add"]["table"]["name"], "vnet");
    assert_eq!(cmds[1]["add"]["chain"]["hook"], "postrouting");
    assert_eq!(cmds[1]["add"]["chain"]["type"], "nat");
    let v4 = &cmds[2]["add"]["rule"];
    assert_eq!(v4["comment"], "vnet v-net c1 eth0");
    assert_eq!(v4["expr"][0]["match"]["right"], "10.244.1.2");
    assert_eq!(v4["expr"][0]["match"]["left"]["payload"]["protocol"], "ip");
    // Only the IPv4 exclusions, plus multicast.
    assert_eq!(
        v4["expr"][1]["match"]["right"]["set"],
        json!([
            {"prefix": {"addr": "10.244.0.0", "len": 16}},
            {"prefix": {"addr": "224.0.0.0", "len": 4}}
        ])
    );
    assert_eq!(v4["expr"][1]["match"]["op"], "!=");
    assert_eq!(v4["expr"][2], json!({"masquerade": null}));
    let v6 = &cmds[3]["add"]["rule"];
    assert_eq!(v6["expr"][0]["match"]["left"]["payload"]["protocol"], "ip6");
    assert_eq!(
        v6["expr"][1]["match"]["right"]["set"],
        json!([
            {"prefix": {"addr": "fd00::", "len": 64}},
            {"prefix": {"addr": "ff00::", "len": 8}}
        ])
    );
}

#[test]
fn listing_yields_handles_and_comments_of_our_chain_only() {
    let listing = json!({"nftables": [
        {"metainfo": {"version": "1.0.6"}},
        {"table": {"family": "inet", "name": "vnet", "handle": 1}},
        {"chain": {"family": "inet", "table": "vnet", "name": "postrouting", "handle": 1}},
        {"rule": {"family": "inet", "table": "vnet", "chain": "postrouting", "handle": 2,
                  "comment": "vnet v-net c1 eth0", "expr": []}},
        {"rule": {"family": "inet", "table": "vnet", "chain": "postrouting", "handle": 5,
                  "expr": []}},
        {"rule": {"family": "inet", "table": "vnet", "chain": "other", "handle": 7,
                  "comment": "vnet v-net c1 eth0", "expr": []}}
    ]});
    assert_eq!(
        rules_of(&listing),
        vec![(2, "vnet v-net c1 eth0".to_string()), (5, String::new())]
    );
    assert!(has_table(&listing));
    assert!(!has_table(&json!({"nftables": [{"metainfo": {}}]})));
    assert!(rules_of(&Value::Null).is_empty());
}

#[test]
fn delete_batch_names_each_handle() {
    let b = delete_batch(&[2, 9]);
    assert_eq!(b["nftables"][1]["delete"]["rule"]["handle"], 9);
    assert_eq!(b["nftables"][0]["delete"]["rule"]["chain"], "postrouting");
}
