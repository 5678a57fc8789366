//! A derived index of one network directory: owner → addresses, so ADD's duplicate check,
//! DEL and CHECK find a container's reservations without reading every file.
//!
//! The reservation files stay the truth; the index is a hint that is verified (each hit is
//! confirmed by reading that one file) and thrown away when in doubt. It is an
//! open-addressing hash table in `.vnet-index`, read and written slot by slot with
//! pread/pwrite, so an operation touches a few slots whatever the table size. Its header
//! says whether it is trusted: *dirty* while an operation changes things, and otherwise
//! sealed with the directory [`Stamp`] it agrees with. Anything else (another program
//! changed the directory, a crash, a reboot, a torn write) fails the check and the store
//! rebuilds the index from the directory.
use super::dir::Dir;
use super::range::{from_u128, to_u128};
use super::stamp::{fnv, Stamp};
use super::store::Owner;
use crate::files::Open;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::FileExt;

/// The index file inside the network directory. The reference host-local reads it on its
/// directory walks like any file; its content never equals a `<id>\r\n<ifname>`.
pub(crate) const INDEX_FILE: &str = ".vnet-index";
const MAGIC: &[u8; 8] = b"VNETIDX\0";
const FORMAT: u32 = 1;
const HEADER: u64 = 128;
const SLOT: u64 = 32;
const MIN_CAPACITY: u64 = 1024;

/// The key of a current-format owner. Legacy ID-only owners get a different key space.
pub(crate) fn attachment_key(id: &str, ifname: &str) -> u64 {
    fnv(&[b"A", id.trim().as_bytes(), b"\0", ifname.as_bytes()]).max(1)
}

pub(crate) fn legacy_key(id: &str) -> u64 {
    fnv(&[b"L", id.trim().as_bytes()]).max(1)
}

/// The key a reservation is indexed under; files without a readable owner are not indexed.
pub(crate) fn owner_key(owner: &Owner) -> Option<u64> {
    match owner {
        Owner::Attachment { id, ifname } => Some(attachment_key(id, ifname)),
        Owner::Legacy { id } => Some(legacy_key(id)),
        Owner::Unknown => None,
    }
}

/// One table entry; key 0 marks an empty slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: u64,
    ip: IpAddr,
}

fn encode_slot(slot: Option<Slot>) -> [u8; SLOT as usize] {
    let mut b = [0u8; SLOT as usize];
    if let Some(s) = slot {
        b[0..8].copy_from_slice(&s.key.to_le_bytes());
        b[8..24].copy_from_slice(&to_u128(s.ip).to_le_bytes());
        b[24] = if s.ip.is_ipv6() { 6 } else { 4 };
    }
    b
}

