//! `vnet ipam status` on stores with known contents, and damaged or foreign reservation
//! files: each reported with its path, none breaking ADD, none handed out twice.

#![allow(clippy::unwrap_used)]

mod common;
mod ipam_common;

use common::reference_or_skip;
use ipam_common::*;
use serde_json::json;

/// Two range sets; in set 0, `b` holds two addresses, .6 is empty, .9 was cut after the
/// CRLF, .10 is binary garbage; 10.77.0.5 lies outside every range.
fn known_store() -> Store {
    let s = Store::new(json!({
        "ranges": [[{"subnet": "10.44.0.0/28"}], [{"subnet": "2001:db8:44::/64"}]]
    }));
    for id in ["a", "b", "c"] {
        s.add(id);
    }
    s.write("10.44.0.6", b"");
    s.write("10.44.0.8", b"b\r\neth0");
    s.write("10.44.0.9", b"d\r\n");
    s.write("10.44.0.10", &[0xde, 0xad, 0xbe, 0xef, 0x00]);
    s.write("10.77.0.5", b"e\r\neth0");
    s
}

#[test]
fn status_json_has_exact_counts_and_findings() {
    let s = known_store();
    let (code, doc) = s.status_json();
    assert_eq!(code, 1, "findings mean exit 1: {doc}");
    let net = &doc["networks"][0];
    assert_eq!(net["name"], NET);
    // Files were written behind vnet's back: its index no longer matches the directory.
    assert_eq!(net["index"], "stale");
    let set0 = &net["range_sets"][0];
    // 10.44.0.2..=.14 without the gateway: 13; a, b, c, b again, and three damaged files.
    assert_eq!(set0["size"], 13);
    assert_eq!(set0["reserved"], 7);
    assert_eq!(set0["free"], 6);
    assert_eq!(set0["used_percent"], 53.85);
    assert_eq!(set0["last_reserved"], "10.44.0.4");
    assert_eq!(set0["ranges"][0]["subnet"], "10.44.0.0/28");
    let set1 = &net["range_sets"][1];
    assert_eq!(set1["reserved"], 3);
    assert_eq!(set1["size"], 18446744073709551614u64);
    assert_eq!(net["reservations"].as_array().unwrap().len(), 11);
    let dir = s.dir();
    let path = |ip: &str| json!(dir.join(ip));
    let kinds: Vec<(String, Option<String>)> = net["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let k = f["kind"].as_str().unwrap().to_string();
            (k, f["address"].as_str().map(String::from))
        })
        .collect();
    let expect = |k: &str, a: Option<&str>| (k.to_string(), a.map(String::from));
    assert_eq!(
        kinds,
        [
            expect("malformed", Some("10.44.0.6")),
            expect("malformed", Some("10.44.0.9")),
            expect("malformed", Some("10.44.0.10")),
            expect("outside_ranges", Some("10.77.0.5")),
            expect("duplicate", None),
        ]
    );
    let f = &net["findings"];
    assert_eq!(f[0]["path"], path("10.44.0.6"));
    assert_eq!(
        f[1]["detail"],
        "truncated after the container ID: no interface name"
    );
    assert_eq!(f[2]["detail"], "not text (invalid UTF-8)");
    assert_eq!(f[3]["path"], path("10.77.0.5"));
    assert_eq!(f[4]["container_id"], "b");
    assert_eq!(f[4]["scope"], "range set 0");
    assert_eq!(f[4]["addresses"], json!(["10.44.0.3", "10.44.0.8"]));
    assert_eq!(doc["findings"], 5);
    let r = &net["reservations"][0];
    assert_eq!(r["address"], "10.44.0.2");
    assert_eq!(
        (&r["container_id"], &r["ifname"]),
        (&json!("a"), &json!("eth0"))
    );
    assert_eq!(r["format"], "current");
    assert!(r["age_seconds"].as_u64().unwrap() < 600);
}

