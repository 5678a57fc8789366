//! Bad input, black box: every required `CNI_*` variable missing, each one invalid,
//! oversize and non-UTF-8 stdin, a wrong JSON type for every key vnet reads. Each call
//! gets the CNI code of the README "Errors" table and changes nothing: no bridge, no
//! veth, nothing in the pod, and not even the network's directory under `dataDir`.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};

struct Fixture {
    node: Node,
    pod: Netns,
    /// Bad inputs tried, printed on drop for scripts/reliability.sh.
    tried: std::cell::Cell<usize>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        eprintln!("inputs: {}", self.tried.get());
    }
}

impl Fixture {
    fn new(subnet: &str) -> Fixture {
        Fixture {
            node: Node::new(subnet),
            pod: Netns::new("p"),
            tried: std::cell::Cell::new(0),
        }
    }

    /// A full ADD environment for this pod, minus `drop`, with `set` overriding.
    fn env(&self, command: &str, drop: &[&str], set: &[(&str, &str)]) -> Vec<(String, String)> {
        let pod = self.pod.path();
        let mut env: Vec<(String, String)> = [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "bad1"),
            ("CNI_NETNS", pod.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", REF_DIR),
        ]
        .iter()
        .filter(|(k, _)| !drop.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in set {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    }

    fn run(&self, env: Vec<(String, String)>, stdin: &[u8]) -> Call {
        let mut c = Cni::new(Some(&self.node.ns));
        c.env = env;
        c.run(stdin)
    }

    /// The call fails with `code`, its message mentions `needle`, and nothing changed.
    fn refuses(&self, what: &str, call: Call, code: u64, needle: &str) {
        self.tried.set(self.tried.get() + 1);
        assert_ne!(
            call.code, 0,
            "{what}: expected failure, got {}",
            call.stdout
        );
        let v: Value = serde_json::from_str(&call.stdout)
            .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {:?}", call.stdout));
        assert_eq!(v["code"], code, "{what}: wrong CNI code: {v}");
        let msg = format!("{} {}", v["msg"], v["details"]);
        assert!(msg.contains(needle), "{what}: {needle:?} not in {msg}");
        self.assert_untouched(what);
    }

    fn assert_untouched(&self, what: &str) {
        assert_eq!(self.node.ns.links(), vec!["lo"], "{what}: node changed");
        assert_eq!(self.pod.links(), vec!["lo"], "{what}: pod changed");
        let entries: Vec<_> = std::fs::read_dir(self.node.data.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(entries.is_empty(), "{what}: dataDir now holds {entries:?}");
    }
}

#[test]
fn every_required_variable_missing_is_code_4_naming_it() {
    if !root_or_skip("missing_vars") {
        return;
    }
    let f = Fixture::new("10.246.1.0/24");
    let conf = f.node.conf.to_string();
    let required: &[(&str, &[&str])] = &[
        ("ADD", &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]),
        ("CHECK", &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]),
        ("DEL", &["CNI_CONTAINERID", "CNI_IFNAME"]),
        ("GC", &["CNI_PATH"]),
    ];
    for (command, vars) in required {
        for var in *vars {
            let call = f.run(f.env(command, &[var], &[]), conf.as_bytes());
            f.refuses(&format!("{command} without {var}"), call, 4, var);
        }
    }
    // Set but empty is missing too; an empty CNI_COMMAND is a plugin call, not the CLI.
    for var in ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let call = f.run(f.env("ADD", &[], &[(var, "")]), conf.as_bytes());
        f.refuses(&format!("ADD with empty {var}"), call, 4, var);
    }
    let call = f.run(f.env("", &[], &[]), conf.as_bytes());
    f.refuses("empty CNI_COMMAND", call, 4, "CNI_COMMAND");
}

