use super::*;
use serde_json::json;

fn conf(v: Value) -> Result<NetConf, CniError> {
    NetConf::parse(v, &CniArgs::default())
}

fn base() -> Value {
    json!({"cniVersion": "1.0.0", "name": "mynet", "type": "vnet", "bridge": "v-net-0",
           "isGateway": true, "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}})
}

fn with(key: &str, v: Value) -> Value {
    let mut b = base();
    b[key] = v;
    b
}

#[test]
fn defaults() {
    let c = conf(json!({"cniVersion": "0.3.1", "name": "n", "type": "vnet"})).unwrap();
    assert_eq!(c.bridge, "cni0");
    assert!(!c.is_gateway && !c.hairpin && !c.promisc && !c.force_address);
    assert_eq!(c.mtu, None);
    assert_eq!(c.ipam_type, None);
    assert_eq!(c.version, Version(0, 3, 1));
}

#[test]
fn bridge_keys() {
    let c = conf(base()).unwrap();
    assert_eq!(c.bridge, "v-net-0");
    assert!(c.is_gateway && c.builtin_ipam());
    let c = conf(with("isDefaultGateway", json!(true))).unwrap();
    assert!(
        c.is_gateway && c.is_default_gateway,
        "isDefaultGateway implies isGateway"
    );
    assert_eq!(conf(with("mtu", json!(1400))).unwrap().mtu, Some(1400));
    assert_eq!(conf(with("mtu", json!(0))).unwrap().mtu, None);
    assert!(conf(with("hairpinMode", json!(true))).unwrap().hairpin);
    assert!(conf(with("promiscMode", json!(true))).unwrap().promisc);
    assert!(
        conf(with("forceAddress", json!(true)))
            .unwrap()
            .force_address
    );
}

#[test]
fn wrong_types_are_code_7_naming_the_key() {
    for (key, v) in [
        ("bridge", json!(5)),
        ("isGateway", json!("yes")),
        ("isDefaultGateway", json!(1)),
        ("forceAddress", json!([])),
        ("mtu", json!("1500")),
        ("mtu", json!(-1)),
        ("mtu", json!(1.5)),
        ("mtu", json!(70000)),
        ("hairpinMode", json!("true")),
        ("promiscMode", json!({})),
        ("ipam", json!("host-local")),
        ("dns", json!([])),
        ("name", json!(7)),
        ("type", json!(null)),
    ] {
        let e = conf(with(key, v.clone())).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG, "{key} = {v}: {e:?}");
        assert!(e.msg.contains(key), "{key}: {}", e.msg);
    }
}

#[test]
fn unsupported_keys_are_code_2_naming_key_and_value() {
    for (key, v) in [
        ("ipMasqBackend", json!("iptables")),
        ("vlan", json!(100)),
        ("vlanTrunk", json!([{"id": 101}])),
        ("macspoofchk", json!(true)),
        ("disableContainerInterface", json!(true)),
        ("portIsolation", json!(true)),
    ] {
        let e = conf(with(key, v.clone())).unwrap_err();
        assert_eq!(e.code, code::UNSUPPORTED_FIELD, "{key}");
        assert!(
            e.msg.contains(key) && e.msg.contains(&v.to_string()),
            "{}",
            e.msg
        );
    }
    // Off values are accepted: they ask for nothing.
    for (key, v) in [
        ("ipMasq", json!(false)),
        ("vlan", json!(0)),
        ("vlanTrunk", json!([])),
    ] {
        assert!(conf(with(key, v)).is_ok(), "{key}");
    }
}

#[test]
fn ip_masq_is_supported_with_the_nftables_backend() {
    assert!(conf(with("ipMasq", json!(true))).unwrap().ip_masq);
    assert!(!conf(with("ipMasq", json!(false))).unwrap().ip_masq);
    assert!(!conf(with("name", json!("n"))).unwrap().ip_masq);
    let mut nft = with("ipMasq", json!(true));
    nft["ipMasqBackend"] = json!("nftables");
    assert!(conf(nft).unwrap().ip_masq);
    let mut ipt = with("ipMasq", json!(true));
    ipt["ipMasqBackend"] = json!("iptables");
    let e = conf(ipt).unwrap_err();
    assert_eq!(e.code, code::UNSUPPORTED_FIELD);
    assert!(
        e.msg.contains("ipMasqBackend") && e.msg.contains("iptables"),
        "{}",
        e.msg
    );
    let e = conf(with("ipMasq", json!("yes"))).unwrap_err();
    assert_eq!(e.code, code::INVALID_CONFIG);
    let e = conf(with("ipMasqBackend", json!(1))).unwrap_err();
    assert_eq!(e.code, code::INVALID_CONFIG);
}

#[test]
fn hairpin_and_promisc_conflict() {
    let mut v = with("hairpinMode", json!(true));
    v["promiscMode"] = json!(true);
    let e = conf(v).unwrap_err();
    assert_eq!(e.code, code::INVALID_CONFIG);
    assert!(e.msg.contains("hairpin"));
}

#[test]
fn versions() {
    assert_eq!(
        conf(with("cniVersion", json!("0.2.0"))).unwrap_err().code,
        code::INCOMPATIBLE_VERSION
    );
    assert_eq!(
        conf(with("cniVersion", json!("9.9.9"))).unwrap_err().code,
        code::INCOMPATIBLE_VERSION
    );
    let mut v = base();
    v.as_object_mut().unwrap().remove("cniVersion");
    assert_eq!(
        conf(v.clone()).unwrap_err().code,
        code::INCOMPATIBLE_VERSION
    );
    v["cniVersions"] = json!(["0.4.0", "1.1.0", "2.0.0"]);
    assert_eq!(conf(v).unwrap().version, Version(1, 1, 0));
}

#[test]
fn names() {
    for bad in ["", "../x", "a/b", "-a", "a b"] {
        assert_eq!(
            conf(with("name", json!(bad))).unwrap_err().code,
            code::INVALID_CONFIG,
            "{bad}"
        );
    }
    assert!(conf(with("name", json!("k8s-pod-network.v1_a"))).is_ok());
    assert!(conf(with("name", json!("a".repeat(256)))).is_err());
    assert_eq!(
        conf(with("bridge", json!("a/b"))).unwrap_err().code,
        code::INVALID_CONFIG
    );
}

#[test]
fn decode_errors() {
    assert_eq!(decode(b"{").unwrap_err().code, code::DECODE);
    assert_eq!(decode(b"[]").unwrap_err().code, code::DECODE);
    assert_eq!(decode(&[0xff, 0xfe]).unwrap_err().code, code::DECODE);
    let big = vec![b' '; MAX_CONFIG_BYTES + 1];
    assert_eq!(decode(&big).unwrap_err().code, code::INVALID_CONFIG);
}

#[test]
fn mac_precedence() {
    let args = CniArgs {
        mac: Some([2, 0, 0, 0, 0, 1]),
        ips: vec![],
    };
    let c = NetConf::parse(base(), &args).unwrap();
    assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 1]));
    let v = with("args", json!({"cni": {"mac": "02:00:00:00:00:02"}}));
    assert_eq!(
        NetConf::parse(v.clone(), &args).unwrap().mac,
        Some([2, 0, 0, 0, 0, 2])
    );
    let mut v2 = v;
    v2["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
    assert_eq!(
        NetConf::parse(v2, &args).unwrap().mac,
        Some([2, 0, 0, 0, 0, 3])
    );
    let e = conf(with("runtimeConfig", json!({"mac": "nope"}))).unwrap_err();
    assert_eq!(e.code, code::INVALID_CONFIG);
}

