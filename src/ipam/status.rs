//! What `vnet ipam status` reports: pool usage per range set and range, every reservation,
//! and findings. [`analyze`] is pure over a directory [`Scan`]; [`status`] reads one.
use super::dir::Dir;
use super::format::{self, Format};
use super::index::{audit, owner_key, IndexState};
use super::range::{to_u128, Range};
use super::range_set::RangeSet;
use super::scan::{self, Scan};
use super::store::Owner;
use super::{disk, stamp, IpamError};
use crate::files::Open;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Usage of one range.
#[derive(Debug, Clone)]
pub struct RangeUsage {
    pub range: Range,
    /// Addresses the allocator can hand out: start..=end without the gateway.
    pub size: u128,
    pub reserved: u128,
}

/// Usage of one range set (one address per ADD comes from each set).
#[derive(Debug, Clone)]
pub struct SetUsage {
    pub index: usize,
    pub ranges: Vec<RangeUsage>,
    /// `last_reserved_ip.<index>` as written, if present.
    pub last_reserved: Option<String>,
}

impl SetUsage {
    pub fn size(&self) -> u128 {
        self.ranges
            .iter()
            .map(|r| r.size)
            .fold(0, u128::saturating_add)
    }
    pub fn reserved(&self) -> u128 {
        self.ranges.iter().map(|r| r.reserved).sum()
    }
}

/// Reserved out of size, in percent.
pub fn percent(reserved: u128, size: u128) -> f64 {
    if size == 0 {
        return 100.0;
    }
    reserved as f64 * 100.0 / size as f64
}

/// One reservation file.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub ip: IpAddr,
    pub path: PathBuf,
    /// As the reference reads the file; `None` where it cannot tell.
    pub container_id: Option<String>,
    pub ifname: Option<String>,
    pub format: Format,
    pub modified: Option<SystemTime>,
    /// The range set the address belongs to (with a config).
    pub set: Option<usize>,
}

/// Something an operator should look at.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Malformed {
        ip: IpAddr,
        path: PathBuf,
        problem: String,
    },
    OutsideRanges {
        ip: IpAddr,
        path: PathBuf,
    },
    GatewayReserved {
        ip: IpAddr,
        path: PathBuf,
    },
    /// One (container ID, ifname) holding several addresses of one range set (or, without
    /// a config, of one address family).
    Duplicate {
        id: String,
        ifname: Option<String>,
        scope: String,
        ips: Vec<IpAddr>,
    },
    PoolExhausted {
        set: usize,
    },
    PoolNearlyExhausted {
        set: usize,
        used_percent: f64,
    },
    StaleTempFile {
        path: PathBuf,
    },
    StrayFile {
        path: PathBuf,
    },
    IndexMismatch,
}

/// The status of one network directory.
#[derive(Debug, Clone)]
pub struct NetworkStatus {
    pub network: String,
    pub dir: PathBuf,
    pub exists: bool,
    /// Whether the snapshot was taken under the store's lock (not when the lock file is
    /// missing or unreadable).
    pub locked: bool,
    /// `None` without a config: ranges are unknown.
    pub sets: Option<Vec<SetUsage>>,
    pub reservations: Vec<Reservation>,
    pub findings: Vec<Finding>,
    pub index: IndexState,
}

fn range_size(r: &Range) -> u128 {
    let (start, end) = (to_u128(r.start()), to_u128(r.end()));
    let all = end.saturating_sub(start).saturating_add(1);
    all - u128::from(r.contains(r.gateway()))
}

/// Reads `<data_dir>/<network>` under its lock (without creating anything) and analyses it.
pub fn status(
    data_dir: &Path,
    network: &str,
    sets: Option<&[RangeSet]>,
    warn_percent: f64,
) -> Result<NetworkStatus, IpamError> {
    super::check_component("network name", network)?;
    let dir = data_dir.join(network);
    let exists = dir.is_dir();
    let mut report = NetworkStatus {
        network: network.to_string(),
        dir: dir.clone(),
        exists,
        locked: false,
        sets: None,
        reservations: Vec::new(),
        findings: Vec::new(),
        index: IndexState::Absent,
    };
    let found = if exists {
        let d = Dir::open(&dir).map_err(|e| IpamError::io("open", &dir, e))?;
        // Without the lock a file the reference is just writing would look empty.
        let lock = disk::open_lock(&d, Open::Read).ok().flatten();
        report.locked = lock.is_some();
        let found = scan::scan(&d, scan::Times::Read)?;
        let entries: Vec<(u64, IpAddr)> = found
            .reservations
            .iter()
            .filter_map(|f| owner_key(&f.owner()).map(|k| (k, f.ip)))
            .collect();
        report.index = stamp::of(&d.fd, stamp::boot_id())
            .map_or(IndexState::Stale, |now| audit(&d, &now, &entries));
        found
    } else {
        Scan::default()
    };
    analyze(&mut report, &found, sets, warn_percent);
    Ok(report)
}

