//! Property-based fuzzing of everything that reads untrusted input before the kernel is
//! touched: the stdin decoder (`cni::config::decode`), the network config
//! (`NetConf::parse`, `NetConf::parse_ipam_only`), the IPAM config (`IpamConf::parse`),
//! `CNI_ARGS` (`cni::args::parse`) and the `CNI_*` environment (`Env::parse`); and the
//! IPAM store's files as another writer (or an attacker) may leave them: reservation
//! files, the `last_reserved_ip` hint and the `.vnet-index`, with random or mutated
//! content, read through the store's public operations in a temporary directory.
//!
//! Properties: no panic, ever; every refusal carries a spec code that fits (1, 2, 4, 6
//! or 7) and a message. Inputs are raw bytes, random JSON built from the keys vnet knows
//! (so deep paths such as `ipam.ranges[0][0].rangeStart` are reached), mutations of a
//! valid config, and `K=V;` strings.
//!
//! `cargo test` runs a few hundred cases per family. `scripts/fuzz.sh` runs the same
//! properties for a fixed time: `VNET_FUZZ_SECS=<seconds>`, and `VNET_FUZZ_REPORT=<file>`
//! to receive the counts.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map, Value};

use vnet::cni::{args, config, CniError, Env, NetConf};
use vnet::ipam::IpamConf;

/// Keys vnet reads anywhere in a config, plus a few it must pass over.
const KEYS: &[&str] = &[
    "cniVersion",
    "cniVersions",
    "name",
    "type",
    "bridge",
    "isGateway",
    "isDefaultGateway",
    "forceAddress",
    "mtu",
    "hairpinMode",
    "promiscMode",
    "enabledad",
    "dns",
    "nameservers",
    "domain",
    "search",
    "options",
    "ipam",
    "subnet",
    "rangeStart",
    "rangeEnd",
    "gateway",
    "ranges",
    "routes",
    "dst",
    "gw",
    "dataDir",
    "resolvConf",
    "args",
    "cni",
    "ips",
    "mac",
    "runtimeConfig",
    "ipRanges",
    "prevResult",
    "interfaces",
    "sandbox",
    "address",
    "interface",
    "version",
    "ipMasq",
    "vlan",
    "vlanTrunk",
    "cni.dev/valid-attachments",
    "containerID",
    "ifname",
    "unknownKey",
];

/// Strings that mean something to some parser, to mix with arbitrary ones.
const WORDS: &[&str] = &[
    "1.1.0",
    "1.0.0",
    "0.4.0",
    "0.3.1",
    "0.3.0",
    "0.2.0",
    "01.0.0",
    "1.0",
    "",
    ".",
    "..",
    "host-local",
    "vnet",
    "bridge",
    "net",
    "eth0",
    "cni0",
    "10.1.2.0/24",
    "10.1.2.1",
    "10.1.2.255",
    "10.1.2.0/31",
    "10.1.2.0/32",
    "0.0.0.0/0",
    "::/0",
    "2001:db8::/64",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "10.1.2.3/24",
    "fe80::1%eth0",
    "0a:58:0a:f4:01:05",
    "zz:zz",
    "/var/lib/cni/networks",
    "/tmp/../etc",
    "relative",
    "/dev/null",
    "\u{0}",
    "a/b",
    "255.255.255.255/0",
    "4294967296",
    "-1",
    "true",
    "false",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_string),
        1 => any::<String>(),
        1 => "[0-9a-f:./]{0,40}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (0u64..70000).prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word().prop_map(Value::String),
    ]
}

/// Random JSON whose object keys are mostly keys vnet reads.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(KEYS).prop_map(str::to_string),
                        1 => any::<String>()
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn valid_config() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "fuzznet", "type": "vnet", "bridge": "cni0",
        "isGateway": true, "isDefaultGateway": true, "mtu": 1500,
        "dns": {"nameservers": ["10.96.0.10"], "search": ["svc"]},
        "args": {"cni": {"ips": ["10.1.2.9"], "mac": "0a:58:0a:01:02:09"}},
        "runtimeConfig": {"mac": "0a:58:0a:01:02:0a", "ips": ["10.1.2.10"]},
        "ipam": {
            "type": "host-local", "dataDir": "/var/lib/cni/networks",
            "ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.5",
                         "rangeEnd": "10.1.2.50", "gateway": "10.1.2.1"}],
                       [{"subnet": "2001:db8::/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.9.0.0/16", "gw": "10.1.2.1"}]
        },
        "prevResult": {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/x"}],
                       "ips": [{"address": "10.1.2.9/24", "gateway": "10.1.2.1", "interface": 0}]}
    })
}

/// Every node of `v` by path, so a mutation can land anywhere.
fn paths(v: &Value, at: Vec<Value>, out: &mut Vec<Vec<Value>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let mut p = at.clone();
                p.push(json!(k));
                paths(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let mut p = at.clone();
                p.push(json!(i));
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

/// The node at `path`, if an earlier edit has not replaced one of its parents.
fn node_at<'a>(v: &'a mut Value, path: &[Value]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |node, step| match step {
        Value::String(k) => node.get_mut(k.as_str()),
        other => node.get_mut(other.as_u64()? as usize),
    })
}

