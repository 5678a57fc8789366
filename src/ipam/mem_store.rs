//! An in-memory [`Store`] for unit tests of the pure logic.
use super::store::{Owner, Store};
use super::IpamError;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// Reservations keyed by address, holding the raw file content the disk store would write.
#[derive(Debug, Default)]
pub(crate) struct MemStore {
    pub(crate) files: BTreeMap<IpAddr, Vec<u8>>,
    pub(crate) last: HashMap<usize, IpAddr>,
}

impl MemStore {
    pub(crate) fn with(entries: &[(&str, &str)]) -> MemStore {
        let mut s = MemStore::default();
        for (ip, content) in entries {
            s.files
                .insert(ip.parse().unwrap(), content.as_bytes().to_vec());
        }
        s
    }

    pub(crate) fn ips(&self) -> Vec<String> {
        self.files.keys().map(IpAddr::to_string).collect()
    }
}

impl Store for MemStore {
    fn reserve(
        &mut self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, IpamError> {
        if self.files.contains_key(&ip) {
            return Ok(false);
        }
        let content = format!("{}\r\n{ifname}", id.trim());
        self.files.insert(ip, content.into_bytes());
        self.last.insert(set, ip);
        Ok(true)
    }

    fn remove(&mut self, ip: IpAddr) -> Result<bool, IpamError> {
        Ok(self.files.remove(&ip).is_some())
    }

    fn is_reserved(&self, ip: IpAddr) -> Result<bool, IpamError> {
        Ok(self.files.contains_key(&ip))
    }

    fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        self.last.get(&set).copied()
    }

    fn entries(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError> {
        Ok(self
            .files
            .iter()
            .map(|(ip, c)| (*ip, Owner::parse(c)))
            .collect())
    }
}
