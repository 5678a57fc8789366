//! One ADD or DEL at a time per attachment (network, container ID, ifname).
//!
//! The spec forbids a runtime to run ADD and DEL of one attachment at once, yet runtimes
//! do after a timeout: an ADD still running when its DEL arrives. Interleaved, the DEL
//! deletes a link that does not exist yet and releases the reservation, then the ADD
//! creates the link with the address: a pod holding an address the store calls free,
//! which the next pod then gets too. Holding an flock on a file of this attachment for
//! the whole call makes one of them run entirely before the other.
//!
//! The files live in `/run/vnet/locks/<network>/` (tmpfs: gone at reboot, like every
//! namespace they guard; both names are hashes). ADD leaves its file; DEL removes it
//! while still holding the lock; GC removes those of attachments no longer valid (a pod
//! whose DEL never came). A waiter that then gets the lock holds a file no longer in the
//! directory, so each lock taken is checked to still be the file of that name, and taken
//! again otherwise.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg};
use nix::sys::stat::{fstat, fstatat};

use crate::cni::{code, CniError};
use crate::files::{self, Open};

use crate::plan::fnv1a;

const LOCK_DIR: &str = "/run/vnet/locks";

/// Held for the rest of the call; dropping it unlocks.
pub struct AttachmentLock {
    dir: File,
    name: String,
    _lock: Flock<File>,
}

impl AttachmentLock {
    pub fn take(network: &str, id: &str, ifname: &str) -> Result<AttachmentLock, CniError> {
        Self::take_in(Path::new(LOCK_DIR), network, id, ifname).map_err(|e| {
            let c = match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR | libc::EBUSY) => code::TRY_AGAIN,
                _ => code::IO,
            };
            CniError::new(c, format!("lock the attachment in {LOCK_DIR}: {e}"))
        })
    }

    fn take_in(root: &Path, network: &str, id: &str, ifname: &str) -> io::Result<AttachmentLock> {
        let dir = lock_dir(&network_dir(root, network))?;
        let name = file_name(network, id, ifname);
        loop {
            let file = files::open_in(&dir, &name, Open::ReadCreate(0o600))?;
            let lock = lock_exclusive(file)?;
            if still_named(&dir, &name, &lock)? {
                return Ok(AttachmentLock {
                    dir,
                    name,
                    _lock: lock,
                });
            }
        }
    }

    /// DEL: the attachment is gone, so is its lock file (removed while still held).
    pub fn remove(self) {
        let _ = nix::unistd::unlinkat(
            &self.dir,
            self.name.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
}

/// GC: removes the lock files of `network`'s attachments not in `valid`; a file some
/// call holds right now is left to it. Returns how many it removed.
pub fn gc(network: &str, valid: &[(String, String)]) -> Result<usize, CniError> {
    gc_in(Path::new(LOCK_DIR), network, valid).map_err(|e| {
        CniError::new(
            code::IO,
            format!("remove stale attachment locks in {LOCK_DIR}: {e}"),
        )
    })
}

fn gc_in(root: &Path, network: &str, valid: &[(String, String)]) -> io::Result<usize> {
    let keep: Vec<String> = valid
        .iter()
        .map(|(id, ifname)| file_name(network, id, ifname))
        .collect();
    // Files an earlier vnet kept flat in the root, whatever their network: none is valid
    // any more (this vnet locks elsewhere), so each goes unless someone holds it.
    Ok(sweep(root, &[])? + sweep(&network_dir(root, network), &keep)?)
}

/// Removes the lock files in `path` not named in `keep` and not held.
fn sweep(path: &Path, keep: &[String]) -> io::Result<usize> {
    let dir = match files::open_dir(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(path)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.len() != 16 || !name.bytes().all(|b| b.is_ascii_hexdigit()) || keep.contains(&name)
        {
            continue;
        }
        // Regular files only (`open_in` refuses anything else): the network directories
        // in the root are skipped here.
        let file = match files::open_in(&dir, &name, Open::Read) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound || files::is_refused(&e) => continue,
            Err(e) => return Err(e),
        };
        // Not waiting: a call holding it is that attachment's ADD or DEL, still running.
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => continue,
            Err((_, e)) => return Err(e.into()),
        };
        if still_named(&dir, &name, &lock)? {
            nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir)?;
            removed += 1;
        }
    }
    Ok(removed)
}

