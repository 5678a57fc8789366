//! `vnet ipam status`: pool usage, reservations and findings, as a table or as JSON (the
//! JSON is documented in docs/ipam.md; keep it stable).

use std::time::SystemTime;

use clap::Args;
use serde_json::{json, Value};

use crate::ipam::{self, Finding, Format, IndexState, NetworkStatus, SetUsage};

use super::ipam::{describe, emit, human_age, resolve, table, Target};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    target: Target,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Skip the list of reservations (human output).
    #[arg(long)]
    summary: bool,
    /// Report a range set at or above this percentage used.
    #[arg(long, default_value_t = 90.0)]
    warn_percent: f64,
}

pub fn run(a: &StatusArgs) -> Result<i32, String> {
    let r = resolve(&a.target, false)?;
    let mut reports = Vec::new();
    for net in &r.networks {
        let s = ipam::status(&r.data_dir, &net.name, net.sets.as_deref(), a.warn_percent)
            .map_err(|e| describe(&e))?;
        reports.push(s);
    }
    let findings: usize = reports.iter().map(|r| r.findings.len()).sum();
    let now = SystemTime::now();
    if a.json {
        let nets: Vec<Value> = reports.iter().map(|r| network_json(r, now)).collect();
        let doc = json!({"networks": nets, "findings": findings});
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        if reports.is_empty() {
            emit(&format!(
                "no networks under {}: nothing reserved\n",
                r.data_dir.display()
            ));
        }
        for rep in &reports {
            emit(&network_text(rep, now, a.summary));
        }
    }
    Ok(i32::from(findings > 0))
}

fn age(modified: Option<SystemTime>, now: SystemTime) -> Option<u64> {
    modified.map(|m| now.duration_since(m).map_or(0, |d| d.as_secs()))
}

/// Sizes beyond u64 (IPv6 ranges wider than a /64) are reported as u64::MAX.
fn num(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn pct(reserved: u128, size: u128) -> f64 {
    (ipam::percent(reserved, size) * 100.0).round() / 100.0
}

fn index_name(i: IndexState) -> &'static str {
    match i {
        IndexState::Absent => "absent",
        IndexState::Stale => "stale",
        IndexState::Valid => "valid",
        IndexState::Mismatch => "mismatch",
    }
}

fn format_name(f: &Format) -> &'static str {
    match f {
        Format::Current => "current",
        Format::Legacy => "legacy",
        Format::Malformed(_) => "malformed",
    }
}

fn set_json(s: &SetUsage) -> Value {
    let ranges: Vec<Value> = s
        .ranges
        .iter()
        .map(|r| {
            json!({
                "subnet": r.range.subnet().to_string(),
                "range_start": r.range.start().to_string(),
                "range_end": r.range.end().to_string(),
                "gateway": r.range.gateway().to_string(),
                "size": num(r.size),
                "reserved": num(r.reserved),
                "free": num(r.size.saturating_sub(r.reserved)),
                "used_percent": pct(r.reserved, r.size),
            })
        })
        .collect();
    json!({
        "index": s.index,
        "size": num(s.size()),
        "reserved": num(s.reserved()),
        "free": num(s.size().saturating_sub(s.reserved())),
        "used_percent": pct(s.reserved(), s.size()),
        "last_reserved": s.last_reserved,
        "ranges": ranges,
    })
}

