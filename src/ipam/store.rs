//! Where reservations live. The allocator and the release/GC logic see only this trait,
//! so they are tested against memory, and a store with an index can replace the
//! directory scan without touching them.
use super::IpamError;
use std::net::IpAddr;

/// Who holds a reservation, as recorded in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `<id>\r\n<ifname>`, the format since host-local v0.8.0.
    Attachment { id: String, ifname: String },
    /// Only `<id>`, written by older host-local versions.
    Legacy { id: String },
    /// Empty or unreadable content: the address stays taken, nobody can release it by ID.
    Unknown,
}

impl Owner {
    /// Parses file content the way the reference compares it: whitespace-trimmed, split at
    /// the first CRLF.
    pub(crate) fn parse(content: &[u8]) -> Owner {
        let Ok(text) = std::str::from_utf8(content) else {
            return Owner::Unknown;
        };
        let text = text.trim();
        if text.is_empty() {
            return Owner::Unknown;
        }
        match text.split_once("\r\n") {
            Some((id, ifname)) => Owner::Attachment {
                id: id.to_string(),
                ifname: ifname.to_string(),
            },
            None => Owner::Legacy {
                id: text.to_string(),
            },
        }
    }

    pub(crate) fn is(&self, want_id: &str, want_ifname: &str) -> bool {
        matches!(self, Owner::Attachment { id, ifname } if id == want_id.trim() && ifname == want_ifname)
    }

    pub(crate) fn is_legacy(&self, want_id: &str) -> bool {
        matches!(self, Owner::Legacy { id } if id == want_id.trim())
    }
}

/// A set of reserved addresses, each with its owner, plus a per-range-set round-robin hint.
/// Callers hold whatever lock the store needs for the duration of one operation.
pub(crate) trait Store {
    /// Reserves `ip` for (id, ifname) unless it is already taken (then `Ok(false)`), and on
    /// success records it as the last reserved address of range set `set`.
    fn reserve(
        &mut self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, IpamError>;

    /// Drops the reservation of `ip`; `Ok(false)` if there was none.
    fn remove(&mut self, ip: IpAddr) -> Result<bool, IpamError>;

    /// Whether `ip` is taken, by anyone or anything.
    fn is_reserved(&self, ip: IpAddr) -> Result<bool, IpamError>;

    /// The last address reserved in range set `set`. Only a hint: unreadable means `None`.
    fn last_reserved(&self, set: usize) -> Option<IpAddr>;

    /// Every reservation with its owner.
    fn entries(&self) -> Result<Vec<(IpAddr, Owner)>, IpamError>;

    /// Addresses held by exactly (id, ifname); legacy ID-only entries are not included.
    fn held_by(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>, IpamError> {
        Ok(owned_by(self.entries()?, |o| o.is(id, ifname)))
    }

    /// Addresses held by legacy ID-only entries of `id`.
    fn held_by_legacy(&self, id: &str) -> Result<Vec<IpAddr>, IpamError> {
        Ok(owned_by(self.entries()?, |o| o.is_legacy(id)))
    }
}

pub(crate) fn owned_by(
    entries: Vec<(IpAddr, Owner)>,
    pred: impl Fn(&Owner) -> bool,
) -> Vec<IpAddr> {
    entries
        .into_iter()
        .filter(|(_, o)| pred(o))
        .map(|(ip, _)| ip)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Owner;

    #[test]
    fn parses_current_legacy_and_broken_content() {
        assert_eq!(
            Owner::parse(b"dummy\r\neth0"),
            Owner::Attachment {
                id: "dummy".into(),
                ifname: "eth0".into()
            }
        );
        assert_eq!(
            Owner::parse(b"  dummy \n"),
            Owner::Legacy { id: "dummy".into() }
        );
        assert_eq!(Owner::parse(b""), Owner::Unknown);
        assert_eq!(Owner::parse(b" \r\n "), Owner::Unknown);
        assert_eq!(Owner::parse(&[0xff, 0xfe, 0x00]), Owner::Unknown);
    }

    #[test]
    fn matching_trims_the_id_like_the_reference() {
        let o = Owner::parse(b"dummy\r\neth0\n");
        assert!(o.is("dummy", "eth0"));
        assert!(o.is(" dummy ", "eth0"));
        assert!(!o.is("dummy", "eth1"));
        assert!(!o.is_legacy("dummy"));
        assert!(Owner::parse(b"dummy").is_legacy("dummy"));
        // LF alone is not the separator: such a file is a (non-matching) legacy ID.
        assert!(!Owner::parse(b"dummy\neth0").is("dummy", "eth0"));
    }
}
