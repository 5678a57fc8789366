//! Throwaway namespaces for root tests.
//!
//! A [`Lab`] owns one "node" namespace and some pod namespaces, all named
//! `vnt-<pid>-<n>`, and deletes them on drop (also when the test panics). Code under test
//! runs via [`Lab::in_node`] on a thread that entered the node namespace, so
//! `Node::open`'s host side is the node namespace, never the root one.

use std::{
    fs::File,
    panic,
    path::PathBuf,
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    thread,
};

use nix::sched::CloneFlags;
use serde_json::Value;

use crate::net::Node;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
/// `ip netns add/del` race on the first mount of /run/netns when run in parallel.
static NETNS_LOCK: Mutex<()> = Mutex::new(());

/// Whether the effective uid is 0 (from /proc: nix's `user` feature is not enabled).
pub(crate) fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// `None` (after a loud note on stderr) when the tests cannot run here.
pub(crate) fn root_or_skip(test: &str) -> bool {
    if !is_root() {
        eprintln!("SKIPPED: needs root ({test})");
    }
    is_root()
}

pub(crate) struct Lab {
    pub node: String,
    pub pods: Vec<String>,
}

impl Lab {
    /// A node namespace and `pods` pod namespaces, or `None` when not root.
    pub fn new(test: &str, pods: usize) -> Option<Lab> {
        if !root_or_skip(test) {
            return None;
        }
        let mut lab = Lab {
            node: String::new(),
            pods: Vec::new(),
        };
        lab.node = add_netns();
        for _ in 0..pods {
            let pod = add_netns();
            lab.pods.push(pod);
        }
        Some(lab)
    }

    pub fn pod(&self, i: usize) -> &str {
        &self.pods[i]
    }

    pub fn pod_path(&self, i: usize) -> PathBuf {
        netns_path(&self.pods[i])
    }

    /// Run `f` on a thread inside the node namespace; a panic in `f` fails the test.
    pub fn in_node<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let ns = File::open(netns_path(&self.node)).unwrap();
        thread::scope(|s| {
            let worker = s.spawn(move || {
                nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                f()
            });
            worker.join().unwrap_or_else(|p| panic::resume_unwind(p))
        })
    }

    /// `Node::open` from inside the node namespace, with pod `pod` if given.
    pub fn with_node<T: Send>(&self, pod: Option<usize>, f: impl FnOnce(&Node) -> T + Send) -> T {
        let path = pod.map(|i| self.pod_path(i));
        self.in_node(move || {
            let node = Node::open(path.as_deref()).unwrap();
            f(&node)
        })
    }

    /// `ip -n <ns> <args>`, which must succeed.
    pub fn ip(&self, ns: &str, args: &[&str]) {
        run("ip", &[&["-n", ns], args].concat());
    }

    /// `ip -n <ns> -j <args>` parsed; `ip -j` prints nothing for an empty list.
    pub fn ip_json(&self, ns: &str, args: &[&str]) -> Value {
        let out = output("ip", &[&["-n", ns, "-j"], args].concat());
        if out.trim().is_empty() {
            Value::Array(Vec::new())
        } else {
            serde_json::from_str(&out).unwrap()
        }
    }

    /// `ip -d link show dev <name>` as JSON, `None` if the link does not exist.
    pub fn link(&self, ns: &str, name: &str) -> Option<Value> {
        let links = self.ip_json(ns, &["-d", "link", "show"]);
        links
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == name)
            .cloned()
    }

    /// The `local/prefixlen` strings of `dev` in `ns`.
    pub fn addrs(&self, ns: &str, dev: &str) -> Vec<String> {
        let v = self.ip_json(ns, &["addr", "show", "dev", dev]);
        v[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect()
    }

    /// `ip netns exec <ns> <cmd>` stdout (trimmed), which must succeed.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> String {
        output("ip", &[&["netns", "exec", ns], cmd].concat())
            .trim()
            .to_string()
    }

    /// Whether `ip netns exec <ns> <cmd>` exits 0.
    pub fn exec_ok(&self, ns: &str, cmd: &[&str]) -> bool {
        Command::new("ip")
            .args([&["netns", "exec", ns], cmd].concat())
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _lock = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        for ns in self.pods.iter().chain([&self.node]) {
            if !ns.is_empty() {
                let _ = Command::new("ip").args(["netns", "del", ns]).output();
            }
        }
    }
}

fn netns_path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

fn add_netns() -> String {
    let name = format!(
        "vnt-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    );
    let _lock = NETNS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    run("ip", &["netns", "add", &name]);
    name
}

fn run(cmd: &str, args: &[&str]) {
    output(cmd, args);
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
