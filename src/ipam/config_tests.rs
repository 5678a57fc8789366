//! Config parsing: the reference config_test.go cases and the canonicalisation table.
use super::{IpamConf, IpamError};
use serde_json::{json, Value};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(ipam: Value) -> Value {
    json!({"cniVersion": "1.0.0", "name": "mynet", "type": "vnet", "ipam": ipam})
}

fn err(netconf: Value) -> String {
    match IpamConf::parse(&netconf, &[]) {
        Err(IpamError::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    }
}

fn ranges(conf: &IpamConf) -> Vec<String> {
    conf.range_sets.iter().map(ToString::to_string).collect()
}

#[test]
fn old_style_config() {
    let c = IpamConf::parse(
        &net(
            json!({"type": "host-local", "subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9",
                    "rangeEnd": "10.1.2.20", "gateway": "10.1.2.30"}),
        ),
        &[],
    )
    .unwrap();
    assert_eq!(ranges(&c), ["10.1.2.9-10.1.2.20"]);
    assert_eq!(c.range_sets[0][0].gateway(), ip("10.1.2.30"));
    assert_eq!(c.data_dir.to_str(), Some("/var/lib/cni/networks"));
    assert_eq!(c.resolv_conf, None);
    assert!(c.routes.is_empty() && c.requested.is_empty());
}

#[test]
fn new_style_config_with_routes_and_paths() {
    let c = IpamConf::parse(
        &net(json!({
            "ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}],
                       [{"subnet": "2001:db8:1::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.5"}],
            "dataDir": "/tmp/x", "resolvConf": "/etc/r.conf"})),
        &[],
    )
    .unwrap();
    assert_eq!(
        ranges(&c),
        [
            "10.1.2.1-10.1.2.254,10.2.2.1-10.2.2.254",
            "2001:db8:1::1-2001:db8:1:0:ffff:ffff:ffff:ffff"
        ]
    );
    assert_eq!(c.routes[0].dst.to_string(), "0.0.0.0/0");
    assert_eq!(c.routes[0].gw, None);
    assert_eq!(c.routes[1].gw, Some(ip("10.1.2.5")));
    assert_eq!(c.data_dir.to_str(), Some("/tmp/x"));
    assert_eq!(
        c.resolv_conf.as_deref().and_then(|p| p.to_str()),
        Some("/etc/r.conf")
    );
}

#[test]
fn mixed_config_order_is_runtime_then_legacy_then_ranges() {
    let mut v = net(json!({"subnet": "10.1.0.0/16", "ranges": [[{"subnet": "10.2.0.0/16"}]]}));
    v["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "10.3.0.0/16"}]]});
    let c = IpamConf::parse(&v, &[]).unwrap();
    let subnets: Vec<String> = c
        .range_sets
        .iter()
        .map(|s| s[0].subnet().to_string())
        .collect();
    assert_eq!(subnets, ["10.3.0.0/16", "10.1.0.0/16", "10.2.0.0/16"]);
}

#[test]
fn requested_ips_in_order_with_prefixes_ignored() {
    let mut v = net(json!({"subnet": "10.1.2.0/24"}));
    v["args"] = json!({"cni": {"ips": ["10.1.2.10/24", "2001:db8::10"]}});
    v["runtimeConfig"] = json!({"ips": ["10.1.2.11"]});
    let c = IpamConf::parse(&v, &[ip("10.1.2.9")]).unwrap();
    assert_eq!(
        c.requested,
        [
            ip("10.1.2.9"),
            ip("10.1.2.10"),
            ip("2001:db8::10"),
            ip("10.1.2.11")
        ]
    );
}

#[test]
fn missing_ipam_and_missing_ranges() {
    assert_eq!(
        err(json!({"name": "mynet", "cniVersion": "1.0.0"})),
        "IPAM config missing 'ipam' key"
    );
    assert_eq!(
        err(net(json!({"type": "host-local"}))),
        "no IP ranges specified"
    );
    assert_eq!(
        err(net(json!({"rangeStart": "10.1.2.5", "ranges": []}))),
        "no IP ranges specified"
    );
}

#[test]
fn canonicalisation_errors_are_wrapped_with_the_set_index() {
    let cases = [
        (json!({"subnet": "10.0.0.0/31"}), "invalid range set 0: network 10.0.0.0/31 too small to allocate from"),
        (json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.1.5/24"}]]}),
         "invalid range set 1: network has host bits set. For a subnet mask of length 24 the network address is 10.0.1.0"),
        (json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.1.1"}),
         "invalid range set 0: rangeStart 10.0.1.1 not in network 10.0.0.0/24"),
        (json!({"subnet": "10.0.0.0/24", "rangeEnd": "10.0.1.1"}),
         "invalid range set 0: rangeEnd 10.0.1.1 not in network 10.0.0.0/24"),
        (json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "2001:db8::/64"}]]}),
         "invalid range set 0: mixed address families"),
        (json!({"ranges": [[{"subnet": "10.0.0.0/24"}, {"subnet": "10.0.0.0/25"}]]}),
         "invalid range set 0: subnets 10.0.0.1-10.0.0.254 and 10.0.0.1-10.0.0.126 overlap"),
        (json!({"ranges": [[]]}), "invalid range set 0: empty range set"),
        (json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/16"}]]}),
         "range set 0 overlaps with 1"),
    ];
    for (ipam, want) in cases {
        assert_eq!(err(net(ipam)), want);
    }
}

