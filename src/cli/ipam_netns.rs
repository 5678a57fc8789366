//! The addresses live network namespaces hold, as a source of truth for `vnet ipam gc
//! --netns`.
//!
//! The store records (container ID, ifname) per address, never the namespace, so which
//! namespace belongs to which container is not knowable from it. What can be checked is
//! whether an address is still configured somewhere: on an interface with the recorded
//! name, in a namespace this host can reach. Reachable means bind-mounted under
//! /run/netns or /var/run/netns (containerd, CRI-O, podman, `ip netns`) or used by a
//! running process (/proc/<pid>/ns/net). A namespace held only by an open descriptor, or
//! in another mount namespace, is invisible, and its addresses would look free.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::Path;

use crate::cni::error::with_causes;
use crate::net::live::{namespaces, open_to_read};

fn addresses_in(
    path: &Path,
    ifnames: &BTreeSet<String>,
    out: &mut HashSet<IpAddr>,
) -> Result<(), String> {
    let (node, ns) = match open_to_read(path) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(format!(
                "cannot inspect namespace {}: {}; refusing to guess",
                path.display(),
                with_causes(&e)
            ))
        }
    };
    for ifname in ifnames {
        match node.addrs(ns, ifname) {
            Ok(addrs) => out.extend(addrs.iter().map(|a| a.addr())),
            Err(e) if e.errno() == Some(libc::ENODEV) => {}
            Err(e) => {
                return Err(format!(
                    "list addresses in {}: {}",
                    path.display(),
                    with_causes(&e)
                ))
            }
        }
    }
    Ok(())
}

/// Every address on an interface named in `ifnames`, in every reachable namespace.
pub fn live_addresses(ifnames: &BTreeSet<String>) -> Result<HashSet<IpAddr>, String> {
    let mut out = HashSet::new();
    for path in namespaces() {
        addresses_in(&path, ifnames, &mut out)?;
    }
    Ok(out)
}
