//! Allocator behaviour over an in-memory store (the reference allocator_test.go cases).
use super::allocator::{allocate_all, allocate_one, is_exhausted};
use super::mem_store::MemStore;
use super::range::RangeSpec;
use super::range_set::{set_of, RangeSet};
use super::IpamError;
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn get(store: &mut MemStore, set: &RangeSet, id: &str) -> Result<String, IpamError> {
    allocate_one(store, set, 0, None, id, "eth0").map(|a| a.address.to_string())
}

fn with_last(last: &str, taken: &[(&str, &str)]) -> MemStore {
    let mut s = MemStore::with(taken);
    s.last.insert(0, ip(last));
    s
}

/// 10.1.2.0/24 limited to .10–.20.
fn narrow_set() -> RangeSet {
    RangeSet::canonicalize(&[RangeSpec {
        subnet: "10.1.2.0/24".parse().unwrap(),
        start: Some(ip("10.1.2.10")),
        end: Some(ip("10.1.2.20")),
        gateway: None,
    }])
    .unwrap()
}

#[test]
fn round_robin_table() {
    let set = set_of(&["10.1.2.0/29"]);
    assert_eq!(
        get(&mut MemStore::default(), &set, "a").unwrap(),
        "10.1.2.2/29"
    );
    assert_eq!(
        get(&mut with_last("10.1.2.5", &[]), &set, "a").unwrap(),
        "10.1.2.6/29"
    );
    let mut s = with_last("10.1.2.5", &[("10.1.2.6", "x\r\neth0")]);
    assert_eq!(get(&mut s, &set, "a").unwrap(), "10.1.2.2/29");
    assert_eq!(
        get(&mut with_last("10.1.3.5", &[]), &set, "a").unwrap(),
        "10.1.2.2/29"
    );
    let two = set_of(&["10.0.0.0/30", "10.0.1.0/30"]);
    assert_eq!(
        get(&mut with_last("10.0.0.2", &[]), &two, "a").unwrap(),
        "10.0.1.2/30"
    );
}

#[test]
fn slash_29_gives_five_addresses_then_exhausts_without_broadcast() {
    let set = set_of(&["10.1.2.0/29"]);
    let mut s = MemStore::default();
    let got: Vec<String> = (0..5)
        .map(|i| get(&mut s, &set, &format!("c{i}")).unwrap())
        .collect();
    assert_eq!(
        got,
        [
            "10.1.2.2/29",
            "10.1.2.3/29",
            "10.1.2.4/29",
            "10.1.2.5/29",
            "10.1.2.6/29"
        ]
    );
    assert!(is_exhausted(&s, &set, 0).unwrap());
    match get(&mut s, &set, "c5").unwrap_err() {
        e @ IpamError::Exhausted { set: 0, .. } => assert_eq!(
            e.to_string(),
            "no IP addresses available in range set: 10.1.2.1-10.1.2.6"
        ),
        e => panic!("unexpected {e}"),
    }
    assert!(!s.files.contains_key(&ip("10.1.2.7")));
}

#[test]
fn allocation_records_last_reserved_and_gateway() {
    let set = set_of(&["10.1.2.0/24"]);
    let mut s = MemStore::default();
    let a = allocate_one(&mut s, &set, 3, None, "a", "eth0").unwrap();
    assert_eq!(a.gateway, Some(ip("10.1.2.1")));
    assert_eq!(s.last.get(&3), Some(&ip("10.1.2.2")));
    assert_eq!(s.files[&ip("10.1.2.2")], b"a\r\neth0");
}

#[test]
fn requested_ip_is_reserved_and_becomes_last() {
    let set = narrow_set();
    let mut s = MemStore::default();
    let a = allocate_one(&mut s, &set, 0, Some(ip("10.1.2.15")), "a", "eth0").unwrap();
    assert_eq!(a.address.to_string(), "10.1.2.15/24");
    assert_eq!(s.last.get(&0), Some(&ip("10.1.2.15")));
    assert_eq!(get(&mut s, &set, "b").unwrap(), "10.1.2.16/24");
}

#[test]
fn requested_ip_taken_gateway_or_outside() {
    let set = narrow_set();
    let mut s = MemStore::with(&[("10.1.2.12", "x\r\neth0")]);
    let msg = |r: Result<_, IpamError>| match r {
        Err(IpamError::RequestedUnavailable { reason, .. }) => reason,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        msg(allocate_one(
            &mut s,
            &set,
            0,
            Some(ip("10.1.2.12")),
            "a",
            "eth0"
        )),
        "requested IP address 10.1.2.12 is not available in range set 10.1.2.10-10.1.2.20"
    );
    for outside in ["10.1.2.9", "10.1.2.21"] {
        let r = allocate_one(&mut s, &set, 0, Some(ip(outside)), "a", "eth0");
        assert!(msg(r).contains("is not in range set"));
    }
    let set = set_of(&["10.1.2.0/24"]);
    assert_eq!(
        msg(allocate_one(
            &mut s,
            &set,
            0,
            Some(ip("10.1.2.1")),
            "a",
            "eth0"
        )),
        "requested ip 10.1.2.1 is subnet's gateway"
    );
}

