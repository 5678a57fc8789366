//! The index table against a plain model, and when it may be trusted.
use super::*;
use crate::files::Open;
use crate::ipam::dir::Dir;
use crate::ipam::test_util::TempDir;
use std::collections::{HashMap, HashSet};

fn d(tmp: &TempDir) -> Dir {
    Dir::open(tmp.path()).unwrap()
}

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n))
}

/// A few keys whose home slots collide in any table of up to 64 Ki slots.
fn colliding(n: u64) -> u64 {
    (n << 20) | 7
}

fn stamp(n: i64) -> Stamp {
    Stamp {
        dev: 1,
        ino: 2,
        mtime: (n, 3),
        ctime: (n, 4),
        boot: 5,
    }
}

fn model_check(index: &Index, model: &HashMap<u64, HashSet<IpAddr>>) {
    for (key, ips) in model {
        let got: HashSet<IpAddr> = index.lookup(*key).unwrap().into_iter().collect();
        assert_eq!(&got, ips, "key {key:x}");
    }
    let total: usize = model.values().map(HashSet::len).sum();
    assert_eq!(index.len(), total as u64);
}

#[test]
fn insert_remove_and_growth_follow_a_model() {
    let tmp = TempDir::new("index-model");
    let mut index = Index::build(&d(&tmp), &[]).unwrap();
    let mut model: HashMap<u64, HashSet<IpAddr>> = HashMap::new();
    // Deterministic pseudo-random operations on hashed keys plus a few keys sharing one
    // home slot, with several addresses per key, enough to grow the table.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for step in 0..6000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = if x % 7 == 0 {
            colliding(x % 8)
        } else {
            fnv(&[&(x % 1500).to_le_bytes()]).max(1)
        };
        let ip = v4((x >> 32) as u32 % 3000);
        if x % 5 < 3 || step < 1500 {
            index.mark_dirty().unwrap();
            index.insert(key, ip).unwrap();
            model.entry(key).or_default().insert(ip);
        } else {
            let removed = index.remove(key, ip).unwrap();
            let had = model.get_mut(&key).is_some_and(|s| s.remove(&ip));
            assert_eq!(removed, had, "step {step}");
        }
        if step % 500 == 0 {
            model_check(&index, &model);
        }
    }
    model_check(&index, &model);
    assert!(index.capacity >= 2048, "the table grew");
}

#[test]
fn only_a_sealed_index_with_the_same_stamp_loads() {
    let tmp = TempDir::new("index-seal");
    let entries = [(11, v4(1)), (12, v4(2)), (11, v4(3))];
    let mut index = Index::build(&d(&tmp), &entries).unwrap();
    assert!(
        Index::load(&d(&tmp), &Stamp::default(), Open::ReadWrite).is_none(),
        "dirty after build"
    );
    index.seal(&stamp(100)).unwrap();
    let loaded = Index::load(&d(&tmp), &stamp(100), Open::Read).unwrap();
    assert_eq!(loaded.lookup(11).unwrap(), [v4(1), v4(3)]);
    assert!(Index::load(&d(&tmp), &stamp(101), Open::Read).is_none());
    index.mark_dirty().unwrap();
    assert!(Index::load(&d(&tmp), &stamp(100), Open::Read).is_none());
    index.seal(&stamp(102)).unwrap();
    assert!(Index::load(&d(&tmp), &stamp(102), Open::Read).is_some());
}

#[test]
fn a_damaged_file_is_never_trusted() {
    let tmp = TempDir::new("index-damage");
    let path = tmp.path().join(INDEX_FILE);
    let mut index = Index::build(&d(&tmp), &[(11, v4(1))]).unwrap();
    index.seal(&stamp(7)).unwrap();
    let good = std::fs::read(&path).unwrap();
    // A flipped header byte fails the checksum.
    let mut bad = good.clone();
    bad[20] ^= 1;
    std::fs::write(&path, &bad).unwrap();
    assert!(Index::load(&d(&tmp), &stamp(7), Open::Read).is_none());
    // A truncated table does not match the capacity in the header.
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    assert!(Index::load(&d(&tmp), &stamp(7), Open::Read).is_none());
    std::fs::write(&path, b"").unwrap();
    assert!(Index::load(&d(&tmp), &stamp(7), Open::Read).is_none());
    std::fs::write(&path, &good).unwrap();
    assert!(Index::load(&d(&tmp), &stamp(7), Open::Read).is_some());
}

#[test]
fn v6_entries_round_trip() {
    let tmp = TempDir::new("index-v6");
    let ip: IpAddr = "2001:db8::ffff:2".parse().unwrap();
    let index = Index::build(&d(&tmp), &[(9, ip), (9, v4(5))]).unwrap();
    assert_eq!(index.lookup(9).unwrap(), [ip, v4(5)]);
}

#[test]
fn audit_tells_valid_stale_absent_and_mismatch_apart() {
    let tmp = TempDir::new("index-audit");
    let entries = [(11, v4(1)), (12, v4(2))];
    assert_eq!(audit(&d(&tmp), &stamp(1), &entries), IndexState::Absent);
    let mut index = Index::build(&d(&tmp), &entries).unwrap();
    assert_eq!(audit(&d(&tmp), &stamp(1), &entries), IndexState::Stale);
    index.seal(&stamp(1)).unwrap();
    assert_eq!(audit(&d(&tmp), &stamp(1), &entries), IndexState::Valid);
    assert_eq!(audit(&d(&tmp), &stamp(2), &entries), IndexState::Stale);
    assert_eq!(
        audit(&d(&tmp), &stamp(1), &entries[..1]),
        IndexState::Mismatch
    );
    let other = [(11, v4(1)), (13, v4(2))];
    assert_eq!(audit(&d(&tmp), &stamp(1), &other), IndexState::Mismatch);
}

#[test]
fn keys_separate_attachments_from_legacy_owners() {
    assert_ne!(attachment_key("a", "eth0"), legacy_key("a"));
    assert_eq!(attachment_key(" a ", "eth0"), attachment_key("a", "eth0"));
    assert_ne!(attachment_key("a", "eth0"), attachment_key("a", "eth1"));
    assert_ne!(attachment_key("ab", "c"), attachment_key("a", "bc"));
    let owner = Owner::parse(b"a\r\neth0");
    assert_eq!(owner_key(&owner), Some(attachment_key("a", "eth0")));
    assert_eq!(owner_key(&Owner::Unknown), None);
}
