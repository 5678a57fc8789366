//! The public functions against a real directory (no root needed).
use super::test_util::{conf, TempDir};
use super::{allocate, exhausted_sets, find, gc, release, IpamError};
use serde_json::json;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn v4(tmp: &TempDir, subnet: &str) -> super::IpamConf {
    conf(tmp.path(), json!([[{"subnet": subnet}]]))
}

#[test]
fn on_disk_layout_matches_the_reference() {
    let tmp = TempDir::new("layout");
    let c = conf(
        tmp.path(),
        json!([[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]]),
    );
    let got = allocate(&c, "mynet", "dummy", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.2/24");
    assert_eq!(got[1].address.to_string(), "2001:db8:1::2/64");
    let dir = tmp.path().join("mynet");
    assert_eq!(fs::read(dir.join("10.1.2.2")).unwrap(), b"dummy\r\neth0");
    assert_eq!(
        fs::read(dir.join("2001:db8:1::2")).unwrap(),
        b"dummy\r\neth0"
    );
    assert_eq!(
        fs::read(dir.join("last_reserved_ip.0")).unwrap(),
        b"10.1.2.2"
    );
    assert_eq!(
        fs::read(dir.join("last_reserved_ip.1")).unwrap(),
        b"2001:db8:1::2"
    );
    assert_eq!(mode(&dir.join("10.1.2.2")), 0o600);
    // Each reservation is a file of its own (the temp file is never linked twice).
    assert_eq!(fs::metadata(dir.join("10.1.2.2")).unwrap().nlink(), 1);
    assert_eq!(fs::metadata(dir.join("2001:db8:1::2")).unwrap().nlink(), 1);
    assert!(!names(&dir).iter().any(|n| n.starts_with(".vnet-tmp")));
    assert_eq!(mode(&dir.join("last_reserved_ip.0")), 0o600);
    assert_eq!(mode(&dir.join("lock")) & 0o700, 0o700);
    assert_eq!(mode(&dir) & 0o700, 0o700);

    let freed = release(tmp.path(), "mynet", "dummy", "eth0").unwrap();
    assert_eq!(freed, [ip("10.1.2.2"), ip("2001:db8:1::2")]);
    // Plus vnet's derived index; no temp file is left behind.
    assert_eq!(
        names(&dir),
        [
            ".vnet-index",
            "last_reserved_ip.0",
            "last_reserved_ip.1",
            "lock"
        ]
    );
}

#[test]
fn round_robin_continues_from_the_file_and_skips_strays() {
    let tmp = TempDir::new("rr");
    let c = v4(&tmp, "10.1.2.0/29");
    let dir = tmp.path().join("mynet");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("last_reserved_ip.0"), "10.1.2.5").unwrap();
    fs::write(dir.join("notes.txt"), "a\r\neth0").unwrap();
    let got = allocate(&c, "mynet", "a", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.6/29");
    // A garbage hint is ignored rather than fatal.
    fs::write(dir.join("last_reserved_ip.0"), "not an ip").unwrap();
    let got = allocate(&c, "mynet", "b", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.2/29");
}

#[test]
fn release_is_per_ifname_and_find_sees_it() {
    let tmp = TempDir::new("ifname");
    let c = v4(&tmp, "10.1.2.0/24");
    allocate(&c, "mynet", "a", "eth0").unwrap();
    allocate(&c, "mynet", "a", "eth1").unwrap();
    let e = allocate(&c, "mynet", "a", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::Duplicate { .. }), "{e}");
    assert_eq!(
        find(tmp.path(), "mynet", "a", "eth1").unwrap(),
        [ip("10.1.2.3")]
    );
    assert_eq!(
        release(tmp.path(), "mynet", "a", "eth0").unwrap(),
        [ip("10.1.2.2")]
    );
    assert!(find(tmp.path(), "mynet", "a", "eth0").unwrap().is_empty());
    assert_eq!(
        find(tmp.path(), "mynet", "a", "eth1").unwrap(),
        [ip("10.1.2.3")]
    );
}

#[test]
fn legacy_id_only_files_are_found_and_released() {
    let tmp = TempDir::new("legacy");
    let dir = tmp.path().join("mynet");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("10.1.2.9"), "  dummy \n").unwrap();
    assert_eq!(
        find(tmp.path(), "mynet", "dummy", "eth0").unwrap(),
        [ip("10.1.2.9")]
    );
    assert_eq!(
        release(tmp.path(), "mynet", "dummy", "eth0").unwrap(),
        [ip("10.1.2.9")]
    );
    assert!(!dir.join("10.1.2.9").exists());
}

#[test]
fn unknown_id_release_is_ok() {
    let tmp = TempDir::new("unknown");
    assert!(release(tmp.path(), "mynet", "nobody", "eth0")
        .unwrap()
        .is_empty());
    assert!(find(tmp.path(), "mynet", "nobody", "eth0")
        .unwrap()
        .is_empty());
}

#[test]
fn gc_keeps_valid_and_bookkeeping_files() {
    let tmp = TempDir::new("gc");
    let c = v4(&tmp, "10.1.2.0/24");
    for (id, ifname) in [("a", "eth0"), ("b", "eth0"), ("c", "eth0")] {
        allocate(&c, "mynet", id, ifname).unwrap();
    }
    let dir = tmp.path().join("mynet");
    fs::write(dir.join("10.1.2.50"), "a").unwrap();
    fs::write(dir.join("10.1.2.51"), "z").unwrap();
    let valid = vec![
        ("a".to_string(), "eth0".to_string()),
        ("c".to_string(), "eth1".to_string()),
    ];
    let freed = gc(tmp.path(), "mynet", &valid).unwrap();
    assert_eq!(freed, [ip("10.1.2.3"), ip("10.1.2.4"), ip("10.1.2.51")]);
    assert_eq!(
        names(&dir),
        [
            ".vnet-index",
            "10.1.2.2",
            "10.1.2.50",
            "last_reserved_ip.0",
            "lock"
        ]
    );
}