#[test]
fn each_variable_invalid_gets_its_code() {
    if !root_or_skip("invalid_vars") {
        return;
    }
    let f = Fixture::new("10.246.2.0/24");
    let conf = f.node.conf.to_string();
    let long_id = "a".repeat(513);
    let cases: &[(&str, &str, u64, &str)] = &[
        ("CNI_COMMAND", "BOGUS", 4, "BOGUS"),
        ("CNI_COMMAND", "add", 4, "add"),
        ("CNI_CONTAINERID", "../../etc", 4, "CNI_CONTAINERID"),
        ("CNI_CONTAINERID", "-leading-dash", 4, "CNI_CONTAINERID"),
        ("CNI_CONTAINERID", "has space", 4, "CNI_CONTAINERID"),
        ("CNI_CONTAINERID", "slash/inside", 4, "CNI_CONTAINERID"),
        ("CNI_CONTAINERID", "é", 4, "CNI_CONTAINERID"),
        ("CNI_CONTAINERID", &long_id, 4, "CNI_CONTAINERID"),
        ("CNI_NETNS", "run/netns/relative", 4, "CNI_NETNS"),
        (
            "CNI_NETNS",
            "/run/netns/vnet-no-such-netns",
            103,
            "vnet-no-such-netns",
        ),
        ("CNI_NETNS", "/etc/hostname", 103, "/etc/hostname"),
        ("CNI_NETNS", "/tmp", 103, "/tmp"),
        ("CNI_IFNAME", "a234567890123456", 4, "CNI_IFNAME"),
        ("CNI_IFNAME", "a/b", 4, "CNI_IFNAME"),
        ("CNI_IFNAME", "a:b", 4, "CNI_IFNAME"),
        ("CNI_IFNAME", ".", 4, "CNI_IFNAME"),
        ("CNI_IFNAME", "..", 4, "CNI_IFNAME"),
        ("CNI_IFNAME", "eth 0", 4, "CNI_IFNAME"),
        ("CNI_ARGS", "FOO=bar", 4, "FOO"),
        ("CNI_ARGS", "garbage", 4, "CNI_ARGS"),
        ("CNI_ARGS", "MAC=zz:zz:zz:zz:zz:zz", 4, "MAC"),
        ("CNI_ARGS", "IP=300.1.1.1", 4, "300.1.1.1"),
        ("CNI_ARGS", "IP=10.246.2.5/x", 4, "IP"),
        ("CNI_ARGS", "a=b=c", 4, "CNI_ARGS"),
    ];
    for (var, value, code, needle) in cases {
        let call = f.run(f.env("ADD", &[], &[(var, value)]), conf.as_bytes());
        f.refuses(&format!("{var}={value:?}"), call, *code, needle);
    }
    // CNI_PATH only matters for a delegated IPAM plugin: missing, or without the plugin.
    let mut delegated = f.node.conf.clone();
    delegated["ipam"]["type"] = json!("vnet-no-such-ipam");
    let stdin = delegated.to_string();
    let call = f.run(f.env("ADD", &["CNI_PATH"], &[]), stdin.as_bytes());
    f.refuses("delegated IPAM without CNI_PATH", call, 4, "CNI_PATH");
    let call = f.run(
        f.env("ADD", &[], &[("CNI_PATH", "/nonexistent")]),
        stdin.as_bytes(),
    );
    f.refuses(
        "delegated IPAM not in CNI_PATH",
        call,
        7,
        "vnet-no-such-ipam",
    );
}

#[test]
fn stdin_that_is_not_a_config() {
    if !root_or_skip("bad_stdin") {
        return;
    }
    let f = Fixture::new("10.246.3.0/24");
    let mut oversize = f.node.conf.to_string().into_bytes();
    oversize.pop();
    oversize.extend(b",\"pad\":\"");
    oversize.extend(std::iter::repeat_n(b'x', 1 << 20));
    oversize.extend(b"\"}");
    let mut not_utf8 = f.node.conf.to_string().into_bytes();
    let at = not_utf8.len() - 3;
    not_utf8.insert(at, 0xff);
    let cases: &[(&str, &[u8], u64, &str)] = &[
        ("oversize", &oversize, 7, "bytes"),
        ("not UTF-8", &not_utf8, 6, "UTF-8"),
        ("invalid UTF-8 only", &[0xff, 0xfe, 0x00], 6, "UTF-8"),
        ("empty", b"", 6, "decod"),
        ("not JSON", b"{not json", 6, "decod"),
        (
            "truncated",
            b"{\"cniVersion\": \"1.0.0\", \"name\":",
            6,
            "decod",
        ),
        ("a list", b"[]", 6, "object"),
        ("null", b"null", 6, "object"),
        ("a string", b"\"conf\"", 6, "object"),
        ("NUL bytes", b"\0\0\0", 6, "decod"),
    ];
    for (what, stdin, code, needle) in cases {
        for command in ["ADD", "DEL", "CHECK"] {
            let call = f.run(f.env(command, &[], &[]), stdin);
            f.refuses(&format!("{command} with {what} stdin"), call, *code, needle);
        }
    }
}

