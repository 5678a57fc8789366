//! `vnet ipam gc`: release reservations whose container is gone, judged against one
//! source of truth. Dry run unless `--apply`.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{ArgGroup, Args};
use serde_json::{json, Value};

use crate::cni::config::valid_attachments;
use crate::ipam::{self, Held, Owner, Sweep};

use super::ipam::{describe, emit, human_age, parse_duration, read_input, resolve, Target};
use super::ipam_netns;

#[derive(Args)]
#[command(group(ArgGroup::new("source").required(true).args(["valid", "containers", "netns"])))]
pub struct GcArgs {
    #[command(flatten)]
    target: Target,
    /// Valid attachments: a CNI GC config (with "cni.dev/valid-attachments") or a JSON list
    /// of {"containerID", "ifname"}; `-` reads stdin.
    #[arg(long)]
    valid: Option<PathBuf>,
    /// IDs of the sandboxes that exist, one per line (`crictl pods -q --no-trunc`); `-`
    /// reads stdin.
    #[arg(long)]
    containers: Option<PathBuf>,
    /// Keep an address if an interface named like its reservation's ifname holds it in any
    /// network namespace this host can see (see docs/ipam.md for the limits).
    #[arg(long)]
    netns: bool,
    /// Keep reservations younger than this (30s, 10m, 2h, 1d): their container may have
    /// started after the list was taken.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    min_age: u64,
    /// Accept an empty list (then every reservation old enough is stale).
    #[arg(long)]
    allow_empty: bool,
    /// Release; without it, only print what would be released.
    #[arg(long)]
    apply: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What the source of truth says is in use.
enum Truth {
    Attachments(Vec<(String, String)>),
    Containers(HashSet<String>),
    Addresses(HashSet<IpAddr>),
}

impl Truth {
    fn in_use(&self, h: &Held) -> bool {
        match (self, &h.owner) {
            (Truth::Attachments(v), Owner::Attachment { .. }) => {
                v.iter().any(|(id, ifname)| h.owner.is(id, ifname))
            }
            (Truth::Attachments(v), Owner::Legacy { .. }) => {
                v.iter().any(|(id, _)| h.owner.is_legacy(id))
            }
            (Truth::Containers(ids), Owner::Attachment { id, .. } | Owner::Legacy { id }) => {
                ids.contains(id)
            }
            (Truth::Addresses(live), _) => live.contains(&h.ip),
            (_, Owner::Unknown) => true,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Truth::Attachments(_) => "valid-attachments",
            Truth::Containers(_) => "containers",
            Truth::Addresses(_) => "netns",
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Truth::Attachments(v) => v.is_empty(),
            Truth::Containers(v) => v.is_empty(),
            Truth::Addresses(_) => false,
        }
    }
}

fn read_attachments(path: &Path) -> Result<Truth, String> {
    let bytes = read_input(path)?;
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    // A bare list is the value of "cni.dev/valid-attachments".
    let conf = if v.is_array() {
        json!({"cni.dev/valid-attachments": v})
    } else {
        v
    };
    valid_attachments(&conf)
        .map(Truth::Attachments)
        .map_err(|e| format!("{}: {}", path.display(), e.msg))
}

fn read_containers(path: &Path) -> Result<Truth, String> {
    let text = String::from_utf8(read_input(path)?)
        .map_err(|_| format!("{}: not text", path.display()))?;
    let ids = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    Ok(Truth::Containers(ids))
}

fn old_enough(h: &Held, min_age: u64, now: SystemTime) -> bool {
    // An unknown age is not proof of age.
    h.modified
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|d| d.as_secs() >= min_age)
}

pub fn run(a: &GcArgs) -> Result<i32, String> {
    let r = resolve(&a.target, true)?;
    let net = &r.networks[0];
    let truth = match (&a.valid, &a.containers) {
        (Some(p), _) => read_attachments(p)?,
        (_, Some(p)) => read_containers(p)?,
        _ => {
            let ifnames = reservation_ifnames(&r.data_dir, &net.name)?;
            Truth::Addresses(ipam_netns::live_addresses(&ifnames)?)
        }
    };
    if truth.is_empty() && !a.allow_empty {
        return Err(format!(
            "the {} list is empty: every reservation would be released; pass --allow-empty if that is meant",
            truth.name()
        ));
    }
    let now = SystemTime::now();
    let stale = |h: &Held| !truth.in_use(h) && old_enough(h, a.min_age, now);
    let sweep = ipam::sweep(&r.data_dir, &net.name, a.apply, stale).map_err(|e| describe(&e))?;
    if a.json {
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&gc_json(&net.name, truth.name(), a.apply, &sweep, now))
                .unwrap_or_default()
        ));
    } else {
        emit(&gc_text(&net.name, a.apply, &sweep, now));
    }
    Ok(0)
}

/// The interface names recorded in the store, to look for in each namespace.
fn reservation_ifnames(
    data_dir: &std::path::Path,
    network: &str,
) -> Result<BTreeSet<String>, String> {
    let s = ipam::status(data_dir, network, None, 100.0).map_err(|e| describe(&e))?;
    let mut names: BTreeSet<String> = s
        .reservations
        .into_iter()
        .filter_map(|r| r.ifname)
        .collect();
    // Legacy files carry no ifname; CNI's default is eth0.
    names.insert("eth0".into());
    Ok(names)
}

fn owner_text(o: &Owner) -> String {
    match o {
        Owner::Attachment { id, ifname } => format!("{id}/{ifname}"),
        Owner::Legacy { id } => format!("{id} (legacy)"),
        Owner::Unknown => "?".into(),
    }
}

fn held_json(h: &Held, now: SystemTime) -> Value {
    let (id, ifname) = match &h.owner {
        Owner::Attachment { id, ifname } => (Some(id), Some(ifname)),
        Owner::Legacy { id } => (Some(id), None),
        Owner::Unknown => (None, None),
    };
    json!({
        "address": h.ip.to_string(),
        "container_id": id,
        "ifname": ifname,
        "age_seconds": h.modified.and_then(|m| now.duration_since(m).ok()).map(|d| d.as_secs()),
    })
}

fn gc_json(network: &str, source: &str, applied: bool, s: &Sweep, now: SystemTime) -> Value {
    json!({
        "network": network,
        "source": source,
        "applied": applied,
        "stale": s.stale.iter().map(|h| held_json(h, now)).collect::<Vec<_>>(),
        "kept": s.kept,
        "unknown_owner": s.unknown.iter().map(|h| held_json(h, now)).collect::<Vec<_>>(),
    })
}

fn gc_text(network: &str, applied: bool, s: &Sweep, now: SystemTime) -> String {
    let total = s.stale.len() + s.kept + s.unknown.len();
    let verb = if applied { "released" } else { "would release" };
    let mut out = format!(
        "network {network}: {} stale of {total} reservations",
        s.stale.len()
    );
    out.push_str(if applied || s.stale.is_empty() {
        "\n"
    } else {
        " (dry run; --apply releases them)\n"
    });
    for h in &s.stale {
        let age = h
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .map_or("?".into(), |d| human_age(d.as_secs()));
        out.push_str(&format!(
            "  {verb} {}  {}  age {age}\n",
            h.ip,
            owner_text(&h.owner)
        ));
    }
    for h in &s.unknown {
        out.push_str(&format!(
            "  kept {}: owner unreadable; check it, then `vnet ipam release {}`\n",
            h.ip, h.ip
        ));
    }
    out
}