#[test]
fn exhausted_sets_reports_full_sets() {
    let tmp = TempDir::new("status");
    let c = conf(
        tmp.path(),
        json!([[{"subnet": "10.1.2.0/30"}], [{"subnet": "10.1.3.0/24"}]]),
    );
    assert!(exhausted_sets(&c, "mynet").unwrap().is_empty());
    allocate(&c, "mynet", "a", "eth0").unwrap();
    assert_eq!(exhausted_sets(&c, "mynet").unwrap(), [0]);
}

#[test]
fn exhaustion_after_five_on_a_slash_29() {
    let tmp = TempDir::new("exhaust");
    let c = v4(&tmp, "10.1.2.0/29");
    for i in 0..5 {
        allocate(&c, "mynet", &format!("c{i}"), "eth0").unwrap();
    }
    let e = allocate(&c, "mynet", "c5", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::Exhausted { set: 0, .. }), "{e}");
    assert!(!tmp.path().join("mynet/10.1.2.7").exists());
}

#[test]
fn malformed_reservation_files_are_neither_fatal_nor_reused() {
    let tmp = TempDir::new("malformed");
    let c = v4(&tmp, "10.1.2.0/24");
    let dir = tmp.path().join("mynet");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("10.1.2.2"), "").unwrap();
    fs::write(dir.join("10.1.2.3"), [0xff, 0xfe, 0x00, b'\r']).unwrap();
    fs::create_dir(dir.join("10.1.2.4")).unwrap();
    let got = allocate(&c, "mynet", "a", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.5/24");
    assert!(release(tmp.path(), "mynet", "", "eth0").is_err());
    gc(tmp.path(), "mynet", &[]).unwrap();
    assert_eq!(fs::read(dir.join("10.1.2.2")).unwrap(), b"");
    assert!(dir.join("10.1.2.3").exists() && dir.join("10.1.2.4").is_dir());
}

#[test]
fn all_or_nothing_leaves_no_files() {
    let tmp = TempDir::new("atomic");
    let c = conf(
        tmp.path(),
        json!([[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.2.0.0/30"}]]),
    );
    allocate(&c, "mynet", "x", "eth0").unwrap();
    let e = allocate(&c, "mynet", "y", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::Exhausted { set: 1, .. }), "{e}");
    assert!(!tmp.path().join("mynet/10.1.2.3").exists());
}

#[test]
fn requested_ip_on_disk_updates_the_hint() {
    let tmp = TempDir::new("requested");
    let mut c = v4(&tmp, "10.1.2.0/24");
    c.requested = vec![ip("10.1.2.77")];
    let got = allocate(&c, "mynet", "a", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.77/24");
    let hint = fs::read(tmp.path().join("mynet/last_reserved_ip.0")).unwrap();
    assert_eq!(hint, b"10.1.2.77");
    let e = allocate(&c, "mynet", "b", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::RequestedUnavailable { .. }), "{e}");
}

#[test]
fn unsafe_names_are_refused_before_touching_disk() {
    let tmp = TempDir::new("names");
    let c = v4(&tmp, "10.1.2.0/24");
    for (net, id, ifname) in [
        ("../x", "a", "eth0"),
        ("mynet", "a/b", "eth0"),
        ("mynet", "a", "e\0"),
    ] {
        let e = allocate(&c, net, id, ifname).unwrap_err();
        assert!(matches!(e, IpamError::Config(_)), "{e}");
        assert!(release(tmp.path(), net, id, ifname).is_err());
        assert!(find(tmp.path(), net, id, ifname).is_err());
    }
    assert!(gc(tmp.path(), "..", &[]).is_err());
    assert!(exhausted_sets(&c, "a/b").is_err());
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn concurrent_allocations_never_collide() {
    let tmp = TempDir::new("concurrent");
    let c = v4(&tmp, "10.1.0.0/16");
    let mut all: Vec<IpAddr> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let c = &c;
                s.spawn(move || {
                    (0..10)
                        .map(|i| {
                            allocate(c, "mynet", &format!("t{t}-{i}"), "eth0").unwrap()[0]
                                .address
                                .addr()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 80);
}

#[test]
fn without_o_tmpfile_a_named_temp_file_is_written_linked_and_removed() {
    super::disk::NO_TMPFILE.with(|off| off.set(true));
    let tmp = TempDir::new("named");
    let c = conf(
        tmp.path(),
        json!([[{"subnet": "10.1.3.0/24"}], [{"subnet": "2001:db8:3::/64"}]]),
    );
    let got = allocate(&c, "mynet", "ctr", "eth1").unwrap();
    super::disk::NO_TMPFILE.with(|off| off.set(false));
    let dir = tmp.path().join("mynet");
    for a in &got {
        let path = dir.join(a.address.addr().to_string());
        assert_eq!(fs::read(&path).unwrap(), b"ctr\r\neth1");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().nlink(), 1);
    }
    assert!(
        !names(&dir).iter().any(|n| n.starts_with(".vnet-tmp")),
        "{:?}",
        names(&dir)
    );
    let freed = release(tmp.path(), "mynet", "ctr", "eth1").unwrap();
    assert_eq!(freed.len(), 2);
}