/// `conf` with the value at `path` (keys separated by '.', list indices as numbers)
/// replaced by `value`; `None` removes it.
fn with(conf: &Value, path: &str, value: Option<Value>) -> Value {
    let mut c = conf.clone();
    let keys: Vec<&str> = path.split('.').collect();
    let mut at = &mut c;
    for k in &keys[..keys.len() - 1] {
        at = match k.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*k],
        };
    }
    let last = keys[keys.len() - 1];
    match value {
        Some(v) => match last.parse::<usize>() {
            Ok(i) => at[i] = v,
            Err(_) => at[last] = v,
        },
        None => {
            at.as_object_mut().unwrap().remove(last);
        }
    }
    c
}

#[test]
fn a_wrong_json_type_for_every_key_is_code_7_naming_it() {
    if !root_or_skip("wrong_types") {
        return;
    }
    let f = Fixture::new("10.246.4.0/24");
    let mut base = f.node.conf.clone();
    base["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "10.246.4.1"}]);
    base["dns"] =
        json!({"nameservers": ["10.96.0.10"], "domain": "x", "search": [], "options": []});
    base["args"] = json!({"cni": {"ips": [], "mac": "0a:58:00:00:00:01"}});
    base["runtimeConfig"] = json!({"mac": "0a:58:00:00:00:02", "ips": [], "ipRanges": []});
    let ranges = with(
        &with(&base, "ipam.subnet", None),
        "ipam.ranges",
        Some(
            json!([[{"subnet": "10.246.4.0/24", "rangeStart": "10.246.4.10",
                       "rangeEnd": "10.246.4.20", "gateway": "10.246.4.1"}]]),
        ),
    );
    // (config to start from, key path, wrong value, word the message must carry)
    let cases: Vec<(&Value, &str, Value, &str)> = vec![
        (&base, "cniVersion", json!(1), "cniVersion"),
        (&base, "cniVersion", json!(["1.0.0"]), "cniVersion"),
        (&base, "name", json!(5), "name"),
        (&base, "name", json!({"a": 1}), "name"),
        (&base, "type", json!(true), "type"),
        (&base, "bridge", json!(5), "bridge"),
        (&base, "isGateway", json!("yes"), "isGateway"),
        (&base, "isDefaultGateway", json!(1), "isDefaultGateway"),
        (&base, "forceAddress", json!("true"), "forceAddress"),
        (&base, "mtu", json!("1500"), "mtu"),
        (&base, "mtu", json!(-1), "mtu"),
        (&base, "mtu", json!(1.5), "mtu"),
        (&base, "hairpinMode", json!("on"), "hairpinMode"),
        (&base, "promiscMode", json!([]), "promiscMode"),
        (&base, "enabledad", json!({}), "enabledad"),
        (&base, "dns", json!("10.96.0.10"), "dns"),
        (&base, "dns.nameservers", json!("10.96.0.10"), "nameservers"),
        (&base, "dns.nameservers", json!([1]), "nameservers"),
        (&base, "dns.domain", json!(5), "domain"),
        (&base, "dns.search", json!({}), "search"),
        (&base, "dns.options", json!(false), "options"),
        (&base, "args", json!("x"), "args"),
        (&base, "args.cni", json!(5), "cni"),
        (&base, "args.cni.mac", json!(5), "mac"),
        (&base, "args.cni.ips", json!("10.246.4.9"), "ips"),
        (&base, "runtimeConfig", json!([]), "runtimeConfig"),
        (&base, "runtimeConfig.mac", json!(7), "mac"),
        (&base, "runtimeConfig.ips", json!(7), "ips"),
        (
            &base,
            "runtimeConfig.ipRanges",
            json!("10.0.0.0/8"),
            "ipRanges",
        ),
        (&base, "prevResult", json!("x"), "prevResult"),
        (&base, "ipam", json!("host-local"), "ipam"),
        (&base, "ipam.type", json!(5), "type"),
        (&base, "ipam.subnet", json!(10), "subnet"),
        (&base, "ipam.rangeStart", json!(5), "rangeStart"),
        (&base, "ipam.rangeEnd", json!(true), "rangeEnd"),
        (&base, "ipam.gateway", json!([]), "gateway"),
        (&base, "ipam.routes", json!({}), "routes"),
        (&base, "ipam.routes.0", json!("10.0.0.0/8"), "routes"),
        (&base, "ipam.routes.0.dst", json!(5), "dst"),
        (&base, "ipam.routes.0.gw", json!(5), "gw"),
        (&base, "ipam.dataDir", json!(5), "dataDir"),
        (&base, "ipam.resolvConf", json!(5), "resolvConf"),
        (&ranges, "ipam.ranges", json!({}), "ranges"),
        (&ranges, "ipam.ranges.0", json!("10.0.0.0/8"), "ranges"),
        (&ranges, "ipam.ranges.0.0", json!("10.0.0.0/8"), "ranges"),
        (&ranges, "ipam.ranges.0.0.subnet", json!(24), "subnet"),
        (
            &ranges,
            "ipam.ranges.0.0.rangeStart",
            json!(10),
            "rangeStart",
        ),
        (&ranges, "ipam.ranges.0.0.rangeEnd", json!(20), "rangeEnd"),
        (&ranges, "ipam.ranges.0.0.gateway", json!(1), "gateway"),
    ];
    for (start, path, value, needle) in cases {
        // The starting points themselves are fine (checked once below).
        let conf = with(start, path, Some(value.clone()));
        let call = f.run(f.env("ADD", &[], &[]), conf.to_string().as_bytes());
        f.refuses(&format!("{path} = {value}"), call, 7, needle);
    }
    // Without cniVersion, the list `cniVersions` is read instead.
    let conf = with(
        &with(&base, "cniVersion", None),
        "cniVersions",
        Some(json!("1.0.0")),
    );
    let call = f.run(f.env("ADD", &[], &[]), conf.to_string().as_bytes());
    f.refuses("cniVersions = \"1.0.0\"", call, 7, "cniVersions");
    for good in [&base, &ranges] {
        let pod = Netns::new("q");
        let c = f
            .node
            .call("ADD", "good", &pod.path(), "eth0", good)
            .ok()
            .json();
        assert!(c["ips"][0]["address"].is_string());
        f.node.call("DEL", "good", &pod.path(), "eth0", good).ok();
    }
}

#[test]
fn wrong_values_are_refused_before_anything_changes() {
    if !root_or_skip("wrong_values") {
        return;
    }
    let f = Fixture::new("10.246.5.0/24");
    let base = &f.node.conf;
    let cases: Vec<(&str, Value, u64, &str)> = vec![
        ("cniVersion", json!("0.2.0"), 1, "incompatible"),
        ("cniVersion", json!("9.9.9"), 1, "incompatible"),
        ("cniVersion", json!("one"), 1, "incompatible"),
        ("name", json!(""), 7, "name"),
        ("name", json!("-net"), 7, "name"),
        ("bridge", json!("this-bridge-name-is-too-long"), 7, "bridge"),
        ("bridge", json!("a/b"), 7, "bridge"),
        ("mtu", json!(67), 7, "mtu"),
        ("mtu", json!(65536), 7, "mtu"),
        ("ipam.subnet", json!("10.246.5.0/33"), 7, "subnet"),
        ("ipam.subnet", json!("10.246.5.0/31"), 7, "10.246.5.0/31"),
        ("ipam.subnet", json!("not-a-subnet"), 7, "subnet"),
        ("ipam.rangeStart", json!("10.9.9.9"), 7, "10.9.9.9"),
        ("ipam.gateway", json!("not-an-ip"), 7, "gateway"),
        ("ipam.type", json!("../host-local"), 7, "type"),
        ("runtimeConfig", json!({"mac": "zz"}), 7, "mac"),
    ];
    for (path, value, code, needle) in cases {
        let conf = with(base, path, Some(value.clone()));
        let call = f.run(f.env("ADD", &[], &[]), conf.to_string().as_bytes());
        f.refuses(&format!("{path} = {value}"), call, code, needle);
    }
    let both = with(base, "hairpinMode", Some(json!(true)));
    let both = with(&both, "promiscMode", Some(json!(true)));
    let call = f.run(f.env("ADD", &[], &[]), both.to_string().as_bytes());
    f.refuses("hairpin + promisc", call, 7, "hairpin");
    let no_ranges = with(base, "ipam.subnet", None);
    let call = f.run(f.env("ADD", &[], &[]), no_ranges.to_string().as_bytes());
    f.refuses("no range at all", call, 7, "range");
}
