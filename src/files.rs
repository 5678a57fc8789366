//! Opening files that vnet, running as root, did not make itself: every read and write of
//! the IPAM store, the config files a config names (`resolvConf`, `vnet.nodesFile`) and
//! the CLI's inputs go through here.
//!
//! What can be waiting at such a path (docs/reliability.md, "Trust model"):
//! - a **symlink** planted in the store, so that a write as root lands on another file:
//!   store files are opened relative to the directory's descriptor with `O_NOFOLLOW`;
//! - a **FIFO** (or a device), on which a plain `open` blocks forever, holding the store's
//!   lock: every open is `O_NONBLOCK` (which returns at once on a FIFO) and the file type
//!   is checked on the descriptor before a byte is read or written;
//! - a **huge file** (`/dev/zero` behind a symlink, a sparse file of gigabytes named like
//!   an address): every read has a cap fitting its format, and more is an error.
//!
//! Nothing here knows about CNI; callers decide what an error means for them.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, Mode, SFlag};

/// What a refused file looks like to callers: [`io::ErrorKind::InvalidData`] with the
/// reason, so it can be told apart from the kernel's own errors (see [`is_refused`]).
fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Whether `e` means "the entry is there but is not an acceptable file" (a symlink in the
/// store, a FIFO, a device, a directory, too large), as opposed to a failure to read it
/// (out of descriptors or memory, I/O error, permission).
pub fn is_refused(e: &io::Error) -> bool {
    // ELOOP: O_NOFOLLOW met a symlink. EISDIR: a directory opened for writing. ENXIO: a
    // FIFO without a reader opened for writing with O_NONBLOCK.
    e.kind() == io::ErrorKind::InvalidData
        || matches!(
            e.raw_os_error(),
            Some(libc::ELOOP | libc::EISDIR | libc::ENXIO)
        )
}

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Read,
    /// Read, creating it (with the given mode) when missing; the lock file.
    ReadCreate(u32),
    /// Read and write an existing file.
    ReadWrite,
    /// Write, creating it when missing, without truncating.
    WriteCreate(u32),
    /// Read and write a new file; fails if the name exists.
    CreateNew(u32),
}

impl Open {
    fn flags(self) -> (OFlag, Mode) {
        match self {
            Open::Read => (OFlag::O_RDONLY, Mode::empty()),
            Open::ReadCreate(m) => (OFlag::O_RDONLY | OFlag::O_CREAT, mode(m)),
            Open::ReadWrite => (OFlag::O_RDWR, Mode::empty()),
            Open::WriteCreate(m) => (OFlag::O_WRONLY | OFlag::O_CREAT, mode(m)),
            Open::CreateNew(m) => (OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, mode(m)),
        }
    }
}

fn mode(m: u32) -> Mode {
    Mode::from_bits_truncate(m as libc::mode_t)
}

/// `name` in the directory `dir`, never through a symlink, never blocking, and only if it
/// is a regular file. `name` must be a single path component (callers build it from an
/// address or a fixed name).
pub fn open_in(dir: &File, name: &str, how: Open) -> io::Result<File> {
    debug_assert!(!name.contains('/'));
    let (flags, mode) = how.flags();
    let fd = openat(
        dir.as_fd(),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        mode,
    )?;
    regular(File::from(fd), name)
}

/// A path named by a config or on a command line: symlinks are followed (such files are
/// chosen by whoever wrote the config, and `/etc/resolv.conf` is often a symlink), but it
/// must end at a regular file, and the open never blocks.
pub fn open_path(path: &Path) -> io::Result<File> {
    let fd = openat(
        AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    regular(File::from(fd), &path.display().to_string())
}

/// The directory at `path`, not through a symlink at its last component.
pub fn open_dir(path: &Path) -> io::Result<File> {
    let fd = openat(
        AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

fn regular(file: File, name: &str) -> io::Result<File> {
    let st = fstat(file.as_fd())?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFREG {
        return Err(refused(format!("{name} is not a regular file")));
    }
    Ok(file)
}

/// All of `file`, if it holds at most `cap` bytes. Reads at most `cap + 1` bytes whatever
/// the file claims (a file in /proc or a growing one may not say its size).
pub fn read_capped(file: File, name: &str, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.take(cap as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > cap {
        return Err(refused(format!("{name} is larger than {cap} bytes")));
    }
    Ok(buf)
}

/// [`open_in`] + [`read_capped`].
pub fn read_in(dir: &File, name: &str, cap: usize) -> io::Result<Vec<u8>> {
    read_capped(open_in(dir, name, Open::Read)?, name, cap)
}

/// [`open_path`] + [`read_capped`].
pub fn read_path(path: &Path, cap: usize) -> io::Result<Vec<u8>> {
    read_capped(open_path(path)?, &path.display().to_string(), cap)
}

/// Caps, by format.
pub mod cap {
    /// A config on stdin or in a file.
    pub const CONFIG: usize = 1 << 20;
    /// A node table (`vnet.nodesFile`): thousands of nodes.
    pub const NODES: usize = 4 << 20;
    /// `resolv.conf`.
    pub const RESOLV_CONF: usize = 64 << 10;
    /// A reservation: a container ID (at most 255 bytes), CRLF and an interface name;
    /// the rest is room for other writers' whitespace.
    pub const RESERVATION: usize = 4 << 10;
    /// `last_reserved_ip.<n>`: one address.
    pub const HINT: usize = 128;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::test_util::TempDir;

    fn dir() -> (TempDir, File) {
        let t = TempDir::new("files");
        let d = open_dir(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn reads_a_regular_file_within_its_cap() {
        let (t, d) = dir();
        std::fs::write(t.path().join("a"), "12345").unwrap();
        assert_eq!(read_in(&d, "a", 5).unwrap(), b"12345");
        let e = read_in(&d, "a", 4).unwrap_err();
        assert!(is_refused(&e), "{e}");
        assert!(e.to_string().contains("larger than 4"), "{e}");
    }

    #[test]
    fn refuses_symlinks_fifos_and_directories_without_blocking() {
        let (t, d) = dir();
        std::fs::write(t.path().join("target"), "secret").unwrap();
        std::os::unix::fs::symlink(t.path().join("target"), t.path().join("link")).unwrap();
        nix::unistd::mkfifo(&t.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::create_dir(t.path().join("sub")).unwrap();
        for name in ["link", "fifo", "sub"] {
            let e = read_in(&d, name, 100).unwrap_err();
            assert!(is_refused(&e), "{name}: {e}");
            let e = open_in(&d, name, Open::WriteCreate(0o600)).unwrap_err();
            assert!(is_refused(&e), "{name}: {e}");
        }
        // The symlink's target was not touched.
        assert_eq!(std::fs::read(t.path().join("target")).unwrap(), b"secret");
        // A config path may be a symlink to a regular file, never a FIFO or a device.
        assert_eq!(read_path(&t.path().join("link"), 100).unwrap(), b"secret");
        assert!(is_refused(
            &read_path(&t.path().join("fifo"), 100).unwrap_err()
        ));
        assert!(is_refused(
            &read_path(Path::new("/dev/zero"), 100).unwrap_err()
        ));
    }

    #[test]
    fn missing_is_not_refused() {
        let (_t, d) = dir();
        let e = read_in(&d, "nothing", 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(!is_refused(&e));
    }
}
