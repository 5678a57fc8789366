//! Status analysis on directories with known contents.
use super::*;
use crate::ipam::range_set::set_of;
use crate::ipam::test_util::TempDir;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    std::fs::write(dir.join(name), content).unwrap();
}

fn report(tmp: &TempDir, sets: Option<&[RangeSet]>) -> NetworkStatus {
    status(tmp.path(), "net", sets, 90.0).unwrap()
}

#[test]
fn counts_and_findings_with_ranges() {
    let tmp = TempDir::new("status-ranges");
    let d = tmp.path().join("net");
    std::fs::create_dir(&d).unwrap();
    write(&d, "10.1.2.2", b"a\r\neth0");
    write(&d, "10.1.2.3", b"b\r\neth0");
    write(&d, "10.1.2.4", b"b\r\neth0");
    write(&d, "10.1.2.5", b"");
    write(&d, "10.1.2.6", b"f\r\neth0");
    write(&d, "10.1.2.1", b"c\r\neth0");
    write(&d, "10.9.9.9", b"d\r\neth0");
    write(&d, "2001:db8::2", b"a\r\neth0");
    write(&d, "last_reserved_ip.0", b"10.1.2.5");
    write(&d, ".vnet-tmp.4194305", b"e\r\neth0");
    let sets = [set_of(&["10.1.2.0/29"]), set_of(&["2001:db8::/64"])];
    let r = report(&tmp, Some(&sets));
    let usage = r.sets.as_ref().unwrap();
    assert_eq!((usage[0].size(), usage[0].reserved()), (5, 5));
    assert_eq!(usage[0].last_reserved.as_deref(), Some("10.1.2.5"));
    assert_eq!(usage[1].size(), (1u128 << 64) - 2);
    assert_eq!(usage[1].reserved(), 1);
    assert_eq!(r.reservations.len(), 8);
    assert_eq!(
        r.findings,
        [
            Finding::GatewayReserved {
                ip: ip("10.1.2.1"),
                path: d.join("10.1.2.1")
            },
            Finding::Malformed {
                ip: ip("10.1.2.5"),
                path: d.join("10.1.2.5"),
                problem: "empty file (a write cut short right after the file was created?)".into()
            },
            Finding::OutsideRanges {
                ip: ip("10.9.9.9"),
                path: d.join("10.9.9.9")
            },
            Finding::Duplicate {
                id: "b".into(),
                ifname: Some("eth0".into()),
                scope: "range set 0".into(),
                ips: vec![ip("10.1.2.3"), ip("10.1.2.4")]
            },
            Finding::PoolExhausted { set: 0 },
            Finding::StaleTempFile {
                path: d.join(".vnet-tmp.4194305")
            },
        ]
    );
}

#[test]
fn without_ranges_duplicates_are_per_family() {
    let tmp = TempDir::new("status-noranges");
    let d = tmp.path().join("net");
    std::fs::create_dir(&d).unwrap();
    write(&d, "10.1.2.2", b"a\r\neth0");
    write(&d, "10.7.0.2", b"a\r\neth0");
    write(&d, "2001:db8::2", b"a\r\neth0");
    write(&d, "10.1.2.3", b"old");
    write(&d, "notes", b"");
    let r = report(&tmp, None);
    assert!(r.sets.is_none());
    assert_eq!(r.reservations[1].container_id.as_deref(), Some("old"));
    assert_eq!(r.reservations[1].format, Format::Legacy);
    assert_eq!(
        r.findings,
        [
            Finding::Duplicate {
                id: "a".into(),
                ifname: Some("eth0".into()),
                scope: "IPv4".into(),
                ips: vec![ip("10.1.2.2"), ip("10.7.0.2")]
            },
            Finding::StrayFile {
                path: d.join("notes")
            },
        ]
    );
}

#[test]
fn a_full_pool_and_a_missing_directory() {
    let tmp = TempDir::new("status-full");
    let sets = [set_of(&["10.1.2.0/30"])];
    let r = report(&tmp, Some(&sets));
    assert!(!r.exists && r.findings.is_empty());
    assert_eq!(r.sets.unwrap()[0].size(), 1);
    let d = tmp.path().join("net");
    std::fs::create_dir(&d).unwrap();
    write(&d, "10.1.2.2", b"a\r\neth0");
    let r = report(&tmp, Some(&sets));
    assert_eq!(r.findings, [Finding::PoolExhausted { set: 0 }]);
    let sets = [set_of(&["10.1.2.0/28"])];
    for i in 3..14 {
        write(&d, &format!("10.1.2.{i}"), b"a\r\neth0");
    }
    // 12 of 13 taken (92.3%); a's twelve addresses are also one duplicate finding.
    let r = report(&tmp, Some(&sets));
    assert!(matches!(
        r.findings[..],
        [Finding::Duplicate { .. }, Finding::PoolNearlyExhausted { set: 0, used_percent }]
            if (used_percent - 1200.0 / 13.0).abs() < 1e-9
    ));
    assert_eq!(percent(1, 1), 100.0);
}
