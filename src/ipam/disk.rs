//! The reference host-local layout on disk: `<dataDir>/<network>/<ip>` files holding
//! `<id>\r\n<ifname>`, `last_reserved_ip.<set>` hints and a `lock` file taken with flock.
//!
//! On top of it, vnet writes so that a crash at any point leaves a consistent directory,
//! and keeps a derived [`Index`] so that owner lookups do not read every file.
//! A reservation's content goes to a temp file first (written and synced), which is then
//! hard-linked to the address name: link(2) fails with EEXIST atomically like the
//! reference's O_EXCL create, but the name appears with its full content or not at all.
//! The temp file is unnamed (`O_TMPFILE`) where the filesystem allows it, and for an ADD
//! it is written and synced before the lock is taken (see [`DiskStore::open_to_reserve`]).
use super::crash;
use super::dir::Dir;
use super::index::{attachment_key, legacy_key, owner_key, Index};
use super::scan::{self, read_hint, LAST_RESERVED_PREFIX, TMP_PREFIX};
use super::stamp;
use super::store::{owned_by, Owner, Store};
use super::IpamError;
use crate::files::{self, cap, Open};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, Flock, FlockArg, OFlag, AT_FDCWD};
use nix::sys::signal::kill;
use nix::sys::stat::Mode;
use nix::unistd::{linkat, Pid};
use std::fs::{DirBuilder, File};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A reservation's content, written and synced, waiting to be linked to an address name.
struct Tmp {
    file: TmpFile,
    content: String,
}

enum TmpFile {
    /// `O_TMPFILE`: an inode with no name until it is linked, so a crash before the link
    /// leaves nothing behind, and creating it does not change the directory (whose mtime
    /// tells whether the index is current).
    Unnamed(File),
    /// `.vnet-tmp.<pid>` in the directory, where the filesystem has no `O_TMPFILE`; only
    /// made under the lock.
    Named(String),
}

/// One network's directory, locked for as long as the value lives. Dropping it seals the
/// index for the changes made, then unlocks.
pub(crate) struct DiskStore {
    dir: Dir,
    boot: u64,
    /// `None` when it could not be read or written: lookups fall back to scanning, and the
    /// index is left untrusted on disk so the next operation rebuilds it.
    index: Option<Index>,
    tmp: Option<Tmp>,
    changed: bool,
    // Last, so the lock is released after Drop has sealed the index.
    _lock: Flock<File>,
}

/// The lock file as ADD opens it: read-only with O_CREAT, like the reference.
pub(crate) const LOCK_CREATE: Open = Open::ReadCreate(0o750);

/// The lock file, opened without creating it; `None` if it does not exist. Something
/// else than a regular file under that name (a FIFO would block the open, a symlink
/// would be followed) is an error: every ADD of the network would otherwise hang on it.
pub(crate) fn open_lock(dir: &Dir, how: Open) -> Result<Option<Flock<File>>, IpamError> {
    let path = dir.join("lock");
    let create = matches!(how, Open::ReadCreate(_));
    let file = match dir.open_file("lock", how) {
        Ok(f) => f,
        Err(e) if !create && e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IpamError::io("open lock file", &path, e)),
    };
    lock_exclusive(file)
        .map(Some)
        .map_err(|e| IpamError::io("lock", &path, std::io::Error::from(e)))
}

impl DiskStore {
    /// Creates the directory (0755) and the `lock` file (0750) as the reference does, then
    /// blocks until it holds an exclusive flock on it. Callers validate `network` first.
    pub(crate) fn open(data_dir: &Path, network: &str) -> Result<DiskStore, IpamError> {
        Self::open_with(data_dir, network, None)
    }

    /// [`open`](Self::open) for a call that will reserve addresses for `id`/`ifname`: the
    /// reservation's content is written to an unnamed temp file and synced before the
    /// lock is taken. The sync is the slowest step of a reservation (a few tenths of a
    /// millisecond of disk writes), and parallel ADDs of one network queue on the lock.
    pub(crate) fn open_to_reserve(
        data_dir: &Path,
        network: &str,
        id: &str,
        ifname: &str,
    ) -> Result<DiskStore, IpamError> {
        Self::open_with(data_dir, network, Some(&content(id, ifname)))
    }

