//! Operator repairs: releasing by address or container, and garbage collection against a
//! source of truth chosen by the caller. Each runs under the store's lock, like the plugin.
use super::disk::{remove_stale_temps, DiskStore};
use super::scan;
use super::store::{Owner, Store};
use super::{check_component, IpamError};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One reservation as the repair commands show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub ip: IpAddr,
    pub owner: Owner,
    pub modified: Option<SystemTime>,
}

/// The outcome of a GC pass.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// Released (or, in a dry run, to be released).
    pub stale: Vec<Held>,
    /// Reservations kept because the source of truth says they are in use (or too young).
    pub kept: usize,
    /// Files whose owner cannot be read: never released by GC (release them by address
    /// after checking).
    pub unknown: Vec<Held>,
}

/// Opens an existing network directory; unlike the plugin, never creates one.
fn open_existing(data_dir: &Path, network: &str) -> Result<DiskStore, IpamError> {
    check_component("network name", network)?;
    let dir: PathBuf = data_dir.join(network);
    if !dir.is_dir() {
        return Err(IpamError::io(
            "find network directory",
            dir,
            std::io::ErrorKind::NotFound.into(),
        ));
    }
    DiskStore::open(data_dir, network)
}

/// The reservations, plus vnet temp files (normally gone with the next index rebuild;
/// left when their PID was in use again by then).
type Temps = Vec<(PathBuf, Option<i32>)>;

fn held(store: &DiskStore) -> Result<(Vec<Held>, Temps), IpamError> {
    let found = scan::scan(store.dir(), scan::Times::Read)?;
    let held = found
        .reservations
        .into_iter()
        .map(|f| Held {
            ip: f.ip,
            owner: f.owner(),
            modified: f.modified,
        })
        .collect();
    Ok((held, found.temps))
}

/// Finds (and with `apply`, releases) every reservation `is_stale` calls stale. Files of
/// unknown owner are listed apart and kept. The lock is held from reading to releasing.
pub fn sweep(
    data_dir: &Path,
    network: &str,
    apply: bool,
    is_stale: impl Fn(&Held) -> bool,
) -> Result<Sweep, IpamError> {
    let mut store = open_existing(data_dir, network)?;
    let mut out = Sweep::default();
    let (all, temps) = held(&store)?;
    for h in all {
        if h.owner == Owner::Unknown {
            out.unknown.push(h);
        } else if is_stale(&h) {
            out.stale.push(h);
        } else {
            out.kept += 1;
        }
    }
    if apply {
        remove_stale_temps(&temps);
        let mut first_err = None;
        out.stale.retain(|h| match store.remove(h.ip) {
            Ok(removed) => removed,
            Err(e) => {
                first_err.get_or_insert(e);
                false
            }
        });
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    Ok(out)
}

/// Releases one address whatever holds it; `None` if it was not reserved.
pub fn release_address(
    data_dir: &Path,
    network: &str,
    ip: IpAddr,
) -> Result<Option<Held>, IpamError> {
    let mut store = open_existing(data_dir, network)?;
    let (all, temps) = held(&store)?;
    remove_stale_temps(&temps);
    let Some(h) = all.into_iter().find(|h| h.ip == ip) else {
        return Ok(None);
    };
    Ok(store.remove(ip)?.then_some(h))
}

/// Releases what a container holds: with `ifname`, as DEL does (that attachment, else the
/// container's legacy ID-only files); without, every attachment of the container.
pub fn release_container(
    data_dir: &Path,
    network: &str,
    id: &str,
    ifname: Option<&str>,
) -> Result<Vec<Held>, IpamError> {
    let mut store = open_existing(data_dir, network)?;
    let (all, temps) = held(&store)?;
    remove_stale_temps(&temps);
    let mine = |h: &Held| match (&h.owner, ifname) {
        (Owner::Attachment { .. }, Some(ifn)) => h.owner.is(id, ifn),
        (Owner::Attachment { id: owner, .. }, None) => owner == id.trim(),
        (Owner::Legacy { .. }, _) => h.owner.is_legacy(id),
        (Owner::Unknown, _) => false,
    };
    let mut chosen: Vec<Held> = all.into_iter().filter(mine).collect();
    // As DEL: legacy files only count when the exact attachment holds nothing.
    if ifname.is_some()
        && chosen
            .iter()
            .any(|h| !matches!(h.owner, Owner::Legacy { .. }))
    {
        chosen.retain(|h| !matches!(h.owner, Owner::Legacy { .. }));
    }
    let mut out = Vec::new();
    for h in chosen {
        if store.remove(h.ip)? {
            out.push(h);
        }
    }
    Ok(out)
}
