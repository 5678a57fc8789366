//! `vnet ipam status|gc|release`: see, clean and repair the host-local store.
//!
//! Exit codes: `status` 0 clean, 1 findings; `gc` 0 done; `release` 0 released, 1 nothing
//! matched; every command 2 on a usage or I/O error.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::ipam::{IpamConf, RangeSet};

use super::ipam_gc::{self, GcArgs};
use super::ipam_release::{self, ReleaseArgs};
use super::ipam_status::{self, StatusArgs};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

#[derive(Args)]
pub struct IpamArgs {
    #[command(subcommand)]
    cmd: IpamCmd,
}

#[derive(Subcommand)]
enum IpamCmd {
    /// Pool usage, reservations and findings (exit 0 clean, 1 findings, 2 error).
    Status(StatusArgs),
    /// Release reservations of containers that no longer exist (dry run unless --apply).
    Gc(GcArgs),
    /// Release an address, or what a container holds, under the plugin's lock.
    Release(ReleaseArgs),
}

/// Which store to look at: a network config, or a data directory.
#[derive(Args)]
pub struct Target {
    /// Network config (.conf or .conflist) with host-local IPAM: gives the network name,
    /// dataDir and ranges.
    #[arg(long, short, conflicts_with = "data_dir")]
    pub conf: Option<PathBuf>,
    /// Data directory holding one directory per network (ranges unknown)
    /// [default: /var/lib/cni/networks].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Network name (a directory under the data directory).
    #[arg(long)]
    pub network: Option<String>,
}

/// One network to work on, with its ranges when a config gave them.
pub struct Network {
    pub name: String,
    pub sets: Option<Vec<RangeSet>>,
}

pub struct Resolved {
    pub data_dir: PathBuf,
    pub networks: Vec<Network>,
}

pub fn main(a: &IpamArgs) -> i32 {
    let result = match &a.cmd {
        IpamCmd::Status(s) => ipam_status::run(s),
        IpamCmd::Gc(g) => ipam_gc::run(g),
        IpamCmd::Release(r) => ipam_release::run(r),
    };
    result.unwrap_or_else(|e| {
        eprintln!("vnet ipam: {e}");
        2
    })
}

/// An IPAM error with its causes, for a person.
pub fn describe(e: &crate::ipam::IpamError) -> String {
    crate::cni::error::with_causes(e)
}

/// The networks `t` designates. `one` requires exactly one (for commands that change it).
pub fn resolve(t: &Target, one: bool) -> Result<Resolved, String> {
    if let Some(path) = &t.conf {
        let (data_dir, net) = from_conf(path)?;
        if t.network.as_ref().is_some_and(|n| *n != net.name) {
            return Err(format!(
                "--network {:?} differs from the config's name {:?}",
                t.network.as_deref().unwrap_or_default(),
                net.name
            ));
        }
        return Ok(Resolved {
            data_dir,
            networks: vec![net],
        });
    }
    let data_dir = t
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let names = match &t.network {
        Some(n) => vec![n.clone()],
        None if one => return Err("say which network: --network NAME or --conf FILE".into()),
        None => list_networks(&data_dir)?,
    };
    Ok(Resolved {
        data_dir,
        networks: names
            .into_iter()
            .map(|name| Network { name, sets: None })
            .collect(),
    })
}

fn list_networks(data_dir: &Path) -> Result<Vec<String>, String> {
    let rd = match std::fs::read_dir(data_dir) {
        Ok(rd) => rd,
        // No store yet (no pod has ever had an address here): nothing is reserved, as
        // --conf says for a network directory not made yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("read {}: {e}", data_dir.display())),
    };
    let mut names: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Reads a .conf, or the first plugin of a .conflist whose `ipam.type` is host-local.
fn from_conf(path: &Path) -> Result<(PathBuf, Network), String> {
    let text = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let v: Value =
        serde_json::from_slice(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let is_host_local = |p: &Value| p["ipam"]["type"] == "host-local";
    let netconf = match v.get("plugins").and_then(Value::as_array) {
        Some(plugins) => {
            let p = plugins
                .iter()
                .find(|p| is_host_local(p))
                .ok_or_else(|| format!("{}: no plugin with host-local IPAM", path.display()))?;
            let mut c = p.clone();
            c["name"] = v["name"].clone();
            c["cniVersion"] = v["cniVersion"].clone();
            c
        }
        None if is_host_local(&v) => v,
        None => {
            return Err(format!(
                "{}: ipam.type is not host-local; vnet ipam reads host-local stores only",
                path.display()
            ))
        }
    };
    let name = netconf["name"]
        .as_str()
        .ok_or_else(|| format!("{}: no network name", path.display()))?
        .to_string();
    let conf = IpamConf::parse(&netconf, &[]).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((
        conf.data_dir,
        Network {
            name,
            sets: Some(conf.range_sets),
        },
    ))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Reads `path`, or stdin for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("read stdin: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))
}

/// `30`, `30s`, `10m`, `2h`, `1d` as seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("invalid duration {s:?}: use s, m, h or d")),
    };
    Ok(n * mult)
}

/// `1d4h`, `3h12m`, `5m`, `42s`.
pub fn human_age(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// Left-aligned columns separated by two spaces; trailing spaces trimmed.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            // Padded by hand: `format!`'s width is a u16, and an owner read from disk
            // can be longer than that (it aborted the process).
            .map(|(c, s)| format!("{s}{}", " ".repeat(width[c] - s.chars().count())))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_wider_than_u16_does_not_abort() {
        let long = "x".repeat(70_000);
        let t = table(&[vec![long.clone(), "b".into()], vec!["a".into(), "c".into()]]);
        assert!(t.starts_with(&format!("{long}  b\n")));
        assert!(t.ends_with(&format!("a{}  c\n", " ".repeat(69_999))));
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(parse_duration("90").unwrap(), 90);
        assert_eq!(parse_duration("10m").unwrap(), 600);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert!(parse_duration("5w").is_err() && parse_duration("m").is_err());
        assert_eq!(human_age(42), "42s");
        assert_eq!(human_age(3 * 3600 + 12 * 60 + 5), "3h12m");
        assert_eq!(human_age(86400 + 4 * 3600), "1d4h");
    }

    #[test]
    fn table_aligns_columns() {
        let rows = vec![
            vec!["A".to_string(), "BB".to_string(), "".to_string()],
            vec!["ccc".to_string(), "d".to_string(), "e".to_string()],
        ];
        assert_eq!(table(&rows), "A    BB\nccc  d   e\n");
    }
}
