//! Releasing and looking up reservations by owner (DEL, CHECK, GC). Pure over a [`Store`].
use super::store::{Owner, Store};
use super::IpamError;
use std::net::IpAddr;

/// Frees every address of (id, ifname); if there is none, the legacy ID-only ones of `id`.
pub(crate) fn release(
    store: &mut impl Store,
    id: &str,
    ifname: &str,
) -> Result<Vec<IpAddr>, IpamError> {
    let mut ips = store.held_by(id, ifname)?;
    if ips.is_empty() {
        ips = store.held_by_legacy(id)?;
    }
    remove_all(store, ips)
}

/// The addresses of (id, ifname), else the legacy ID-only ones of `id`.
pub(crate) fn find(store: &impl Store, id: &str, ifname: &str) -> Result<Vec<IpAddr>, IpamError> {
    let ips = store.held_by(id, ifname)?;
    if ips.is_empty() {
        return store.held_by_legacy(id);
    }
    Ok(ips)
}

/// Frees every reservation whose owner is not in `valid`. A legacy entry survives if its ID
/// appears with any ifname. Entries of unknown owner (empty or unreadable files) are kept:
/// without an owner there is no proof they are stale.
pub(crate) fn gc(
    store: &mut impl Store,
    valid: &[(String, String)],
) -> Result<Vec<IpAddr>, IpamError> {
    let stale: Vec<IpAddr> = store
        .entries()?
        .into_iter()
        .filter(|(_, owner)| match owner {
            Owner::Attachment { .. } => !valid.iter().any(|(id, ifn)| owner.is(id, ifn)),
            Owner::Legacy { .. } => !valid.iter().any(|(id, _)| owner.is_legacy(id)),
            Owner::Unknown => false,
        })
        .map(|(ip, _)| ip)
        .collect();
    remove_all(store, stale)
}

/// Removes each address, reporting those actually removed. Goes on after a failure and
/// returns the first error, so one bad file does not pin all the others.
fn remove_all(store: &mut impl Store, ips: Vec<IpAddr>) -> Result<Vec<IpAddr>, IpamError> {
    let mut removed = Vec::new();
    let mut first_err = None;
    for ip in ips {
        match store.remove(ip) {
            Ok(true) => removed.push(ip),
            Ok(false) => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(removed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::mem_store::MemStore;

    fn ips(v: &[IpAddr]) -> Vec<String> {
        v.iter().map(IpAddr::to_string).collect()
    }

    fn store() -> MemStore {
        MemStore::with(&[
            ("10.1.2.2", "a\r\neth0"),
            ("10.1.2.3", "a\r\neth1"),
            ("2001:db8::2", "a\r\neth0"),
            ("10.1.2.4", "b\r\neth0"),
            ("10.1.2.5", "old"),
            ("10.1.2.6", ""),
        ])
    }

    #[test]
    fn release_by_id_and_ifname_frees_all_families() {
        let mut s = store();
        let freed = release(&mut s, "a", "eth0").unwrap();
        assert_eq!(ips(&freed), ["10.1.2.2", "2001:db8::2"]);
        assert_eq!(s.ips(), ["10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]);
    }

    #[test]
    fn release_falls_back_to_legacy_id_only_files() {
        let mut s = store();
        assert_eq!(ips(&release(&mut s, "old", "eth0").unwrap()), ["10.1.2.5"]);
        assert!(!s.ips().contains(&"10.1.2.5".to_string()));
    }

    #[test]
    fn release_of_unknown_id_is_ok_and_empty() {
        let mut s = store();
        assert!(release(&mut s, "nobody", "eth0").unwrap().is_empty());
        assert_eq!(s.files.len(), 6);
    }

    #[test]
    fn find_prefers_exact_then_legacy() {
        let s = store();
        assert_eq!(ips(&find(&s, "a", "eth1").unwrap()), ["10.1.2.3"]);
        assert_eq!(ips(&find(&s, "old", "eth9").unwrap()), ["10.1.2.5"]);
        assert!(find(&s, "a", "eth9").unwrap().is_empty());
    }

    #[test]
    fn gc_keeps_valid_and_unknown_frees_the_rest() {
        let mut s = store();
        let valid = vec![
            ("a".to_string(), "eth0".to_string()),
            ("old".to_string(), "eth7".to_string()),
        ];
        let freed = gc(&mut s, &valid).unwrap();
        assert_eq!(ips(&freed), ["10.1.2.3", "10.1.2.4"]);
        assert_eq!(s.ips(), ["10.1.2.2", "10.1.2.5", "10.1.2.6", "2001:db8::2"]);
    }

    #[test]
    fn gc_with_empty_valid_list_frees_every_owned_entry() {
        let mut s = store();
        assert_eq!(gc(&mut s, &[]).unwrap().len(), 5);
        assert_eq!(s.ips(), ["10.1.2.6"]);
    }
}
