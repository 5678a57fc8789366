//! What ADD and DEL would do to the store, computed from a read-only snapshot: no lock
//! taken, no directory created, nothing written. For `vnet explain`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::allocator;
use super::dir::Dir;
use super::scan::{read_hint, reserved_ip, LAST_RESERVED_PREFIX};
use super::store::{Owner, Store};
use super::{Allocation, IpamConf, IpamError};
use crate::files::cap;

/// The store as it is on disk now, held in memory; reservations made while previewing
/// stay in memory.
struct Snapshot {
    entries: BTreeMap<IpAddr, Owner>,
    last: BTreeMap<usize, IpAddr>,
}

impl Snapshot {
    /// A missing directory is an empty store (the first ADD creates it).
    fn read(dir: &Path) -> Snapshot {
        let mut snap = Snapshot {
            entries: BTreeMap::new(),
            last: BTreeMap::new(),
        };
        let (Ok(d), Ok(rd)) = (Dir::open(dir), std::fs::read_dir(dir)) else {
            return snap;
        };
        for entry in rd.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(set) = name.strip_prefix(LAST_RESERVED_PREFIX) {
                if let (Ok(set), Ok(ip)) = (set.parse(), read_hint(&d, name).parse()) {
                    snap.last.insert(set, ip);
                }
            } else if let Some(ip) = reserved_ip(entry.file_name().as_os_str()) {
                // Unreadable or not a reservation: it still blocks its address.
                let content = d.read(name, cap::RESERVATION).unwrap_or_default();
                snap.entries.insert(ip, Owner::parse(&content));
            }
        }
        snap
    }
}

impl Store for Snapshot {
    fn reserve(
        &mut self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, IpamError> {
        if self.entries.contains_key(&ip) {
            return Ok(false);
        }
        let owner = Owner::Attachment {
            id: id.to_string(),
            ifname: ifname.to_string(),
        };
        self.entries.insert(ip, owner);
        self.last.insert(set, ip);
        Ok(true)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        Ok(self.entries.remove(&ip).is_some())
    }

    fn is_reserved(&self, ip: IpAddr) -> Result<bool, IpamError> {
        Ok(self.entries.contains_key(&ip))
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        self.last.get(&set).copied()
    }

    fn entries(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        Ok(self
            .entries
            .iter()
            .map(|(ip, o)| (*ip, o.clone()))
            .collect())
    }
}

/// What an ADD would reserve, and the round-robin hints it starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPreview {
    pub dir: PathBuf,
    pub allocations: Vec<Allocation>,
    /// `last_reserved_ip.<n>` before the ADD, per range set.
    pub last_before: Vec<Option<IpAddr>>,
}

pub fn preview_add(
    conf: &IpamConf,
    network: &str,
    id: &str,
    ifname: &str,
) -> Result<AddPreview, IpamError> {
    let dir = conf.data_dir.join(network);
    let mut snap = Snapshot::read(&dir);
    let last_before = (0..conf.range_sets.len())
        .map(|i| snap.last_reserved(i))
        .collect();
    let allocations =
        allocator::allocate_all(&mut snap, &conf.range_sets, &conf.requested, id, ifname)?;
    Ok(AddPreview {
        dir,
        allocations,
        last_before,
    })
}

/// The reservation files a DEL of (id, ifname) would remove.
pub fn preview_del(data_dir: &Path, network: &str, id: &str, ifname: &str) -> Vec<IpAddr> {
    let snap = Snapshot::read(&data_dir.join(network));
    let exact = snap.held_by(id, ifname).unwrap_or_default();
    if !exact.is_empty() {
        return exact;
    }
    snap.held_by_legacy(id).unwrap_or_default()
}
