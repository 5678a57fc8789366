//! The reference host-local layout on disk: `<dataDir>/<network>/<ip>` files holding
//! `<id>\r\n<ifname>`, `last_reserved_ip.<set>` hints and a `lock` file taken with flock.
use super::store::{Owner, Store};
use super::IpamError;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";

/// One network's directory, locked for as long as the value lives.
pub(crate) struct DiskStore {
    dir: PathBuf,
    _lock: Flock<File>,
}

impl DiskStore {
    /// Creates the directory (0755) and the `lock` file (0750) as the reference does, then
    /// blocks until it holds an exclusive flock on it. Callers validate `network` first.
    pub(crate) fn open(data_dir: &Path, network: &str) -> Result<DiskStore, IpamError> {
        let dir = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| IpamError::io("create directory", &dir, e))?;
        let lock_path = dir.join("lock");
        // Read-only with O_CREAT, like the reference; std refuses create(true) without write.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CREAT)
            .mode(0o750)
            .open(&lock_path)
            .map_err(|e| IpamError::io("open lock file", &lock_path, e))?;
        let lock = lock_exclusive(file)
            .map_err(|e| IpamError::io("lock", &lock_path, std::io::Error::from(e)))?;
        Ok(DiskStore { dir, _lock: lock })
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn write_last_reserved(&self, ip: IpAddr, set: usize) -> Result<(), IpamError> {
        let path = self.dir.join(format!("{LAST_RESERVED_PREFIX}{set}"));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(ip.to_string().as_bytes()))
            .map_err(|e| IpamError::io("write", &path, e))
    }
}

/// A signal may interrupt the blocking flock; retry then.
fn lock_exclusive(mut file: File) -> Result<Flock<File>, Errno> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(errno),
        }
    }
}

/// The address a directory entry reserves, if its name is an address in canonical form.
/// Everything else (`lock`, `last_reserved_ip.*`, strays) is not a reservation.
fn reserved_ip(name: &std::ffi::OsStr) -> Option<IpAddr> {
    let name = name.to_str()?;
    let ip: IpAddr = name.parse().ok()?;
    // A v4-mapped IPv6 name is never written: the reference stores those as IPv4.
    (ip.to_string() == name && ip.to_canonical() == ip).then_some(ip)
}

impl Store for DiskStore {
    fn reserve(
        &mut self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, IpamError> {
        let path = self.ip_path(ip);
        // The exclusive create is the reservation; an existing file of any content blocks it.
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(IpamError::io("create reservation", &path, e)),
        };
        let content = format!("{}\r\n{ifname}", id.trim());
        let written = file
            .write_all(content.as_bytes())
            .map_err(|e| IpamError::io("write reservation", &path, e))
            .and_then(|()| self.write_last_reserved(ip, set));
        if let Err(e) = written {
            // Unlike the reference, do not leave a half-made reservation behind.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(true)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        let path = self.ip_path(ip);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(IpamError::io("remove reservation", &path, e)),
        }
    }

    fn is_reserved(&self, ip: IpAddr) -> Result<bool, IpamError> {
        let path = self.ip_path(ip);
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(IpamError::io("stat", &path, e)),
        }
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        let path = self.dir.join(format!("{LAST_RESERVED_PREFIX}{set}"));
        let text = std::fs::read_to_string(path).ok()?;
        text.trim()
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    }

    fn entries(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        let listing =
            std::fs::read_dir(&self.dir).map_err(|e| IpamError::io("read", &self.dir, e))?;
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| IpamError::io("read", &self.dir, e))?;
            let Some(ip) = reserved_ip(&entry.file_name()) else {
                continue;
            };
            // Like the reference, an entry that cannot be read is skipped rather than failing
            // the whole walk; it still blocks its address because the name exists.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if let Ok(content) = std::fs::read(entry.path()) {
                out.push((ip, Owner::parse(&content)));
            }
        }
        out.sort_by_key(|(ip, _)| *ip);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::reserved_ip;
    use std::ffi::OsStr;

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
}
