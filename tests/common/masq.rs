//! vnet's nftables table in a node namespace, as plain values: the chain's rules and the
//! pod sets' elements (read with `nft -j`, the program a person would use).

use serde_json::Value;

use super::Netns;

/// What `table inet vnet` holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Masq {
    /// Comments of the chain's rules, sorted.
    pub rules: Vec<String>,
    /// `(set, address, comment)` of every set element, sorted.
    pub elems: Vec<(String, String, String)>,
    /// The rules as `nft list` prints them.
    pub text: String,
}

pub fn masq(node: &Netns) -> Masq {
    let out = node.exec(&["nft", "-j", "list", "table", "inet", "vnet"]);
    if !out.status.success() {
        return Masq::default();
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = v["nftables"].as_array().unwrap();
    let mut m = Masq::default();
    for i in items {
        if let Some(r) = i.get("rule") {
            m.rules
                .push(r["comment"].as_str().unwrap_or_default().to_string());
        }
        if let Some(s) = i.get("set") {
            let name = s["name"].as_str().unwrap().to_string();
            for e in s["elem"].as_array().into_iter().flatten() {
                let (addr, comment) = match e.get("elem") {
                    Some(el) => (
                        el["val"].as_str().unwrap_or_default(),
                        el["comment"].as_str().unwrap_or_default(),
                    ),
                    None => (e.as_str().unwrap_or_default(), ""),
                };
                m.elems
                    .push((name.clone(), addr.to_string(), comment.to_string()));
            }
        }
    }
    m.rules.sort();
    m.elems.sort();
    let text = node.exec(&["nft", "list", "table", "inet", "vnet"]);
    m.text = String::from_utf8_lossy(&text.stdout).into_owned();
    m
}

impl Masq {
    /// The rules' comments without a network rule's fingerprint of its exclusions
    /// (`vnet testnet v4:1a2b3c4d` → `vnet testnet`), sorted.
    pub fn rule_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .rules
            .iter()
            .map(|c| match c.rsplit_once(' ') {
                Some((head, last)) if last.starts_with("v4:") || last.starts_with("v6:") => {
                    head.to_string()
                }
                _ => c.clone(),
            })
            .collect();
        v.sort();
        v
    }

    /// `(address, comment)` of the elements, whatever the set.
    pub fn tagged(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .elems
            .iter()
            .map(|(_, a, c)| (a.clone(), c.clone()))
            .collect();
        v.sort();
        v
    }
}
