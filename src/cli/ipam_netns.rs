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

use crate::cni::error::with_causes;
use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::net::{NetError, Node, Ns};

/// Namespace files to look at, one per distinct namespace.
fn namespaces() -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in ["/run/netns", "/var/run/netns"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            paths.extend(rd.filter_map(Result::ok).map(|e| e.path()));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        paths.extend(
            rd.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|e| e.path().join("ns/net")),
        );
    }
    let mut seen = HashSet::new();
    // stat follows /proc's magic links to the nsfs inode; a bind mount shows the same one.
    paths
        .into_iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| seen.insert((m.dev(), m.ino()))))
        .collect()
}

/// A namespace or process that vanished while we looked is simply gone. EINVAL: not a
/// namespace file, e.g. a /run/netns entry between `ip netns add`'s create and mount, or
/// between `ip netns del`'s unmount and unlink; it holds no addresses.
fn vanished(e: &NetError) -> bool {
    e.netns_gone()
        || matches!(
            e.errno(),
            Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EINVAL)
        )
}

fn addresses_in(
    path: &Path,
    ifnames: &BTreeSet<String>,
    out: &mut HashSet<IpAddr>,
) -> Result<(), String> {
    // The namespace this command runs in is one of them: read it as the host side (the
    // plugin refuses it as a pod's, which is right for the plugin and wrong here).
    let (node, ns) = match Node::open(Some(path)) {
        Ok(n) => (n, Ns::Pod),
        Err(NetError::OwnNamespace { .. }) => match Node::open(None) {
            Ok(n) => (n, Ns::Host),
            Err(e) => {
                return Err(format!(
                    "cannot inspect this namespace: {}",
                    with_causes(&e)
                ))
            }
        },
        Err(e) if vanished(&e) => return Ok(()),
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