#[test]
fn status_table_reads_like_the_json() {
    let s = known_store();
    let out = s.cli(&["status", "--summary"]);
    assert_eq!(out.status.code(), Some(1));
    let dir = s.dir().display().to_string();
    let got = text(&out).replace(&dir, "DIR");
    let want = "\
network ipamnet  (DIR)
  11 reservations; index stale

  SET  RANGE                                                                GATEWAY         SIZE                  RESERVED  FREE                  USED   LAST RESERVED
  0    10.44.0.1-10.44.0.14 (10.44.0.0/28)                                  10.44.0.1       13                    7         6                     53.8%  10.44.0.4
  1    2001:db8:44::1-2001:db8:44:0:ffff:ffff:ffff:ffff (2001:db8:44::/64)  2001:db8:44::1  18446744073709551614  3         18446744073709551611  0.0%   2001:db8:44::4

  findings (5):
    malformed              10.44.0.6: empty file (a write cut short right after the file was created?) (DIR/10.44.0.6); the address stays taken until released by address
    malformed              10.44.0.9: truncated after the container ID: no interface name (DIR/10.44.0.9); the address stays taken until released by address
    malformed              10.44.0.10: not text (invalid UTF-8) (DIR/10.44.0.10); the address stays taken until released by address
    outside_ranges         10.77.0.5 is in no configured range (config changed since it was reserved?)
    duplicate              b/eth0 holds 2 addresses in range set 0: 10.44.0.3, 10.44.0.8

";
    assert_eq!(got, want);
    // Without --summary every reservation is listed.
    let full = text(&s.cli(&["status"]));
    assert!(full.contains("ADDRESS"), "{full}");
    let line = full
        .lines()
        .find(|l| l.trim_start().starts_with("10.44.0.10 "));
    let cols: Vec<&str> = line.unwrap().split_whitespace().collect();
    assert_eq!(cols, ["10.44.0.10", "?", "-", cols[3], "malformed"]);
    assert_eq!(full.matches(" current\n").count(), 8, "{full}");
}

