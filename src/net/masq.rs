//! Masquerade rules in vnet's own nftables table, through the `nft` program's JSON
//! interface (`nft -j`): the one place vnet runs a program, since nftables has no
//! netlink library here that is not a hand-built byte format.
//!
//! ```text
//! table inet vnet {
//!   chain postrouting {
//!     type nat hook postrouting priority srcnat; policy accept;
//!     ip saddr 10.244.1.2 ip daddr != { 10.244.0.0/16, 224.0.0.0/4 } masquerade comment "vnet v-net c1 eth0"
//!   }
//! }
//! ```
//!
//! Each rule carries the attachment's tag as its comment, so DEL and GC find it from the
//! network name, container ID and ifname alone: no pod namespace, no pod address.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{json, Value};

use crate::plan::{NFT_CHAIN, NFT_FAMILY, NFT_TABLE};

use super::netns;
use super::{NetError, Node};

impl Node {
    /// Add one masquerade rule per source address (creating table and chain if needed),
    /// all in one atomic nft transaction.
    pub(crate) fn add_masquerade(
        &self,
        srcs: &[IpAddr],
        exclude: &[IpNet],
        tag: &str,
    ) -> Result<(), NetError> {
        let batch = add_batch(srcs, exclude, tag);
        self.nft(
            &format!("add masquerade rules {tag:?}"),
            &["-f", "-"],
            Some(&batch),
        )
        .map(drop)
    }

    /// Delete every rule of vnet's chain whose comment is `tag`; returns how many.
    pub(crate) fn del_masquerade(&self, tag: &str) -> Result<usize, NetError> {
        let handles: Vec<u64> = self
            .masquerade_rules()?
            .into_iter()
            .filter(|(_, comment)| comment == tag)
            .map(|(handle, _)| handle)
            .collect();
        if handles.is_empty() {
            return Ok(0);
        }
        let batch = delete_batch(&handles);
        let op = format!("delete masquerade rules {tag:?}");
        self.nft(&op, &["-f", "-"], Some(&batch))?;
        Ok(handles.len())
    }

    /// `(handle, comment)` of every rule in vnet's chain; none when the table is absent.
    pub fn masquerade_rules(&self) -> Result<Vec<(u64, String)>, NetError> {
        let op = format!("list table {NFT_FAMILY} {NFT_TABLE}");
        match self.nft(&op, &["list", "table", NFT_FAMILY, NFT_TABLE], None) {
            Ok(listing) => Ok(rules_of(&listing)),
            // nft tells a missing table only in text; ask for the table list instead of
            // reading its message.
            Err(e) => {
                let tables = self.nft("list tables", &["list", "tables", NFT_FAMILY], None)?;
                if has_table(&tables) {
                    Err(e)
                } else {
                    Ok(Vec::new())
                }
            }
        }
    }

    /// Run `nft -j <args>` in the host namespace (on a thread that entered it, so a
    /// `Node` moved to another thread still changes the right namespace).
    fn nft(&self, op: &str, args: &[&str], stdin: Option<&Value>) -> Result<Value, NetError> {
        let fail = |msg: String| NetError::Nft {
            op: op.to_string(),
            msg,
        };
        let program = nft_program().ok_or_else(|| {
            fail(
                "the nft program was not found in PATH, /usr/sbin or /sbin (install nftables)"
                    .into(),
            )
        })?;
        let input = stdin.map(Value::to_string);
        let run = || run_nft(&program, args, input.as_deref());
        let out = netns::run_in(&self.host.ns, run)
            .map_err(|e| NetError::Namespace(e.describe("host")))?
            .map_err(fail)?;
        if out.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&out).map_err(|e| fail(format!("unreadable nft output: {e}")))
    }
}

/// Whether the `nft` program can be found (STATUS for a network with `ipMasq`).
pub fn nft_available() -> bool {
    nft_program().is_some()
}

