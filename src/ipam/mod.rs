//! host-local compatible IPAM: the reference plugin's config, allocation order and on-disk
//! layout, so vnet and `/usr/lib/cni/host-local` can share a data directory.
//!
//! Pure parts: `range`, `range_set`, `round_robin`, `config`, `allocator`, `reservations`
//! (the last two over the `store::Store` trait, so they are tested against memory),
//! `format` and the analysis in `status`. I/O lives in `disk` (the reference layout, flock,
//! crash-safe writes), `index` and `stamp` (the derived owner index and when to trust it),
//! `scan` (reading a whole directory), `admin` (operator repairs) and `dns`.
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

mod admin;
mod allocator;
mod config;
mod crash;
mod dir;
mod disk;
mod dns;
mod error;
mod format;
mod index;
mod json;
mod names;
mod preview;
mod range;
mod range_set;
mod reservations;
mod round_robin;
mod scan;
mod stamp;
mod status;
mod store;

#[cfg(test)]
mod allocator_tests;
#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod config_tests;
#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod mem_store;
#[cfg(test)]
pub(crate) mod test_util;

pub use admin::{release_address, release_container, sweep, Held, Sweep};
pub use dns::{read_dns, Dns};
pub use error::IpamError;
pub use format::Format;
pub use index::IndexState;
pub use preview::{preview_add, preview_del, AddPreview};
pub use range::{Range, RangeSpec};
pub use range_set::RangeSet;
pub use status::{percent, status, Finding, NetworkStatus, RangeUsage, Reservation, SetUsage};
pub use store::Owner;

use disk::DiskStore;
pub(crate) use names::check_component;

/// The parsed IPAM configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConf {
    /// One address is allocated per set, in this order.
    pub range_sets: Vec<RangeSet>,
    pub routes: Vec<Route>,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    /// Requested IPs in order: CNI_ARGS `IP`, `args.cni.ips`, `runtimeConfig.ips`.
    pub requested: Vec<IpAddr>,
}

/// A route from `ipam.routes` is the result's own type, returned verbatim; without `gw`
/// the plugin uses the gateway.
pub use crate::cni::result::Route;

/// One allocated address: the IP with its subnet's prefix length, and the range's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

fn check_names(network: &str, id: &str, ifname: &str) -> Result<(), IpamError> {
    check_component("network name", network)?;
    check_component("container ID", id)?;
    check_component("interface name", ifname)
}

/// One address per range set, in range-set order; all or nothing. The lock is held across
/// all range sets.
pub fn allocate(
    conf: &IpamConf,
    network: &str,
    id: &str,
    ifname: &str,
) -> Result<Vec<Allocation>, IpamError> {
    check_names(network, id, ifname)?;
    let mut store = DiskStore::open_to_reserve(&conf.data_dir, network, id, ifname)?;
    allocator::allocate_all(&mut store, &conf.range_sets, &conf.requested, id, ifname)
}

/// Releases every reservation of (id, ifname), or else the legacy ID-only ones of `id`.
/// An unknown ID is not an error.
pub fn release(
    data_dir: &Path,
    network: &str,
    id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpamError> {
    check_names(network, id, ifname)?;
    let mut store = DiskStore::open(data_dir, network)?;
    reservations::release(&mut store, id, ifname)
}

/// Addresses held by (id, ifname), or else by legacy ID-only files of `id` (for CHECK).
pub fn find(
    data_dir: &Path,
    network: &str,
    id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpamError> {
    check_names(network, id, ifname)?;
    let store = DiskStore::open(data_dir, network)?;
    reservations::find(&store, id, ifname)
}

/// CNI GC: releases every reservation whose (id, ifname) is not in `valid`. Legacy ID-only
/// files survive if their ID appears with any ifname; files whose owner cannot be read are
/// kept. `lock` and `last_reserved_ip.*` are never touched.
pub fn gc(
    data_dir: &Path,
    network: &str,
    valid: &[(String, String)],
) -> Result<Vec<IpAddr>, IpamError> {
    check_component("network name", network)?;
    let mut store = DiskStore::open(data_dir, network)?;
    reservations::gc(&mut store, valid)
}

/// Indices of the range sets with no free address (for CNI STATUS).
pub fn exhausted_sets(conf: &IpamConf, network: &str) -> Result<Vec<usize>, IpamError> {
    check_component("network name", network)?;
    let store = DiskStore::open(&conf.data_dir, network)?;
    let mut out = Vec::new();
    for (idx, set) in conf.range_sets.iter().enumerate() {
        if allocator::is_exhausted(&store, set, idx)? {
            out.push(idx);
        }
    }
    Ok(out)
}
