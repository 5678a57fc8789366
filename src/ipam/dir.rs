//! One network's directory, opened once: every file in it is reached relative to this
//! descriptor, never through a symlink, never with a blocking open, and read with a cap
//! (`crate::files`). Whoever can write the directory (root, or more where `dataDir` is
//! shared) could otherwise turn vnet's writes as root against any file on the node.
use crate::files::{self, Open};
use nix::errno::Errno;
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) struct Dir {
    pub(crate) path: PathBuf,
    pub(crate) fd: File,
}

impl Dir {
    /// The directory at `path` (not through a symlink at its last component).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        Ok(Dir {
            path: path.to_path_buf(),
            fd: files::open_dir(path)?,
        })
    }

    /// The path of `name`, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub(crate) fn open_file(&self, name: &str, how: Open) -> io::Result<File> {
        files::open_in(&self.fd, name, how)
    }

    pub(crate) fn read(&self, name: &str, cap: usize) -> io::Result<Vec<u8>> {
        files::read_in(&self.fd, name, cap)
    }

    /// Removes the entry `name` (a file, a symlink itself, a FIFO; not a directory).
    pub(crate) fn unlink(&self, name: &str) -> io::Result<()> {
        unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir).map_err(io::Error::from)
    }

    /// Whether an entry of any kind is named `name` (`false` only when there is none).
    pub(crate) fn has(&self, name: &str) -> io::Result<bool> {
        match nix::sys::stat::fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
