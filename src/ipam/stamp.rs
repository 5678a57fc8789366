//! What the index must agree with: the network directory as vnet last left it.
//!
//! Any create, link or unlink in a directory sets its mtime, but to the kernel's coarse
//! clock: two changes within one tick (1-10 ms) can leave the same mtime. So after its own
//! changes vnet sets the directory's mtime itself, to the precise current time. A later
//! change by anyone else gets a coarse time that differs from it, and the ctime (which no
//! program can set) moves too. The boot ID makes the first operation after a reboot or
//! power loss rebuild, whatever the page cache did or did not write back.
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::SystemTime;

/// Identity and times of the directory, plus the boot it was recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Stamp {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) mtime: (i64, i64),
    pub(crate) ctime: (i64, i64),
    pub(crate) boot: u64,
}

/// A hash of `/proc/sys/kernel/random/boot_id`, or 0 where it cannot be read.
pub(crate) fn boot_id() -> u64 {
    std::fs::read("/proc/sys/kernel/random/boot_id").map_or(0, |b| fnv(&[b.trim_ascii()]))
}

/// The directory's stamp now.
pub(crate) fn of(dir: &File, boot: u64) -> io::Result<Stamp> {
    let m = dir.metadata()?;
    Ok(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
        boot,
    })
}

/// Sets the directory's mtime to the precise current time and returns the new stamp.
/// `None` when the file system did not keep the nanoseconds: there a later change in the
/// same tick could leave the same stamp, so the index must not be trusted.
pub(crate) fn touch(dir: &File, boot: u64) -> io::Result<Option<Stamp>> {
    let now = SystemTime::now();
    dir.set_modified(now)?;
    let stamp = of(dir, boot)?;
    let wanted = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| (d.as_secs() as i64, i64::from(d.subsec_nanos())))
        .map_err(io::Error::other)?;
    Ok((stamp.mtime == wanted).then_some(stamp))
}

/// FNV-1a over `parts`, then the splitmix64 finalizer: stable across builds and versions
/// (std's hashers are not), and well spread in the low bits a power-of-two table uses.
pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h = crate::hash::fnv1a64(parts.iter().flat_map(|p| p.iter().copied()));
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::test_util::TempDir;

    /// Computed independently (Python) from the definition: FNV-1a 64, splitmix64 finalizer.
    const VNET: u64 = 0x97d6_ff4b_f731_de30;

    #[test]
    fn fnv_is_fixed_across_builds() {
        // Changing the hash would silently orphan every existing index entry.
        assert_eq!(fnv(&[b"a"]), fnv(&[b"a"]));
        assert_eq!(fnv(&[b"ab"]), fnv(&[b"a", b"b"]));
        assert_eq!(fnv(&[b"vnet"]), VNET);
        assert_ne!(fnv(&[b"A", b"x"]), fnv(&[b"L", b"x"]));
    }

    #[test]
    fn any_change_to_the_directory_changes_the_stamp() {
        let tmp = TempDir::new("stamp");
        let dir = File::open(tmp.path()).unwrap();
        let sealed = touch(&dir, 7)
            .unwrap()
            .expect("ext4/tmpfs keep nanoseconds");
        assert_eq!(of(&dir, 7).unwrap(), sealed);
        assert_ne!(of(&dir, 8).unwrap(), sealed, "another boot");
        // Created and removed again at once, within one clock tick: same names, new stamp.
        std::fs::write(tmp.path().join("x"), "").unwrap();
        std::fs::remove_file(tmp.path().join("x")).unwrap();
        assert_ne!(of(&dir, 7).unwrap(), sealed);
    }
}