/// A valid config with 1–4 nodes replaced by random JSON (or removed).
fn mutated_config() -> impl Strategy<Value = Value> {
    let base = valid_config();
    let mut all = Vec::new();
    paths(&base, Vec::new(), &mut all);
    proptest::collection::vec(
        (proptest::sample::select(all), value(), any::<bool>()),
        1..5,
    )
    .prop_map(move |edits| {
        let mut c = base.clone();
        for (path, v, remove) in edits {
            if path.is_empty() {
                continue;
            }
            let (last, parent) = path.split_last().unwrap();
            let Some(parent) = node_at(&mut c, parent) else {
                continue;
            };
            match (parent, last) {
                (Value::Object(m), Value::String(k)) if remove => {
                    m.remove(k);
                }
                (Value::Object(m), Value::String(k)) => {
                    m.insert(k.clone(), v);
                }
                (Value::Array(a), Value::Number(n)) => {
                    if let Some(slot) = a.get_mut(n.as_u64().unwrap() as usize) {
                        *slot = v;
                    }
                }
                _ => {}
            }
        }
        c
    })
}

fn cni_args() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        proptest::sample::select(&["IgnoreUnknown", "MAC", "IP", "K8S_POD_NAME", "", "ip"][..])
            .prop_map(str::to_string),
        "[A-Za-z_=;]{0,8}",
    ];
    prop_oneof![
        any::<String>(),
        proptest::collection::vec((key, word(), any::<bool>()), 0..6).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v, eq)| if eq { format!("{k}={v}") } else { k })
                .collect::<Vec<_>>()
                .join(";")
        }),
    ]
}

static EXECUTIONS: AtomicU64 = AtomicU64::new(0);

fn refusal_ok(e: &CniError, allowed: &[u32], what: &str) {
    assert!(allowed.contains(&e.code), "{what}: unexpected code {e:?}");
    assert!(!e.msg.is_empty(), "{what}: empty message");
}

/// The whole pre-kernel path for one stdin, as the plugin runs it.
fn check_stdin(bytes: &[u8], cni_args: &str) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let raw = match config::decode(bytes) {
        Ok(v) => v,
        Err(e) => return refusal_ok(&e, &[6, 7], "decode"),
    };
    let parsed_args = match args::parse(cni_args) {
        Ok(a) => a,
        Err(e) => {
            refusal_ok(&e, &[4], "CNI_ARGS");
            Default::default()
        }
    };
    let _ = config::version_of(&raw);
    let _ = config::version_for_errors(Some(&raw));
    let _ = config::valid_attachments(&raw);
    if let Err(e) = NetConf::parse(raw.clone(), &parsed_args) {
        refusal_ok(&e, &[1, 2, 6, 7], "NetConf::parse");
    }
    if let Err(e) = NetConf::parse_ipam_only(raw.clone()) {
        refusal_ok(&e, &[1, 6, 7], "NetConf::parse_ipam_only");
    }
    if let Err(e) = IpamConf::parse(&raw, &parsed_args.ips) {
        assert!(!e.to_string().is_empty(), "IpamConf::parse: empty message");
    }
}

fn check_args(raw: &str) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = args::parse(raw) {
        refusal_ok(&e, &[4], "CNI_ARGS");
    }
}

fn check_env(vars: &HashMap<String, String>) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = Env::parse(|k| vars.get(k).cloned()) {
        refusal_ok(&e, &[4], "env");
    }
}

fn env_vars() -> impl Strategy<Value = HashMap<String, String>> {
    let key = proptest::sample::select(
        &[
            "CNI_COMMAND",
            "CNI_CONTAINERID",
            "CNI_NETNS",
            "CNI_IFNAME",
            "CNI_ARGS",
            "CNI_PATH",
        ][..],
    )
    .prop_map(str::to_string);
    let val = prop_oneof![
        proptest::sample::select(&["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"][..])
            .prop_map(str::to_string),
        word(),
    ];
    proptest::collection::hash_map(key, val, 0..7)
}

/// One network directory as another program could have left it: entries named like the
/// addresses of a /29, the hint and the index, each with arbitrary bytes (or, for the
/// index, a real one with flipped bytes).
#[derive(Debug, Clone)]
struct StoreCase {
    files: Vec<(usize, Vec<u8>)>,
    index_flips: Vec<(usize, u8)>,
}

const STORE_NAMES: &[&str] = &[
    "10.1.2.2",
    "10.1.2.3",
    "10.1.2.4",
    "10.1.2.5",
    "10.1.2.6",
    "last_reserved_ip.0",
    "last_reserved_ip.1",
];

fn store_case() -> impl Strategy<Value = StoreCase> {
    let content = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        (word(), word()).prop_map(|(a, b)| format!("{a}\r\n{b}").into_bytes()),
        proptest::sample::select(&["10.1.2.4", "10.1.2.250", "::1", " 10.1.2.3\n", ""][..])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    (
        proptest::collection::vec((0..STORE_NAMES.len(), content), 0..8),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    )
        .prop_map(|(files, index_flips)| StoreCase { files, index_flips })
}

