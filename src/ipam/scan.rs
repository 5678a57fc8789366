//! Reading a whole network directory: every reservation with its content, and what else
//! lies there. For index rebuilds, GC, release by container and `vnet ipam status`; ADD,
//! DEL and CHECK do not scan while the index is trusted.
use super::dir::Dir;
use super::index::INDEX_FILE;
use super::store::Owner;
use super::IpamError;
use crate::files::{self, cap};
use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

/// vnet writes a reservation's content here first, then links it to the address name.
pub(crate) const TMP_PREFIX: &str = ".vnet-tmp.";
pub(crate) const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";

/// One file (or other entry) named by an address.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) ip: IpAddr,
    pub(crate) path: PathBuf,
    /// `None` when it is not a regular file of a reservation's size (a symlink, a FIFO,
    /// a directory, a huge file): it blocks its address, and no one owns it.
    pub(crate) content: Option<Vec<u8>>,
    pub(crate) modified: Option<SystemTime>,
}

impl Found {
    pub(crate) fn owner(&self) -> Owner {
        self.content.as_deref().map_or(Owner::Unknown, Owner::parse)
    }
}

/// Everything in one network directory.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Sorted by address.
    pub(crate) reservations: Vec<Found>,
    /// vnet temp files and the PID in their name.
    pub(crate) temps: Vec<(PathBuf, Option<i32>)>,
    /// `last_reserved_ip.<n>` hints by range set, as written.
    pub(crate) hints: Vec<(usize, String)>,
    /// Names that are neither reservations nor bookkeeping.
    pub(crate) strays: Vec<PathBuf>,
}

/// The address an entry reserves, if its name is an address in canonical form.
/// Everything else (`lock`, `last_reserved_ip.*`, strays) is not a reservation.
pub(crate) fn reserved_ip(name: &OsStr) -> Option<IpAddr> {
    let name = name.to_str()?;
    let ip: IpAddr = name.parse().ok()?;
    // A v4-mapped IPv6 name is never written: the reference stores those as IPv4.
    (ip.to_string() == name && ip.to_canonical() == ip).then_some(ip)
}

/// Whether a scan also reads each entry's modification time (one more stat a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Times {
    Read,
    Skip,
}

/// Reads the directory, with modification times when `times` says so.
/// An entry that is not an acceptable file is kept without content; a failure to read
/// one (out of descriptors, I/O error) fails the scan, so that no caller takes "could not
/// read" for "not this container's".
pub(crate) fn scan(dir: &Dir, times: Times) -> Result<Scan, IpamError> {
    let listing = std::fs::read_dir(&dir.path).map_err(|e| IpamError::io("read", &dir.path, e))?;
    let mut out = Scan::default();
    for entry in listing {
        let entry = entry.map_err(|e| IpamError::io("read", &dir.path, e))?;
        let name = entry.file_name();
        let path = entry.path();
        if let Some(ip) = reserved_ip(&name) {
            let content = match dir.read(&ip.to_string(), cap::RESERVATION) {
                Ok(c) => Some(c),
                Err(e) if files::is_refused(&e) => None,
                // Released while we listed: not a reservation any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(IpamError::io("read", path, e)),
            };
            out.reservations.push(Found {
                ip,
                content,
                modified: (times == Times::Read)
                    .then(|| entry.metadata().and_then(|m| m.modified()).ok())
                    .flatten(),
                path,
            });
            continue;
        }
        let text = name.to_string_lossy();
        if let Some(pid) = text.strip_prefix(TMP_PREFIX) {
            out.temps.push((path, pid.parse().ok()));
        } else if let Some(set) = text.strip_prefix(LAST_RESERVED_PREFIX) {
            match set.parse() {
                Ok(set) => out.hints.push((set, read_hint(dir, &text))),
                Err(_) => out.strays.push(path),
            }
        } else if text != "lock" && text != INDEX_FILE {
            out.strays.push(path);
        }
    }
    out.reservations.sort_by_key(|f| f.ip);
    out.hints.sort();
    out.strays.sort();
    Ok(out)
}

/// A round-robin hint as written; empty when it is not a small regular file.
pub(crate) fn read_hint(dir: &Dir, name: &str) -> String {
    dir.read(name, cap::HINT)
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::test_util::TempDir;

    #[test]
    fn only_canonical_ip_names_are_reservations() {
        assert!(reserved_ip(OsStr::new("10.1.2.2")).is_some());
        assert!(reserved_ip(OsStr::new("2001:db8:1::2")).is_some());
        for other in [
            "lock",
            "last_reserved_ip.0",
            "2001:DB8::2",
            "2001:db8:0::2",
            "10.1.2.2.tmp",
            "::ffff:10.1.2.2",
        ] {
            assert!(reserved_ip(OsStr::new(other)).is_none(), "{other}");
        }
    }

    #[test]
    fn sorts_everything_into_its_place() {
        let tmp = TempDir::new("scan");
        let d = tmp.path();
        for (name, content) in [
            ("10.1.2.3", "b\r\neth0"),
            ("10.1.2.2", "a\r\neth0"),
            ("lock", ""),
            ("last_reserved_ip.0", "10.1.2.3"),
            (".vnet-index", "x"),
            (".vnet-tmp.123", "c\r\neth0"),
            ("notes.txt", ""),
        ] {
            std::fs::write(d.join(name), content).unwrap();
        }
        std::fs::create_dir(d.join("10.1.2.9")).unwrap();
        let s = scan(&Dir::open(d).unwrap(), Times::Read).unwrap();
        let ips: Vec<String> = s.reservations.iter().map(|f| f.ip.to_string()).collect();
        assert_eq!(ips, ["10.1.2.2", "10.1.2.3", "10.1.2.9"]);
        assert_eq!(s.reservations[0].owner(), Owner::parse(b"a\r\neth0"));
        assert!(s.reservations[0].modified.is_some());
        assert_eq!(
            s.reservations[2].content, None,
            "a directory has no content"
        );
        assert_eq!(s.temps, [(d.join(".vnet-tmp.123"), Some(123))]);
        assert_eq!(s.hints, [(0, "10.1.2.3".to_string())]);
        assert_eq!(s.strays, [d.join("notes.txt")]);
    }
}