fn network_json(r: &NetworkStatus, now: SystemTime) -> Value {
    let reservations: Vec<Value> = r
        .reservations
        .iter()
        .map(|v| {
            let problem = match &v.format {
                Format::Malformed(p) => Some(p.as_str()),
                _ => None,
            };
            json!({
                "address": v.ip.to_string(),
                "container_id": v.container_id,
                "ifname": v.ifname,
                "format": format_name(&v.format),
                "problem": problem,
                "range_set": v.set,
                "age_seconds": age(v.modified, now),
                "path": v.path,
            })
        })
        .collect();
    json!({
        "name": r.network,
        "dir": r.dir,
        "exists": r.exists,
        "locked": r.locked,
        "index": index_name(r.index),
        "range_sets": r.sets.as_ref().map(|s| s.iter().map(set_json).collect::<Vec<_>>()),
        "reservations": reservations,
        "findings": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

fn finding_json(f: &Finding) -> Value {
    let mut v = match f {
        Finding::Malformed { ip, path, problem } => json!({
            "kind": "malformed", "address": ip.to_string(), "path": path, "detail": problem,
        }),
        Finding::OutsideRanges { ip, path } => json!({
            "kind": "outside_ranges", "address": ip.to_string(), "path": path,
        }),
        Finding::GatewayReserved { ip, path } => json!({
            "kind": "gateway_reserved", "address": ip.to_string(), "path": path,
        }),
        Finding::Duplicate {
            id,
            ifname,
            scope,
            ips,
        } => json!({
            "kind": "duplicate", "container_id": id, "ifname": ifname, "scope": scope,
            "addresses": ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Finding::PoolExhausted { set } => json!({"kind": "pool_exhausted", "range_set": set}),
        Finding::PoolNearlyExhausted { set, used_percent } => json!({
            "kind": "pool_nearly_exhausted", "range_set": set,
            "used_percent": (used_percent * 100.0).round() / 100.0,
        }),
        Finding::StaleTempFile { path } => json!({"kind": "stale_temp_file", "path": path}),
        Finding::StrayFile { path } => json!({"kind": "stray_file", "path": path}),
        Finding::IndexMismatch => json!({"kind": "index_mismatch"}),
    };
    v["message"] = json!(message(f));
    v
}

/// One line a person can act on.
fn message(f: &Finding) -> String {
    match f {
        Finding::Malformed { ip, path, problem } => format!(
            "{ip}: {problem} ({}); the address stays taken until released by address",
            path.display()
        ),
        Finding::OutsideRanges { ip, .. } => {
            format!("{ip} is in no configured range (config changed since it was reserved?)")
        }
        Finding::GatewayReserved { ip, .. } => {
            format!("{ip} is a range's gateway, yet reserved for a container")
        }
        Finding::Duplicate {
            id,
            ifname,
            scope,
            ips,
        } => {
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            let who = match ifname {
                Some(i) => format!("{id}/{i}"),
                None => format!("{id} (legacy, no ifname)"),
            };
            format!(
                "{who} holds {} addresses in {scope}: {}",
                ips.len(),
                list.join(", ")
            )
        }
        Finding::PoolExhausted { set } => {
            format!("range set {set} is exhausted: ADD fails until addresses are released")
        }
        Finding::PoolNearlyExhausted { set, used_percent } => {
            format!("range set {set} is {used_percent:.1}% used")
        }
        Finding::StaleTempFile { path } => format!(
            "{}: temp file of an interrupted vnet write; the next vnet call that reads the \
             whole directory removes it once its writer's PID is gone",
            path.display()
        ),
        Finding::StrayFile { path } => format!(
            "{}: neither a reservation nor host-local bookkeeping",
            path.display()
        ),
        Finding::IndexMismatch => "vnet's index disagrees with the reservation files (a file \
             edited in place?); delete .vnet-index to rebuild it"
            .to_string(),
    }
}

fn usage_rows(sets: &[SetUsage]) -> Vec<Vec<String>> {
    let mut rows = vec![[
        "SET",
        "RANGE",
        "GATEWAY",
        "SIZE",
        "RESERVED",
        "FREE",
        "USED",
        "LAST RESERVED",
    ]
    .map(String::from)
    .to_vec()];
    for s in sets {
        let last = s.last_reserved.clone().unwrap_or_else(|| "-".into());
        let row = |set: String, range: String, gw: String, size: u128, res: u128, last: String| {
            vec![
                set,
                range,
                gw,
                size.to_string(),
                res.to_string(),
                size.saturating_sub(res).to_string(),
                format!("{:.1}%", ipam::percent(res, size)),
                last,
            ]
        };
        if s.ranges.len() > 1 {
            rows.push(row(
                s.index.to_string(),
                "(all ranges)".into(),
                String::new(),
                s.size(),
                s.reserved(),
                last.clone(),
            ));
        }
        for (i, r) in s.ranges.iter().enumerate() {
            let set = if s.ranges.len() == 1 {
                s.index.to_string()
            } else {
                String::new()
            };
            let range = format!("{} ({})", r.range, r.range.subnet());
            let last = if i == 0 && s.ranges.len() == 1 {
                last.clone()
            } else {
                String::new()
            };
            rows.push(row(
                set,
                range,
                r.range.gateway().to_string(),
                r.size,
                r.reserved,
                last,
            ));
        }
    }
    rows
}

fn network_text(r: &NetworkStatus, now: SystemTime, summary: bool) -> String {
    let mut out = format!("network {}  ({})\n", r.network, r.dir.display());
    if !r.exists {
        out.push_str("  no directory yet: nothing reserved\n");
    }
    out.push_str(&format!(
        "  {} reservations; index {}{}\n\n",
        r.reservations.len(),
        index_name(r.index),
        if r.exists && !r.locked {
            "; read without the lock"
        } else {
            ""
        }
    ));
    match &r.sets {
        Some(sets) => out.push_str(&indent(&table(&usage_rows(sets)))),
        None => {
            out.push_str("  ranges unknown (no --conf): usage and range findings not computed\n")
        }
    }
    if !summary && !r.reservations.is_empty() {
        let mut rows = vec![["ADDRESS", "CONTAINER", "IFNAME", "AGE", "FORMAT"]
            .map(String::from)
            .to_vec()];
        for v in &r.reservations {
            rows.push(vec![
                v.ip.to_string(),
                v.container_id.clone().unwrap_or_else(|| "?".into()),
                v.ifname.clone().unwrap_or_else(|| "-".into()),
                age(v.modified, now).map_or_else(|| "?".into(), human_age),
                format_name(&v.format).to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&indent(&table(&rows)));
    }
    if r.findings.is_empty() {
        out.push_str("\n  no findings\n\n");
    } else {
        out.push_str(&format!("\n  findings ({}):\n", r.findings.len()));
        for f in &r.findings {
            let kind = finding_json(f)["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            out.push_str(&format!("    {kind:<22} {}\n", message(f)));
        }
        out.push('\n');
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
