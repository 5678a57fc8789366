//! `VNET_TRACE`: the plan each call applies, as the iproute2 commands `vnet explain`
//! prints, so a student can watch what a runtime's call did. `VNET_TRACE=1` writes to
//! stderr; a path (`VNET_TRACE=/tmp/vnet.log`) appends there, since runtimes often drop a
//! successful plugin's stderr. stdout stays reserved for the CNI result.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::explain::store;
use crate::ipam::{AddPreview, Allocation};
use crate::net::Node;
use crate::plan::render::{delegate_line, lines, render, Facts, Line, PodNs};
use crate::plan::Op;

/// Traces `ops` as they will run on `node`: what exists already (the bridge, its
/// gateway, the network's masquerade set) is read first, so the trace shows the commands
/// that really run, not a fresh node's. Reads nothing unless tracing is on.
pub fn plan_on(node: &Node, command: &str, id: &str, netns: Option<&std::path::Path>, ops: &[Op]) {
    if enabled().is_none() {
        return;
    }
    // The address phase of a delegated IPAM has no EnsureBridge, but may put the gateway
    // on the bridge.
    let bridge = ops.iter().find_map(|op| match op {
        Op::EnsureBridge { name, .. } => Some(name.as_str()),
        Op::EnsureBridgeAddr { dev, .. } => Some(dev.as_str()),
        _ => None,
    });
    let network = ops.iter().find_map(|op| match op {
        Op::AddMasquerade { network, .. } => Some(network.as_str()),
        _ => None,
    });
    let facts = match bridge {
        Some(b) => node.facts(b, network),
        None => Facts::default(),
    };
    write_ops(command, id, netns, ops, &facts);
}

pub fn enabled() -> Option<std::ffi::OsString> {
    std::env::var_os("VNET_TRACE").filter(|v| !v.is_empty() && v != "0")
}

/// Traces ops that do not depend on what exists (deletions, route sync).
pub fn plan(command: &str, id: &str, netns: Option<&std::path::Path>, ops: &[Op]) {
    write_ops(command, id, netns, ops, &Facts::default());
}

/// The store's steps of an ADD that reserved `allocs` in `dir`, as `vnet explain` prints
/// them: `last_before` is each range set's `last_reserved_ip` read before the
/// reservation (read only when tracing).
pub fn ipam_add(
    dir: PathBuf,
    last_before: Vec<Option<IpAddr>>,
    allocs: &[Allocation],
    id: &str,
    ifname: &str,
) {
    let preview = AddPreview {
        dir,
        allocations: allocs.to_vec(),
        last_before,
    };
    write("ADD IPAM", id, None, store::add_lines(&preview, id, ifname));
}

/// The store's steps of a DEL releasing `held` from `dir`.
pub fn ipam_del(dir: &Path, held: &[IpAddr], id: &str, ifname: &str) {
    write(
        "DEL IPAM",
        id,
        None,
        store::del_lines(dir, held, id, ifname),
    );
}

/// A delegated IPAM plugin's call, with the path it runs from.
pub fn delegate(command: &str, id: &str, plugin: &Path) {
    if enabled().is_none() {
        return;
    }
    let line = delegate_line(command, &plugin.display().to_string());
    write(&format!("{command} IPAM"), id, None, vec![line]);
}

fn write_ops(command: &str, id: &str, netns: Option<&Path>, ops: &[Op], facts: &Facts) {
    if enabled().is_none() {
        return;
    }
    let netns_text = netns.map(|p| p.display().to_string()).unwrap_or_default();
    let body = lines(ops, &PodNs::from_path(&netns_text), facts);
    write(command, id, netns, body);
}

fn write(command: &str, id: &str, netns: Option<&Path>, body: Vec<Line>) {
    let Some(target) = enabled() else {
        return;
    };
    let netns = netns.map(|p| p.display().to_string()).unwrap_or_default();
    let mut all = vec![Line::note(format!("vnet {command} {id} {netns}"))];
    all.extend(body);
    let text = render(&all);
    if target == "1" {
        eprint!("{text}");
        return;
    }
    // O_NONBLOCK: a FIFO without a reader at that path fails (ENXIO) instead of holding
    // the call, and with it the store's lock, for ever.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NONBLOCK)
        .mode(0o600)
        .open(&target);
    if let Err(e) = file.and_then(|mut f| f.write_all(text.as_bytes())) {
        eprintln!(
            "vnet: VNET_TRACE {}: {e}",
            std::path::Path::new(&target).display()
        );
    }
}