#[test]
fn old_cni_versions_allow_one_address_per_family() {
    let ipam = json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.1.0.0/24"}]]});
    let mut v = net(ipam.clone());
    v["cniVersion"] = json!("0.2.0");
    assert_eq!(
        err(v),
        "CNI version 0.2.0 does not support more than 1 address per family"
    );
    let mut v = net(ipam);
    v["cniVersion"] = json!("0.3.1");
    assert!(IpamConf::parse(&v, &[]).is_ok());
    let mut v =
        net(json!({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "2001:db8::/64"}]]}));
    v["cniVersion"] = json!("0.2.0");
    assert!(IpamConf::parse(&v, &[]).is_ok());
}

#[test]
fn wrong_json_types_name_the_key() {
    let cases = [
        (
            net(json!({"subnet": 5})),
            "ipam.subnet: expected a string, got 5",
        ),
        (
            net(json!({"subnet": "10.0.0.0/24", "gateway": true})),
            "ipam.gateway: expected a string, got true",
        ),
        (
            net(json!({"ranges": {}})),
            "ipam.ranges: expected a list, got {}",
        ),
        (
            net(json!({"ranges": [{"subnet": "10.0.0.0/24"}]})),
            "ipam.ranges[0]: expected a list, got {\"subnet\":\"10.0.0.0/24\"}",
        ),
        (
            net(json!({"ranges": [[{"rangeStart": "10.0.0.5"}]]})),
            "ipam.ranges[0][0]: missing subnet",
        ),
        (
            net(json!({"ranges": [[{"subnet": "10.0.0.0"}]]})),
            "ipam.ranges[0][0].subnet: invalid CIDR address \"10.0.0.0\"",
        ),
        (
            net(json!({"subnet": "10.0.0.0/24", "rangeStart": "10.0.0"})),
            "ipam.rangeStart: invalid IP address \"10.0.0\"",
        ),
        (
            net(json!({"subnet": "10.0.0.0/24", "routes": [{"gw": "10.0.0.1"}]})),
            "ipam.routes[0]: missing dst",
        ),
        (
            net(json!({"subnet": "10.0.0.0/24", "dataDir": 1})),
            "ipam.dataDir: expected a string, got 1",
        ),
        (
            net(json!("not an object")),
            "ipam: expected an object, got \"not an object\"",
        ),
        (json!([]), "network config: expected an object, got []"),
    ];
    for (v, want) in cases {
        assert_eq!(err(v), want);
    }
    let mut v = net(json!({"subnet": "10.0.0.0/24"}));
    v["args"] = json!({"cni": {"ips": [7]}});
    assert_eq!(err(v), "args.cni.ips[0]: expected a string, got 7");
}

#[test]
fn unsafe_network_names_are_refused() {
    for bad in ["../etc", "a/b", "..", ""] {
        let mut v = net(json!({"subnet": "10.0.0.0/24"}));
        v["name"] = json!(bad);
        assert!(err(v).starts_with("invalid network name"), "{bad:?}");
    }
}

#[test]
fn null_and_empty_values_count_as_absent() {
    let c = IpamConf::parse(
        &net(json!({"subnet": "10.1.2.0/24", "gateway": null, "dataDir": "", "resolvConf": ""})),
        &[],
    )
    .unwrap();
    assert_eq!(c.range_sets[0][0].gateway(), ip("10.1.2.1"));
    assert_eq!(c.data_dir.to_str(), Some("/var/lib/cni/networks"));
    assert_eq!(c.resolv_conf, None);
}

#[test]
fn data_dir_must_stay_where_it_points() {
    let parse = |d: serde_json::Value| {
        IpamConf::parse(
            &json!({"name": "n", "ipam": {"subnet": "10.1.0.0/24", "dataDir": d}}),
            &[],
        )
    };
    assert_eq!(
        parse(json!("/run/vnet/./ipam")).unwrap().data_dir,
        std::path::PathBuf::from("/run/vnet/./ipam")
    );
    // Empty is the default, as in the reference.
    assert_eq!(
        parse(json!("")).unwrap().data_dir,
        std::path::PathBuf::from("/var/lib/cni/networks")
    );
    let long = format!("/{}", "d".repeat(5000));
    for bad in [
        "networks",
        "../x",
        "/var/lib/../../etc",
        "/a/..",
        "/a\0b",
        &long,
    ] {
        let e = parse(json!(bad)).unwrap_err();
        assert!(matches!(e, IpamError::Config(_)), "{bad:?}: {e:?}");
        assert!(e.to_string().contains("ipam.dataDir"), "{e}");
    }
    assert!(matches!(parse(json!(5)), Err(IpamError::Config(_))));
}