fn decode_slot(b: &[u8]) -> Option<Slot> {
    let key = u64::from_le_bytes(b[0..8].try_into().ok()?);
    if key == 0 {
        return None;
    }
    let value = u128::from_le_bytes(b[8..24].try_into().ok()?);
    let like = if b[24] == 6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    Some(Slot {
        key,
        ip: from_u128(value, like),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    capacity: u64,
    count: u64,
    dirty: bool,
    stamp: Stamp,
}

fn encode_header(h: &Header) -> [u8; HEADER as usize] {
    let mut b = [0u8; HEADER as usize];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&FORMAT.to_le_bytes());
    b[12] = u8::from(h.dirty);
    let s = &h.stamp;
    let fields: [u64; 9] = [
        h.capacity,
        h.count,
        s.dev,
        s.ino,
        s.mtime.0 as u64,
        s.mtime.1 as u64,
        s.ctime.0 as u64,
        s.ctime.1 as u64,
        s.boot,
    ];
    for (i, f) in fields.iter().enumerate() {
        b[16 + 8 * i..24 + 8 * i].copy_from_slice(&f.to_le_bytes());
    }
    let sum = fnv(&[&b[..120]]);
    b[120..128].copy_from_slice(&sum.to_le_bytes());
    b
}

fn decode_header(b: &[u8; HEADER as usize]) -> Option<Header> {
    let word = |at: usize| b[at..at + 8].try_into().ok().map(u64::from_le_bytes);
    if &b[0..8] != MAGIC || b[8..12] != FORMAT.to_le_bytes() || word(120)? != fnv(&[&b[..120]]) {
        return None;
    }
    let f = |i: usize| word(16 + 8 * i);
    Some(Header {
        capacity: f(0)?,
        count: f(1)?,
        dirty: b[12] != 0,
        stamp: Stamp {
            dev: f(2)?,
            ino: f(3)?,
            mtime: (f(4)? as i64, f(5)? as i64),
            ctime: (f(6)? as i64, f(7)? as i64),
            boot: f(8)?,
        },
    })
}

/// Places `slot` in an in-memory table of `capacity` slots by linear probing.
fn place(table: &mut [u8], capacity: u64, slot: Slot) {
    let mask = capacity - 1;
    let mut i = slot.key & mask;
    for _ in 0..capacity {
        let at = (i * SLOT) as usize;
        if decode_slot(&table[at..at + SLOT as usize]).is_none() {
            table[at..at + SLOT as usize].copy_from_slice(&encode_slot(Some(slot)));
            return;
        }
        i = (i + 1) & mask;
    }
}

fn capacity_for(count: u64) -> u64 {
    (2 * count + 2).next_power_of_two().max(MIN_CAPACITY)
}

/// The open index of one network directory. Callers hold the store's lock.
pub(crate) struct Index {
    file: File,
    capacity: u64,
    count: u64,
    dirty: bool,
}

impl Index {
    /// The index, if it is sealed and agrees with the directory's stamp `now`.
    /// `how`: `Open::Read` to look (status), `Open::ReadWrite` to update it.
    pub(crate) fn load(dir: &Dir, now: &Stamp, how: Open) -> Option<Index> {
        let file = dir.open_file(INDEX_FILE, how).ok()?;
        let mut b = [0u8; HEADER as usize];
        file.read_exact_at(&mut b, 0).ok()?;
        let h = decode_header(&b)?;
        let len = file.metadata().ok()?.len();
        let sane = h.capacity.is_power_of_two()
            && h.capacity >= MIN_CAPACITY
            && h.count * 2 <= h.capacity
            && h.capacity
                .checked_mul(SLOT)
                .and_then(|t| t.checked_add(HEADER))
                == Some(len);
        (sane && !h.dirty && h.stamp == *now).then_some(Index {
            file,
            capacity: h.capacity,
            count: h.count,
            dirty: false,
        })
    }

    /// Writes a new index holding `entries` (key, address), dirty until [`Index::seal`].
    /// Whatever had the index's name before (an old index, or a symlink or FIFO someone
    /// put there) is removed first, so the new one is always a fresh regular file.
    pub(crate) fn build(dir: &Dir, entries: &[(u64, IpAddr)]) -> io::Result<Index> {
        let capacity = capacity_for(entries.len() as u64);
        let mut buf = vec![0u8; (HEADER + capacity * SLOT) as usize];
        let mut count = 0;
        let mut seen = std::collections::HashSet::new();
        for &(key, ip) in entries {
            if seen.insert((key, ip)) {
                place(&mut buf[HEADER as usize..], capacity, Slot { key, ip });
                count += 1;
            }
        }
        let header = Header {
            capacity,
            count,
            dirty: true,
            stamp: Stamp::default(),
        };
        buf[..HEADER as usize].copy_from_slice(&encode_header(&header));
        match dir.unlink(INDEX_FILE) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = dir.open_file(INDEX_FILE, Open::CreateNew(0o600))?;
        file.write_all_at(&buf, 0)?;
        Ok(Index {
            file,
            capacity,
            count,
            dirty: true,
        })
    }

    fn write_header(&mut self, dirty: bool, stamp: Stamp) -> io::Result<()> {
        let h = Header {
            capacity: self.capacity,
            count: self.count,
            dirty,
            stamp,
        };
        self.file.write_all_at(&encode_header(&h), 0)?;
        self.dirty = dirty;
        Ok(())
    }

    /// Marks the index untrusted before the directory or the table changes.
    pub(crate) fn mark_dirty(&mut self) -> io::Result<()> {
        if self.dirty {
            return Ok(());
        }
        self.write_header(true, Stamp::default())
    }

    /// Trusted again: the table agrees with the directory as `stamp` describes it.
    pub(crate) fn seal(&mut self, stamp: &Stamp) -> io::Result<()> {
        self.write_header(false, *stamp)
    }

    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    fn read(&self, i: u64) -> io::Result<Option<Slot>> {
        let mut b = [0u8; SLOT as usize];
        self.file.read_exact_at(&mut b, HEADER + i * SLOT)?;
        Ok(decode_slot(&b))
    }

    fn write(&self, i: u64, slot: Option<Slot>) -> io::Result<()> {
        self.file
            .write_all_at(&encode_slot(slot), HEADER + i * SLOT)
    }

    /// The slot positions probed for `key`, in order, up to the first empty one.
    fn probe(&self, key: u64) -> impl Iterator<Item = u64> + '_ {
        let mask = self.capacity - 1;
        (0..self.capacity).map(move |n| key.wrapping_add(n) & mask)
    }

    /// Every address indexed under `key` (callers confirm each against its file).
    pub(crate) fn lookup(&self, key: u64) -> io::Result<Vec<IpAddr>> {
        let mut out = Vec::new();
        for i in self.probe(key) {
            match self.read(i)? {
                None => break,
                Some(s) if s.key == key => out.push(s.ip),
                Some(_) => {}
            }
        }
        Ok(out)
    }

    pub(crate) fn insert(&mut self, key: u64, ip: IpAddr) -> io::Result<()> {
        debug_assert!(self.dirty, "index changed without being marked dirty");
        if (self.count + 1) * 2 > self.capacity {
            self.grow()?;
        }
        let wanted = Slot { key, ip };
        let mut free = None;
        for i in self.probe(key) {
            match self.read(i)? {
                Some(s) if s == wanted => return Ok(()),
                Some(_) => {}
                None => {
                    free = Some(i);
                    break;
                }
            }
        }
        let i = free.ok_or_else(|| io::Error::other("index table is full"))?;
        self.write(i, Some(wanted))?;
        self.count += 1;
        Ok(())
    }

    /// Removes (key, ip); `false` if it was not indexed. Later entries of the probe run
    /// shift back into the hole (no tombstones), so lookups stay short.
    pub(crate) fn remove(&mut self, key: u64, ip: IpAddr) -> io::Result<bool> {
        debug_assert!(self.dirty, "index changed without being marked dirty");
        let wanted = Slot { key, ip };
        let mut hole = None;
        for i in self.probe(key) {
            match self.read(i)? {
                None => break,
                Some(s) if s == wanted => {
                    hole = Some(i);
                    break;
                }
                Some(_) => {}
            }
        }
        let Some(mut hole) = hole else {
            return Ok(false);
        };
        let mask = self.capacity - 1;
        let mut j = hole;
        for _ in 0..self.capacity {
            j = (j + 1) & mask;
            let Some(s) = self.read(j)? else { break };
            // The entry at j may fill the hole if the hole is not before its home slot.
            let from_home = j.wrapping_sub(s.key) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.write(hole, Some(s))?;
                hole = j;
            }
        }
        self.write(hole, None)?;
        self.count -= 1;
        Ok(true)
    }

    /// Doubles the table, rehashing every entry (amortised: once per doubling).
    fn grow(&mut self) -> io::Result<()> {
        let mut old = vec![0u8; (self.capacity * SLOT) as usize];
        self.file.read_exact_at(&mut old, HEADER)?;
        let capacity = self.capacity * 2;
        let mut table = vec![0u8; (capacity * SLOT) as usize];
        for chunk in old.chunks_exact(SLOT as usize) {
            if let Some(s) = decode_slot(chunk) {
                place(&mut table, capacity, s);
            }
        }
        self.file.set_len(HEADER + capacity * SLOT)?;
        self.file.write_all_at(&table, HEADER)?;
        self.capacity = capacity;
        Ok(())
    }
}

/// How the index relates to the directory (for `vnet ipam status`; changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexState {
    /// No index file: the next operation builds one.
    Absent,
    /// Not sealed for the directory as it is now: the next operation rebuilds it.
    Stale,
    /// Sealed and holding exactly the owned reservations of the directory.
    Valid,
    /// Sealed, yet it disagrees with the directory: a reservation file was edited in place,
    /// or a bug. The next change by vnet does not fix this; any foreign change does.
    Mismatch,
}

/// Compares the index with `entries` (key, address) read from the directory.
pub(crate) fn audit(dir: &Dir, now: &Stamp, entries: &[(u64, IpAddr)]) -> IndexState {
    if !dir.has(INDEX_FILE).unwrap_or(true) {
        return IndexState::Absent;
    }
    let Some(index) = Index::load(dir, now, Open::Read) else {
        return IndexState::Stale;
    };
    let unique: std::collections::HashSet<&(u64, IpAddr)> = entries.iter().collect();
    let all_found = unique
        .iter()
        .all(|(key, ip)| index.lookup(*key).is_ok_and(|ips| ips.contains(ip)));
    if all_found && index.len() == unique.len() as u64 {
        IndexState::Valid
    } else {
        IndexState::Mismatch
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