fn network_dir(root: &Path, network: &str) -> std::path::PathBuf {
    root.join(format!("{:016x}", fnv1a(&[network])))
}

fn file_name(network: &str, id: &str, ifname: &str) -> String {
    format!("{:016x}", fnv1a(&[network, id, ifname]))
}

/// `/run/vnet/locks/<network>`, made (0700) when missing, opened without following a
/// symlink.
fn lock_dir(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    files::open_dir(path)
}

fn lock_exclusive(mut file: File) -> io::Result<Flock<File>> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(errno.into()),
        }
    }
}

/// Whether the locked file is still the one named `name` (a DEL may have removed it
/// while we waited).
fn still_named(dir: &File, name: &str, lock: &Flock<File>) -> io::Result<bool> {
    let held = fstat(lock.as_fd())?;
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(now) => Ok(now.st_dev == held.st_dev && now.st_ino == held.st_ino),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::test_util::TempDir;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_second_call_waits_and_survives_the_first_removing_the_file() {
        let tmp = TempDir::new("attach-lock");
        let dir = tmp.path().join("locks");
        let first = AttachmentLock::take_in(&dir, "net", "c1", "eth0").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let (d2, done2) = (dir.clone(), done.clone());
        let second = std::thread::spawn(move || {
            let l = AttachmentLock::take_in(&d2, "net", "c1", "eth0").unwrap();
            done2.store(true, Ordering::Release);
            l
        });
        // Another attachment is not held up.
        drop(AttachmentLock::take_in(&dir, "net", "c2", "eth0").unwrap());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !done.load(Ordering::Acquire),
            "the second lock did not wait"
        );
        first.remove();
        let second = second.join().unwrap();
        // It holds the file now under that name (made anew after the removal).
        assert!(still_named(&second.dir, &second.name, &second._lock).unwrap());
    }

    #[test]
    fn gc_removes_the_files_of_attachments_no_longer_valid_unless_held() {
        let tmp = TempDir::new("attach-gc");
        let root = tmp.path().join("locks");
        for id in ["c1", "c2", "c3"] {
            drop(AttachmentLock::take_in(&root, "net", id, "eth0").unwrap());
        }
        drop(AttachmentLock::take_in(&root, "other", "c2", "eth0").unwrap());
        // An earlier vnet's flat file, not held: swept too.
        std::fs::write(root.join("00112233aabbccdd"), "").unwrap();
        let held = AttachmentLock::take_in(&root, "net", "c3", "eth0").unwrap();
        let valid = vec![("c1".to_string(), "eth0".to_string())];
        // c2 goes; c3 is held by a call in progress and stays; the other network's c2 too.
        assert_eq!(gc_in(&root, "net", &valid).unwrap(), 2);
        assert!(!root.join("00112233aabbccdd").exists());
        let names = |net: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(network_dir(&root, net))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let mut want = vec![
            file_name("net", "c1", "eth0"),
            file_name("net", "c3", "eth0"),
        ];
        want.sort();
        assert_eq!(names("net"), want);
        assert_eq!(names("other"), vec![file_name("other", "c2", "eth0")]);
        drop(held);
        assert_eq!(gc_in(&root, "net", &valid).unwrap(), 1);
        assert_eq!(names("net"), vec![file_name("net", "c1", "eth0")]);
        assert_eq!(gc_in(&tmp.path().join("none"), "net", &valid).unwrap(), 0);
    }
}