/// `nft` from the absolute directories of `PATH`, then `/usr/sbin` and `/sbin`. vnet runs
/// it as root, so an empty or relative `PATH` entry (the working directory) is skipped,
/// and so is a program root does not own or that others may write.
fn nft_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join("nft"))
        .find(|p| trusted_program(p))
}

fn trusted_program(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.uid() == 0 && m.mode() & 0o022 == 0)
}

fn run_nft(program: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut child = Command::new(program)
        .arg("-j")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| format!("write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait for nft: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("").trim();
    Err(format!("nft exited with {}: {first}", out.status))
}

/// The transaction adding table, chain and one rule per source address.
pub(crate) fn add_batch(srcs: &[IpAddr], exclude: &[IpNet], tag: &str) -> Value {
    let mut cmds = vec![
        json!({"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}}),
        json!({"add": {"chain": {
            "family": NFT_FAMILY, "table": NFT_TABLE, "name": NFT_CHAIN,
            "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"
        }}}),
    ];
    for src in srcs {
        cmds.push(json!({"add": {"rule": {
            "family": NFT_FAMILY, "table": NFT_TABLE, "chain": NFT_CHAIN,
            "comment": tag,
            "expr": rule_exprs(*src, exclude),
        }}}));
    }
    json!({ "nftables": cmds })
}

/// `ip saddr SRC ip daddr != { EXCLUDE..., multicast } masquerade`. Multicast is never
/// masqueraded: rewriting its source breaks protocols that reply to the sender.
fn rule_exprs(src: IpAddr, exclude: &[IpNet]) -> Value {
    const MCAST4: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4);
    const MCAST6: Ipv6Net = Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8);
    let (proto, multicast) = match src {
        IpAddr::V4(_) => ("ip", IpNet::V4(MCAST4)),
        IpAddr::V6(_) => ("ip6", IpNet::V6(MCAST6)),
    };
    let prefixes: Vec<Value> = exclude
        .iter()
        .filter(|n| n.addr().is_ipv4() == src.is_ipv4())
        .chain(std::iter::once(&multicast))
        .map(|n| json!({"prefix": {"addr": n.network().to_string(), "len": n.prefix_len()}}))
        .collect();
    let field = |name: &str| json!({"payload": {"protocol": proto, "field": name}});
    json!([
        {"match": {"op": "==", "left": field("saddr"), "right": src.to_string()}},
        {"match": {"op": "!=", "left": field("daddr"), "right": {"set": prefixes}}},
        {"masquerade": null},
    ])
}

pub(crate) fn delete_batch(handles: &[u64]) -> Value {
    let cmds: Vec<Value> = handles
        .iter()
        .map(|h| {
            json!({"delete": {"rule": {
                "family": NFT_FAMILY, "table": NFT_TABLE, "chain": NFT_CHAIN, "handle": h
            }}})
        })
        .collect();
    json!({ "nftables": cmds })
}

/// `(handle, comment)` of the rules of vnet's chain in a `nft -j list` answer.
pub(crate) fn rules_of(listing: &Value) -> Vec<(u64, String)> {
    items(listing)
        .filter_map(|item| item.get("rule"))
        .filter(|r| r["table"] == NFT_TABLE && r["chain"] == NFT_CHAIN && r["family"] == NFT_FAMILY)
        .filter_map(|r| {
            let handle = r["handle"].as_u64()?;
            let comment = r["comment"].as_str().unwrap_or_default().to_string();
            Some((handle, comment))
        })
        .collect()
}

fn has_table(listing: &Value) -> bool {
    items(listing)
        .filter_map(|item| item.get("table"))
        .any(|t| t["name"] == NFT_TABLE && t["family"] == NFT_FAMILY)
}

fn items(listing: &Value) -> impl Iterator<Item = &Value> {
    listing["nftables"].as_array().into_iter().flatten()
}

#[cfg(test)]
#[path = "masq_tests.rs"]
mod tests;