#[test]
fn ipam_type() {
    assert_eq!(conf(with("ipam", json!({}))).unwrap().ipam_type, None);
    assert_eq!(
        conf(with("ipam", json!({"type": "dhcp"})))
            .unwrap()
            .ipam_type
            .as_deref(),
        Some("dhcp")
    );
    assert_eq!(
        conf(with("ipam", json!({"type": "../bin/sh"})))
            .unwrap_err()
            .code,
        code::INVALID_CONFIG
    );
}

#[test]
fn dns_override() {
    let c = conf(with(
        "dns",
        json!({"nameservers": ["10.96.0.10"], "search": ["svc.local"]}),
    ))
    .unwrap();
    assert_eq!(c.dns.unwrap().nameservers, vec!["10.96.0.10"]);
    assert!(conf(with("dns", json!({}))).unwrap().dns.is_none());
    assert_eq!(
        conf(with("dns", json!({"nameservers": [1]})))
            .unwrap_err()
            .code,
        code::INVALID_CONFIG
    );
}

#[test]
fn prev_result() {
    let v = with(
        "prevResult",
        json!({"cniVersion": "1.0.0", "ips": [{"address": "10.244.1.2/24", "interface": 2}]}),
    );
    assert_eq!(conf(v).unwrap().prev_result.unwrap().ips.len(), 1);
    let v = with("prevResult", json!({"ips": [{"address": "x"}]}));
    assert_eq!(conf(v).unwrap_err().code, code::INVALID_CONFIG);
}

#[test]
fn gc_attachments() {
    let v = json!({"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]});
    assert_eq!(
        valid_attachments(&v).unwrap(),
        vec![("a".to_string(), "eth0".to_string())]
    );
    let v = json!({"cni.dev/attachments": []});
    assert!(valid_attachments(&v).unwrap().is_empty());
    assert_eq!(
        valid_attachments(&json!({})).unwrap_err().code,
        code::INVALID_CONFIG
    );
    let v = json!({"cni.dev/valid-attachments": [{"containerID": 1}]});
    assert!(valid_attachments(&v).is_err());
}