#[test]
fn unmatched_requested_ips_release_everything() {
    let sets = [set_of(&["10.1.2.0/24"])];
    let mut s = MemStore::default();
    let req = [ip("10.1.2.9"), ip("10.9.9.9"), ip("2001:db8::9")];
    match allocate_all(&mut s, &sets, &req, "a", "eth0").unwrap_err() {
        IpamError::RequestedUnavailable { ip: first, reason } => {
            assert_eq!(first, ip("10.9.9.9"));
            assert_eq!(
                reason,
                "failed to allocate all requested IPs: 10.9.9.9 2001:db8::9"
            );
        }
        e => panic!("unexpected {e}"),
    }
    assert!(s.files.is_empty());
}

#[test]
fn first_requested_ip_in_each_set_wins() {
    let sets = [set_of(&["10.1.2.0/24"]), set_of(&["2001:db8:1::/64"])];
    let mut s = MemStore::default();
    let req = [ip("2001:db8:1::9"), ip("10.1.2.9")];
    let got = allocate_all(&mut s, &sets, &req, "a", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.9/24");
    assert_eq!(got[1].address.to_string(), "2001:db8:1::9/64");
}

#[test]
fn duplicate_id_and_ifname_is_refused_but_other_ifname_is_fine() {
    let set = set_of(&["10.1.2.0/24"]);
    let mut s = MemStore::default();
    get(&mut s, &set, "a").unwrap();
    let e = get(&mut s, &set, "a").unwrap_err();
    assert!(matches!(e, IpamError::Duplicate { .. }));
    assert_eq!(
        e.to_string(),
        "10.1.2.2 has been allocated to a, duplicate allocation is not allowed"
    );
    let b = allocate_one(&mut s, &set, 0, None, "a", "eth1").unwrap();
    assert_eq!(b.address.to_string(), "10.1.2.3/24");
}

#[test]
fn holding_an_address_in_another_set_is_not_a_duplicate() {
    let mut s = MemStore::with(&[("10.9.0.5", "a\r\neth0")]);
    assert_eq!(
        get(&mut s, &set_of(&["10.1.2.0/24"]), "a").unwrap(),
        "10.1.2.2/24"
    );
}

#[test]
fn all_or_nothing_across_sets() {
    let sets = [set_of(&["10.1.2.0/24"]), set_of(&["10.2.0.0/30"])];
    let mut s = MemStore::with(&[("10.2.0.2", "x\r\neth0")]);
    let e = allocate_all(&mut s, &sets, &[], "a", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::Exhausted { set: 1, .. }), "{e}");
    assert_eq!(s.ips(), ["10.2.0.2"]);
}

#[test]
fn dual_stack_fresh() {
    let sets = [set_of(&["10.1.2.0/24"]), set_of(&["2001:db8:1::/64"])];
    let mut s = MemStore::default();
    let got = allocate_all(&mut s, &sets, &[], "dummy", "eth0").unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.2/24");
    assert_eq!(got[0].gateway, Some(ip("10.1.2.1")));
    assert_eq!(got[1].address.to_string(), "2001:db8:1::2/64");
    assert_eq!(got[1].gateway, Some(ip("2001:db8:1::1")));
    assert_eq!(s.last.get(&1), Some(&ip("2001:db8:1::2")));
}

#[test]
fn malformed_entries_block_their_address_without_failing() {
    let set = set_of(&["10.1.2.0/29"]);
    let mut s = MemStore::with(&[("10.1.2.2", ""), ("10.1.2.3", "\u{fffd}garbage\r\n\r\n")]);
    s.files.insert(ip("10.1.2.4"), vec![0xff, 0x00, 0xfe]);
    assert_eq!(get(&mut s, &set, "a").unwrap(), "10.1.2.5/29");
    assert_eq!(get(&mut s, &set, "b").unwrap(), "10.1.2.6/29");
    assert!(get(&mut s, &set, "c").is_err());
}

#[test]
fn exhaustion_check_ignores_gateways_and_sees_free_addresses() {
    let set = set_of(&["10.1.2.0/30"]);
    let mut s = MemStore::default();
    assert!(!is_exhausted(&s, &set, 0).unwrap());
    get(&mut s, &set, "a").unwrap();
    assert!(is_exhausted(&s, &set, 0).unwrap());
}