/// Fills usage, reservations and findings from a scan.
pub(crate) fn analyze(
    report: &mut NetworkStatus,
    found: &Scan,
    sets: Option<&[RangeSet]>,
    warn_percent: f64,
) {
    let mut findings = Vec::new();
    let mut usage = sets.map(|sets| empty_usage(sets, found));
    for f in &found.reservations {
        let format = match &f.content {
            Some(c) => format::check(c),
            None => Format::Malformed("not a readable regular file".into()),
        };
        if let Format::Malformed(problem) = &format {
            findings.push(Finding::Malformed {
                ip: f.ip,
                path: f.path.clone(),
                problem: problem.clone(),
            });
        }
        let set = usage
            .as_mut()
            .and_then(|u| count_in_ranges(u, f, &mut findings));
        let (container_id, ifname) = match f.owner() {
            Owner::Attachment { id, ifname } => (Some(id), Some(ifname)),
            Owner::Legacy { id } => (Some(id), None),
            Owner::Unknown => (None, None),
        };
        report.reservations.push(Reservation {
            ip: f.ip,
            path: f.path.clone(),
            container_id,
            ifname,
            format,
            modified: f.modified,
            set,
        });
    }
    findings.extend(duplicates(&report.reservations, usage.is_some()));
    for set in usage.iter().flatten() {
        let used = percent(set.reserved(), set.size());
        if set.reserved() >= set.size() {
            findings.push(Finding::PoolExhausted { set: set.index });
        } else if used >= warn_percent {
            findings.push(Finding::PoolNearlyExhausted {
                set: set.index,
                used_percent: used,
            });
        }
    }
    for (path, _) in &found.temps {
        findings.push(Finding::StaleTempFile { path: path.clone() });
    }
    for path in &found.strays {
        findings.push(Finding::StrayFile { path: path.clone() });
    }
    if report.index == IndexState::Mismatch {
        findings.push(Finding::IndexMismatch);
    }
    report.sets = usage;
    report.findings = findings;
}

/// Every range of `sets` with nothing counted yet, and the round-robin hints.
fn empty_usage(sets: &[RangeSet], found: &Scan) -> Vec<SetUsage> {
    sets.iter()
        .enumerate()
        .map(|(index, set)| SetUsage {
            index,
            ranges: set
                .iter()
                .map(|r| RangeUsage {
                    range: r.clone(),
                    size: range_size(r),
                    reserved: 0,
                })
                .collect(),
            last_reserved: found
                .hints
                .iter()
                .find(|(s, _)| *s == index)
                .map(|(_, h)| h.clone()),
        })
        .collect()
}

/// Counts `f` in its range; returns its set, or records why it is in none.
fn count_in_ranges(
    usage: &mut [SetUsage],
    f: &scan::Found,
    findings: &mut Vec<Finding>,
) -> Option<usize> {
    for set in usage.iter_mut() {
        for r in set.ranges.iter_mut() {
            if r.range.gateway() == f.ip && r.range.subnet().contains(&f.ip) {
                findings.push(Finding::GatewayReserved {
                    ip: f.ip,
                    path: f.path.clone(),
                });
                return Some(set.index);
            }
            if r.range.contains(f.ip) {
                r.reserved += 1;
                return Some(set.index);
            }
        }
    }
    findings.push(Finding::OutsideRanges {
        ip: f.ip,
        path: f.path.clone(),
    });
    None
}

/// Owners with more than one address in one range set (or family, without ranges).
fn duplicates(reservations: &[Reservation], with_sets: bool) -> Vec<Finding> {
    let mut groups: BTreeMap<(String, Option<String>, String), Vec<IpAddr>> = BTreeMap::new();
    for r in reservations {
        let (Some(id), false) = (&r.container_id, matches!(r.format, Format::Malformed(_))) else {
            continue;
        };
        let scope = match (with_sets, r.set) {
            (true, Some(s)) => format!("range set {s}"),
            (true, None) => continue,
            (false, _) if r.ip.is_ipv6() => "IPv6".to_string(),
            (false, _) => "IPv4".to_string(),
        };
        groups
            .entry((id.clone(), r.ifname.clone(), scope))
            .or_default()
            .push(r.ip);
    }
    groups
        .into_iter()
        .filter(|(_, ips)| ips.len() > 1)
        .map(|((id, ifname, scope), ips)| Finding::Duplicate {
            id,
            ifname,
            scope,
            ips,
        })
        .collect()
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