static STORE_DIRS: AtomicU64 = AtomicU64::new(0);

/// Allocate, find, release, GC and status over the damaged directory: no panic; an
/// address handed out was free (its name did not exist); a found address really holds
/// that owner; after a release nothing of that owner is left.
fn check_store(case: &StoreCase) {
    EXECUTIONS.fetch_add(1, Ordering::Relaxed);
    let n = STORE_DIRS.fetch_add(1, Ordering::Relaxed);
    let data = std::env::temp_dir().join(format!("vnet-fuzz-store-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let conf_json = json!({"cniVersion": "1.0.0", "name": "fz", "type": "vnet",
        "ipam": {"type": "host-local", "subnet": "10.1.2.0/29", "dataDir": data}});
    let conf = IpamConf::parse(&conf_json, &[]).unwrap();
    let dir = data.join("fz");
    // A real index first (one ADD and DEL), to be damaged below.
    vnet::ipam::allocate(&conf, "fz", "seed", "eth0").unwrap();
    vnet::ipam::release(&data, "fz", "seed", "eth0").unwrap();
    if let Ok(mut idx) = std::fs::read(dir.join(".vnet-index")) {
        for (at, x) in &case.index_flips {
            if !idx.is_empty() {
                let i = at % idx.len();
                idx[i] ^= x | 1;
            }
        }
        std::fs::write(dir.join(".vnet-index"), idx).unwrap();
    }
    for (name, content) in &case.files {
        std::fs::write(dir.join(STORE_NAMES[*name]), content).unwrap();
    }
    let before: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    match vnet::ipam::allocate(&conf, "fz", "fuzz", "eth0") {
        Ok(a) => {
            let ip = a[0].address.addr().to_string();
            assert!(
                !before.contains(&ip),
                "{ip} was handed out but existed: {case:?}"
            );
            let found = vnet::ipam::find(&data, "fz", "fuzz", "eth0").unwrap();
            assert_eq!(found, vec![a[0].address.addr()], "{case:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = vnet::ipam::status(&data, "fz", None, 90.0).unwrap();
    vnet::ipam::release(&data, "fz", "fuzz", "eth0").unwrap();
    assert!(vnet::ipam::find(&data, "fz", "fuzz", "eth0")
        .unwrap()
        .is_empty());
    vnet::ipam::gc(&data, "fz", &[]).unwrap();
    let _ = std::fs::remove_dir_all(&data);
}

fn run<T: std::fmt::Debug>(name: &str, result: Result<(), proptest::test_runner::TestError<T>>) {
    if let Err(e) = result {
        panic!("fuzz family {name}: {e}");
    }
}

/// Runs every family once with `cases` cases; panics with the smallest failing input.
fn one_pass(cases: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut r = TestRunner::new(config.clone());
    let bytes = proptest::collection::vec(any::<u8>(), 0..512);
    run(
        "bytes",
        r.run(&bytes, |b| {
            check_stdin(&b, "");
            Ok(())
        }),
    );
    let mut r = TestRunner::new(config.clone());
    run(
        "json",
        r.run(&(value(), cni_args()), |(v, a)| {
            check_stdin(v.to_string().as_bytes(), &a);
            Ok(())
        }),
    );
    let mut r = TestRunner::new(config.clone());
    run(
        "mutated config",
        r.run(&(mutated_config(), cni_args()), |(v, a)| {
            check_stdin(v.to_string().as_bytes(), &a);
            Ok(())
        }),
    );
    let mut r = TestRunner::new(config.clone());
    run(
        "CNI_ARGS",
        r.run(&cni_args(), |a| {
            check_args(&a);
            Ok(())
        }),
    );
    let mut r = TestRunner::new(config.clone());
    run(
        "env",
        r.run(&env_vars(), |v| {
            check_env(&v);
            Ok(())
        }),
    );
    // Each case makes a directory and a dozen files: fewer cases than the pure parsers.
    let mut r = TestRunner::new(Config {
        cases: (cases / 10).max(30),
        ..config
    });
    run(
        "store",
        r.run(&store_case(), |c| {
            check_store(&c);
            Ok(())
        }),
    );
}

#[test]
fn parsers_never_panic_and_refuse_with_a_fitting_code() {
    let secs: u64 = std::env::var("VNET_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let start = Instant::now();
    let mut passes = 0u64;
    if secs == 0 {
        one_pass(300);
        passes = 1;
    } else {
        while start.elapsed() < Duration::from_secs(secs) {
            one_pass(2000);
            passes += 1;
        }
    }
    let n = EXECUTIONS.load(Ordering::Relaxed);
    let took = start.elapsed().as_secs_f64();
    eprintln!("fuzz: {n} executions in {took:.1} s ({passes} passes), 0 panics");
    if let Ok(path) = std::env::var("VNET_FUZZ_REPORT") {
        std::fs::write(
            path,
            format!("executions={n}\nseconds={took:.1}\npasses={passes}\npanics=0\n"),
        )
        .unwrap();
    }
    assert!(n >= 1500, "too few executions: {n}");
}
