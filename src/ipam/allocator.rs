//! Picking addresses: one per range set, all or nothing. Pure over a [`Store`].
use super::range::Range;
use super::range_set::RangeSet;
use super::round_robin::Candidates;
use super::store::Store;
use super::{Allocation, IpamError};
use ipnet::IpNet;
use std::net::IpAddr;

/// One address per range set, in order. `requested` IPs are matched to the first set that
/// contains them; any requested IP left over, or any failing set, releases what this call
/// reserved.
pub(crate) fn allocate_all(
    store: &mut impl Store,
    sets: &[RangeSet],
    requested: &[IpAddr],
    id: &str,
    ifname: &str,
) -> Result<Vec<Allocation>, IpamError> {
    let mut pending: Vec<IpAddr> = Vec::new();
    for ip in requested {
        if !pending.contains(ip) {
            pending.push(*ip);
        }
    }
    let mut done: Vec<Allocation> = Vec::new();
    for (idx, set) in sets.iter().enumerate() {
        let want = pending
            .iter()
            .position(|ip| set.contains(*ip))
            .map(|i| pending.remove(i));
        match allocate_one(store, set, idx, want, id, ifname) {
            Ok(a) => done.push(a),
            Err(e) => {
                roll_back(store, &done);
                return Err(e);
            }
        }
    }
    if let Some(first) = pending.first() {
        roll_back(store, &done);
        let list: Vec<String> = pending.iter().map(IpAddr::to_string).collect();
        return Err(IpamError::RequestedUnavailable {
            ip: *first,
            reason: format!("failed to allocate all requested IPs: {}", list.join(" ")),
        });
    }
    Ok(done)
}

/// Best effort, like the reference: the error that caused the roll-back is what matters.
fn roll_back(store: &mut impl Store, done: &[Allocation]) {
    for a in done {
        let _ = store.remove(a.address.addr());
    }
}

/// One address from `set` (index `idx`): the requested one, or the next free in round robin.
pub(crate) fn allocate_one(
    store: &mut impl Store,
    set: &RangeSet,
    idx: usize,
    requested: Option<IpAddr>,
    id: &str,
    ifname: &str,
) -> Result<Allocation, IpamError> {
    if let Some(ip) = requested {
        return reserve_requested(store, set, idx, ip, id, ifname);
    }
    // No idempotent re-ADD: the spec says ADD once (maintainers declined it, plugins #327).
    if let Some(ip) = store
        .held_by(id, ifname)?
        .into_iter()
        .find(|ip| set.contains(*ip))
    {
        return Err(IpamError::Duplicate {
            ip,
            id: id.to_string(),
        });
    }
    let last = store.last_reserved(idx);
    for (ip, range) in Candidates::new(set, last) {
        if store.reserve(ip, id, ifname, idx)? {
            return Ok(allocation(ip, range));
        }
    }
    Err(IpamError::Exhausted {
        set: idx,
        ranges: set.to_string(),
    })
}

fn reserve_requested(
    store: &mut impl Store,
    set: &RangeSet,
    idx: usize,
    ip: IpAddr,
    id: &str,
    ifname: &str,
) -> Result<Allocation, IpamError> {
    let unavailable = |reason: String| IpamError::RequestedUnavailable { ip, reason };
    let Some(range) = set.range_for(ip) else {
        return Err(unavailable(format!(
            "requested IP address {ip} is not in range set {set}"
        )));
    };
    if ip == range.gateway() {
        return Err(unavailable(format!(
            "requested ip {ip} is subnet's gateway"
        )));
    }
    if !store.reserve(ip, id, ifname, idx)? {
        return Err(unavailable(format!(
            "requested IP address {ip} is not available in range set {set}"
        )));
    }
    Ok(allocation(ip, range))
}

fn allocation(ip: IpAddr, range: &Range) -> Allocation {
    // A prefix length taken from the subnet is always valid for the same family.
    let address = IpNet::new(ip, range.subnet().prefix_len()).unwrap_or(range.subnet());
    Allocation {
        address,
        gateway: Some(range.gateway()),
    }
}

/// Whether every candidate address of `set` is taken.
pub(crate) fn is_exhausted(
    store: &impl Store,
    set: &RangeSet,
    idx: usize,
) -> Result<bool, IpamError> {
    // Starting where allocation would start finds a free address after few probes.
    for (ip, _) in Candidates::new(set, store.last_reserved(idx)) {
        if !store.is_reserved(ip)? {
            return Ok(false);
        }
    }
    Ok(true)
}