#[test]
fn a_clean_store_exits_0_and_data_dir_mode_works_without_ranges() {
    let s = Store::subnet("10.45.0.0/24");
    s.add("x");
    let out = s.cli(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no findings"));
    s.write("10.45.9.9", b"y\r\neth0");
    s.write("10.45.0.7", b"y\r\neth0");
    let data = s.data.path().to_str().unwrap();
    let out = vnet(&["ipam", "status", "--data-dir", data, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let net = &doc["networks"][0];
    assert_eq!(net["range_sets"], json!(null), "ranges unknown");
    assert_eq!(net["reservations"].as_array().unwrap().len(), 3);
    // Outside-range needs ranges; the per-family duplicate does not.
    assert_eq!(net["findings"].as_array().unwrap().len(), 1);
    assert_eq!(net["findings"][0]["kind"], "duplicate");
    assert_eq!(net["findings"][0]["scope"], "IPv4");
    // Usage errors exit 2 (a data directory not there yet is not one: see below).
    assert_eq!(vnet(&["ipam", "status", "--bogus"]).status.code(), Some(2));
}

#[test]
fn damaged_files_never_break_add_nor_get_handed_out() {
    let s = Store::subnet("10.46.0.0/29");
    // The next five candidates in round robin are all damaged or foreign.
    s.write("10.46.0.2", b"");
    s.write("10.46.0.3", b"c1\r\n");
    s.write("10.46.0.4", b"\x00\x01garbage\xff");
    s.write("10.46.0.5", b"   ");
    s.write("10.46.7.7", b"elsewhere\r\neth0");
    let got = s.add("fresh");
    assert_eq!(got, "10.46.0.6", "the only healthy free address");
    // Full now: ADD fails cleanly (code 100) and leaves nothing behind.
    let e = s.call("ADD", "more").err(100);
    assert!(e["msg"]
        .as_str()
        .unwrap()
        .contains("no IP addresses available"));
    // DEL and GC (CNI) go past the damage too.
    s.del("fresh");
    s.del("c1");
    let (_, doc) = s.status_json();
    let kinds: Vec<&str> = doc["networks"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // c1's truncated file reads as a legacy ID-only file to DEL, so DEL c1 released it,
    // like the reference would.
    assert_eq!(
        kinds,
        ["malformed", "malformed", "malformed", "outside_ranges"]
    );
    assert_eq!(s.files().len(), 4);
    // A manual release by address clears a malformed file.
    let out = s.cli(&["release", "10.46.0.2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(s.add("again"), "10.46.0.2");
}

#[test]
fn a_file_written_by_the_reference_is_read_and_released() {
    let Some(reference) = reference_or_skip("ipam_status_reference", "host-local") else {
        return;
    };
    let s = Store::subnet("10.47.0.0/24");
    assert_eq!(s.add("v1"), "10.47.0.2");
    let r = s.reference(&reference, "ADD", "r1").ok().json();
    assert_eq!(ip_of(&r), "10.47.0.3");
    // The reference changed the directory behind vnet's index: status says so, and sees
    // the reference's file as a normal reservation.
    let (code, doc) = s.status_json();
    assert_eq!(code, 0, "{doc}");
    let net = &doc["networks"][0];
    assert_eq!(net["index"], "stale");
    assert_eq!(net["reservations"][1]["container_id"], "r1");
    assert_eq!(net["reservations"][1]["format"], "current");
    // vnet rebuilds its index on the next call, continues round robin, releases r1.
    assert_eq!(s.add("v2"), "10.47.0.4");
    s.del("r1");
    assert_eq!(
        s.files().iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["10.47.0.2", "10.47.0.4"]
    );
    // And the reference, walking a directory that holds vnet's index, releases vnet's.
    s.reference(&reference, "CHECK", "v2").ok();
    s.reference(&reference, "DEL", "v2").ok();
    assert_eq!(s.files().len(), 1);
    let (code, doc) = s.status_json();
    assert_eq!(
        (code, doc["networks"][0]["index"].as_str()),
        (0, Some("stale"))
    );
    s.del("v1");
    assert!(s.files().is_empty());
    assert_eq!(s.status_json().1["networks"][0]["index"], "valid");
}

#[test]
fn temp_files_of_dead_writers_are_removed_live_ones_reported() {
    let s = Store::subnet("10.43.0.0/24");
    s.add("a");
    // 4194305 is above the kernel's PID limit: that writer is certainly dead. Our own PID
    // is certainly alive (a writer that ignored the lock, for all vnet knows).
    let alive = format!(".vnet-tmp.{}", std::process::id());
    s.write(".vnet-tmp.4194305", b"x\r\neth0");
    s.write(&alive, b"y\r\neth0");
    s.add("b");
    let names = s.names();
    assert!(
        !names.contains(&".vnet-tmp.4194305".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&alive), "{names:?}");
    let (code, doc) = s.status_json();
    assert_eq!(code, 1);
    let f = &doc["networks"][0]["findings"][0];
    assert_eq!(f["kind"], "stale_temp_file");
    assert_eq!(f["path"], json!(s.dir().join(&alive)));
    // Temp files are never reservations: the two ADDs got .2 and .3.
    assert_eq!(s.files().len(), 2);
}

#[test]
fn a_node_without_a_store_has_nothing_reserved_whichever_way_it_is_asked() {
    // A fresh node: the data directory does not exist yet. With and without a config
    // the answer is the same (no flags used to fail with exit 2, "No such file").
    let dir = std::env::temp_dir().join(format!("vnet-nostore-{}", std::process::id()));
    let data = dir.display().to_string();
    let out = vnet(&["ipam", "status", "--data-dir", &data]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text.contains("nothing reserved"), "{text}");
    assert!(!dir.exists(), "status made the data directory");
}
