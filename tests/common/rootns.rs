//! The machine's own network namespace, as the tests' promise to leave it alone: a
//! snapshot of its links, addresses, routes, rules and nftables ruleset taken before a
//! test and compared after it. Runtime tests (podman, containerd) start programs that
//! could create bridges, veths or firewall rules wherever they run; this is the check
//! that they did so only inside the test's own namespaces.

use std::process::Command;

/// What the root namespace looks like, as text that is stable between two reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootNs {
    parts: Vec<(String, String)>,
}

fn read(cmd: &[&str]) -> String {
    match Command::new(cmd[0]).args(&cmd[1..]).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("<{} not run: {e}>", cmd[0]),
    }
}

/// `ip -o` lines without the counters and states that change on their own.
fn links() -> String {
    let mut v: Vec<String> = read(&["ip", "-o", "link", "show"])
        .lines()
        .map(|l| {
            // "N: name: <FLAGS> mtu M ... state X ..." – keep index, name, kind-relevant
            // flags and mtu; drop the carrier state, which a cable may flip.
            let f: Vec<&str> = l.split_whitespace().collect();
            f.iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("LOWER_UP,", "")
                .replace(",LOWER_UP", "")
        })
        .collect();
    v.sort();
    v.join("\n")
}

fn lines(cmd: &[&str]) -> String {
    let mut v: Vec<String> = read(cmd)
        .lines()
        // Dynamic (SLAAC, DHCP) lifetimes count down between reads.
        .map(|l| {
            l.split(" valid_lft")
                .next()
                .unwrap_or(l)
                .trim_end()
                .to_string()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    v.sort();
    v.join("\n")
}

impl RootNs {
    pub fn snapshot() -> RootNs {
        let mut parts = vec![
            ("links".to_string(), links()),
            ("addrs".into(), lines(&["ip", "-o", "addr", "show"])),
            (
                "routes4".into(),
                lines(&["ip", "-4", "route", "show", "table", "all"]),
            ),
            (
                "routes6".into(),
                lines(&["ip", "-6", "route", "show", "table", "all"]),
            ),
            ("rules".into(), lines(&["ip", "rule", "show"])),
        ];
        if std::path::Path::new("/usr/sbin/nft").exists() {
            // Counters (`counter packets N bytes M`) move with the machine's own traffic.
            let rules = read(&["/usr/sbin/nft", "-s", "list", "ruleset"]);
            parts.push(("nft".into(), rules));
        }
        RootNs { parts }
    }

    /// Panics naming every part that differs from `self`, with both versions.
    pub fn assert_unchanged(&self) {
        let now = RootNs::snapshot();
        let mut diffs = Vec::new();
        for ((k, before), (_, after)) in self.parts.iter().zip(now.parts.iter()) {
            if before != after {
                diffs.push(format!("{k}:\n--- before\n{before}\n--- after\n{after}"));
            }
        }
        assert!(
            diffs.is_empty(),
            "the machine's own network namespace changed:\n{}",
            diffs.join("\n")
        );
    }
}