    fn open_with(
        data_dir: &Path,
        network: &str,
        content: Option<&str>,
    ) -> Result<DiskStore, IpamError> {
        let path = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&path)
            .map_err(|e| IpamError::io("create directory", &path, e))?;
        let dir = Dir::open(&path).map_err(|e| IpamError::io("open", &path, e))?;
        let tmp = match content {
            Some(c) => unnamed_tmp(&dir, c)?.map(|file| Tmp {
                file: TmpFile::Unnamed(file),
                content: c.to_string(),
            }),
            None => None,
        };
        let lock = open_lock(&dir, LOCK_CREATE)?
            .ok_or_else(|| IpamError::io("lock", &path, ErrorKind::NotFound.into()))?;
        let mut store = DiskStore {
            dir,
            boot: stamp::boot_id(),
            index: None,
            tmp,
            changed: false,
            _lock: lock,
        };
        store.index = store.load_or_rebuild();
        Ok(store)
    }

    fn load_or_rebuild(&mut self) -> Option<Index> {
        let now = stamp::of(&self.dir.fd, self.boot).ok()?;
        Index::load(&self.dir, &now, Open::ReadWrite).or_else(|| self.rebuild().ok())
    }

    /// Reads the whole directory, removes temp files of dead writers and indexes every
    /// reservation with a readable owner.
    fn rebuild(&mut self) -> Result<Index, IpamError> {
        let found = scan::scan(&self.dir, scan::Times::Skip)?;
        remove_stale_temps(&found.temps);
        crash::point("rebuild-scanned");
        let entries: Vec<(u64, IpAddr)> = found
            .reservations
            .iter()
            .filter_map(|f| owner_key(&f.owner()).map(|k| (k, f.ip)))
            .collect();
        let mut index = Index::build(&self.dir, &entries)
            .map_err(|e| IpamError::io("write index in", &self.dir.path, e))?;
        crash::point("rebuild-written");
        if let Ok(Some(now)) = stamp::touch(&self.dir.fd, self.boot) {
            index
                .seal(&now)
                .map_err(|e| IpamError::io("write index in", &self.dir.path, e))?;
        }
        Ok(index)
    }

    pub(crate) fn dir(&self) -> &Dir {
        &self.dir
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(&ip.to_string())
    }

    /// The owner written in `ip`'s file. `None` when there is no such file or it is not a
    /// reservation (a symlink, a FIFO, too large: no one owns it, and it still blocks
    /// its address); an error when it could not be read, which must never pass for "not
    /// this container's": DEL would then answer success and keep the address.
    fn owner_of(&self, ip: IpAddr) -> Result<Option<Owner>, IpamError> {
        match self.dir.read(&ip.to_string(), cap::RESERVATION) {
            Ok(c) => Ok(Some(Owner::parse(&c))),
            Err(e) if e.kind() == ErrorKind::NotFound || files::is_refused(&e) => Ok(None),
            Err(e) => Err(IpamError::io("read", self.ip_path(ip), e)),
        }
    }

    /// Called before any change to the directory or the index.
    fn begin_change(&mut self) {
        if self.changed {
            return;
        }
        self.changed = true;
        if let Some(index) = &mut self.index {
            if index.mark_dirty().is_err() {
                self.index = None;
            }
        }
    }

    /// Runs `f` on the index; a failure leaves it untrusted rather than failing the call.
    fn update_index(&mut self, f: impl FnOnce(&mut Index) -> std::io::Result<()>) {
        if let Some(index) = &mut self.index {
            if f(index).is_err() {
                self.index = None;
            }
        }
    }

    /// Addresses indexed under `key` whose file really has an owner matching `pred`;
    /// `None` without a usable index.
    fn indexed(
        &self,
        key: u64,
        pred: impl Fn(&Owner) -> bool,
    ) -> Result<Option<Vec<IpAddr>>, IpamError> {
        let Some(Ok(candidates)) = self.index.as_ref().map(|i| i.lookup(key)) else {
            return Ok(None);
        };
        let mut ips = Vec::new();
        for ip in candidates {
            if self.owner_of(ip)?.is_some_and(|o| pred(&o)) {
                ips.push(ip);
            }
        }
        ips.sort();
        Ok(Some(ips))
    }

    /// Overwritten in place, then cut to length: ext4 flushes a file that was truncated to
    /// zero and rewritten when it is closed (`auto_da_alloc`), which cost each ADD a
    /// synchronous-looking write. A crash in between leaves at worst a wrong or unreadable
    /// hint, and both plugins then just start the round robin elsewhere. Something else
    /// than a regular file under the hint's name (a symlink aimed at another file, a
    /// FIFO) is removed, never written through, and a fresh file takes its place.
    fn write_last_reserved(&self, ip: IpAddr, set: usize) -> Result<(), IpamError> {
        let name = format!("{LAST_RESERVED_PREFIX}{set}");
        let path = self.dir.join(&name);
        let text = ip.to_string();
        let open = || self.dir.open_file(&name, Open::WriteCreate(0o600));
        match open() {
            Err(e) if files::is_refused(&e) => self.dir.unlink(&name).and_then(|_| open()),
            other => other,
        }
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.set_len(text.len() as u64)
        })
        .map_err(|e| IpamError::io("write", &path, e))
    }

    /// The temp file holding `content`, written and synced; reused across the candidates
    /// one allocation tries. Normally made before the lock ([`Self::open_to_reserve`]);
    /// here, under the lock, for a further range set or where `O_TMPFILE` is missing.
    fn prepare_tmp(&mut self, content: &str) -> Result<Tmp, IpamError> {
        let tmp = match self.tmp.take() {
            Some(t) if t.content == content => t,
            stale => {
                self.discard(stale);
                let file = match unnamed_tmp(&self.dir, content)? {
                    Some(file) => TmpFile::Unnamed(file),
                    None => TmpFile::Named(self.named_tmp(content)?),
                };
                Tmp {
                    file,
                    content: content.to_string(),
                }
            }
        };
        Ok(tmp)
    }

    /// `.vnet-tmp.<pid>`, written and synced: a change to the directory, so under the lock.
    fn named_tmp(&mut self, content: &str) -> Result<String, IpamError> {
        self.begin_change();
        let name = format!("{TMP_PREFIX}{}", std::process::id());
        let open = || self.dir.open_file(&name, Open::CreateNew(0o600));
        // Left by an earlier process that had our PID and died holding the lock.
        let file = match open() {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let _ = self.dir.unlink(&name);
                open()
            }
            other => other,
        }
        .map_err(|e| IpamError::io("create", self.dir.join(&name), e))?;
        if let Err(e) = write_synced(file, content) {
            let _ = self.dir.unlink(&name);
            return Err(IpamError::io("write", self.dir.join(&name), e));
        }
        Ok(name)
    }

    fn drop_tmp(&mut self) {
        let tmp = self.tmp.take();
        self.discard(tmp);
    }

    fn discard(&mut self, tmp: Option<Tmp>) {
        if let Some(Tmp {
            file: TmpFile::Named(name),
            ..
        }) = tmp
        {
            if self.dir.unlink(&name).is_err() {
                // Still there: keep the index untrusted so the next rebuild removes it.
                self.index = None;
            }
        }
    }

    /// Seals the index for this operation's changes: the directory gets a fresh precise
    /// mtime and the index header records it. Skipped (index left untrusted) if anything
    /// went wrong on the way.
    fn finish(&mut self) {
        self.drop_tmp();
        if !self.changed {
            return;
        }
        crash::point("before-seal");
        let Some(index) = &mut self.index else {
            return;
        };
        if let Ok(Some(now)) = stamp::touch(&self.dir.fd, self.boot) {
            let _ = index.seal(&now);
        }
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Gives the temp file the address's name `name` in `dir`; `false` if that name exists.
fn link(dir: &Dir, tmp: &TmpFile, name: &str) -> Result<bool, IpamError> {
    let linked = match tmp {
        TmpFile::Named(t) => linkat(&dir.fd, t.as_str(), &dir.fd, name, AtFlags::empty()),
        // linkat(AT_EMPTY_PATH) would need CAP_DAC_READ_SEARCH (not held by a plugin in a
        // user namespace); following the /proc/self/fd link needs nothing. The link it
        // follows is the kernel's own, to our descriptor.
        TmpFile::Unnamed(f) => linkat(
            AT_FDCWD,
            format!("/proc/self/fd/{}", f.as_raw_fd()).as_str(),
            &dir.fd,
            name,
            AtFlags::AT_SYMLINK_FOLLOW,
        ),
    };
    match linked {
        Ok(()) => Ok(true),
        Err(Errno::EEXIST) => Ok(false),
        Err(e) => Err(IpamError::io(
            "create reservation",
            dir.join(name),
            e.into(),
        )),
    }
}

/// What a reservation file holds: `<id>\r\n<ifname>`, as the reference writes it.
fn content(id: &str, ifname: &str) -> String {
    format!("{}\r\n{ifname}", id.trim())
}

/// An unnamed temp file in `dir` holding `content`, written and synced; `None` where the
/// filesystem (or an old kernel) has no `O_TMPFILE`.
fn unnamed_tmp(dir: &Dir, content: &str) -> Result<Option<File>, IpamError> {
    #[cfg(test)]
    if NO_TMPFILE.with(|off| off.get()) {
        return Ok(None);
    }
    let file = match openat(
        &dir.fd,
        ".",
        OFlag::O_TMPFILE | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => File::from(fd),
        // EISDIR: a kernel older than O_TMPFILE sees only O_DIRECTORY (open(2)).
        Err(Errno::EOPNOTSUPP | Errno::EISDIR) => return Ok(None),
        Err(e) => {
            return Err(IpamError::io(
                "create a temporary file in",
                &dir.path,
                e.into(),
            ))
        }
    };
    match write_synced(file, content) {
        Ok(file) => Ok(Some(file)),
        Err(e) => Err(IpamError::io("write a temporary file in", &dir.path, e)),
    }
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's stores behave as on a filesystem without `O_TMPFILE`.
    pub(crate) static NO_TMPFILE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Writes `content` in two halves (a crash point between them) and syncs it: on disk
/// before it gets an address name, so not even a power loss can leave an empty
/// reservation file behind (ext4 may otherwise persist the name first).
fn write_synced(mut file: File, content: &str) -> std::io::Result<File> {
    let half = content.len() / 2;
    file.write_all(&content.as_bytes()[..half])?;
    crash::point("tmp-partial");
    file.write_all(&content.as_bytes()[half..])?;
    file.sync_data()?;
    crash::point("tmp-written");
    Ok(file)
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

/// Under the lock no live vnet has a temp file, so one is left by a crash. Files named
/// after a PID that still runs (and is not us) are kept, in case some writer ignores the
/// lock.
pub(crate) fn remove_stale_temps(temps: &[(PathBuf, Option<i32>)]) {
    let me = std::process::id() as i32;
    for (path, pid) in temps {
        let dead = match pid {
            Some(p) if *p == me => true,
            Some(p) if *p > 0 => kill(Pid::from_raw(*p), None) == Err(Errno::ESRCH),
            _ => false,
        };
        if dead {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Store for DiskStore {
    fn reserve(
        &mut self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, IpamError> {
        self.begin_change();
        let tmp = self.prepare_tmp(&content(id, ifname))?;
        // The link is the reservation; an existing entry of any kind blocks it.
        let linked = link(&self.dir, &tmp.file, &ip.to_string());
        // Kept for the next candidate, or removed by `drop_tmp`/`finish`.
        self.tmp = Some(tmp);
        if !linked? {
            return Ok(false);
        }
        crash::point("linked");
        self.drop_tmp();
        crash::point("tmp-removed");
        self.update_index(|i| i.insert(attachment_key(id, ifname), ip));
        crash::point("indexed");
        if let Err(e) = self.write_last_reserved(ip, set) {
            // Unlike the reference, do not leave a half-made reservation behind.
            let _ = self.remove(ip);
            return Err(e);
        }
        Ok(true)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        let path = self.ip_path(ip);
        let key = self.owner_of(ip)?.and_then(|o| owner_key(&o));
        self.begin_change();
        match self.dir.unlink(&ip.to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(IpamError::io("remove reservation", &path, e)),
        }
        crash::point("unlinked");
        if let Some(key) = key {
            self.update_index(|i| i.remove(key, ip).map(|_| ()));
        }
        Ok(true)
    }

    fn is_reserved(&self, ip: IpAddr) -> Result<bool, IpamError> {
        self.dir
            .has(&ip.to_string())
            .map_err(|e| IpamError::io("stat", self.ip_path(ip), e))
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        read_hint(&self.dir, &format!("{LAST_RESERVED_PREFIX}{set}"))
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical())
    }

    /// Like the reference, an entry that cannot be read is skipped rather than failing the
    /// whole walk; it still blocks its address because the name exists.
    fn entries(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        let found = scan::scan(&self.dir, scan::Times::Skip)?;
        Ok(found
            .reservations
            .into_iter()
            .filter_map(|f| f.content.map(|c| (f.ip, Owner::parse(&c))))
            .collect())
    }

    fn held_by(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>, IpamError> {
        match self.indexed(attachment_key(id, ifname), |o| o.is(id, ifname))? {
            Some(ips) => Ok(ips),
            None => Ok(owned_by(self.entries()?, |o| o.is(id, ifname))),
        }
    }

    fn held_by_legacy(&self, id: &str) -> Result<Vec<IpAddr>, IpamError> {
        match self.indexed(legacy_key(id), |o| o.is_legacy(id))? {
            Some(ips) => Ok(ips),
            None => Ok(owned_by(self.entries()?, |o| o.is_legacy(id))),
        }
    }
}
