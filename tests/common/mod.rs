//! Black-box harness: the built `vnet` binary, run with real `CNI_*` variables inside a
//! throwaway "node" network namespace, with pods as further namespaces. Nothing is
//! created in the machine's own namespace; everything is removed on drop, also when a
//! test fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub mod chain;
pub mod dhcp;
pub mod lab;
pub mod masq;
pub mod rootns;
pub mod state;

use serde_json::{json, Value};

/// The binary under test: cargo's build of this crate, or the one named by `VNET_TEST_BIN`
/// when the tests were compiled (scripts/test.sh runs them once more against the build
/// scripts/install.sh ships).
pub const BIN: &str = match option_env!("VNET_TEST_BIN") {
    Some(bin) => bin,
    None => env!("CARGO_BIN_EXE_vnet"),
};
pub const REF_DIR: &str = "/usr/lib/cni";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Root tests say so loudly when they cannot run; under CI they must run.
pub fn root_or_skip(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root and CI is not root");
    }
    eprintln!("\n*** SKIPPED {test}: needs root (network namespaces) ***\n");
    false
}

pub fn reference_or_skip(test: &str, plugin: &str) -> Option<PathBuf> {
    let p = Path::new(REF_DIR).join(plugin);
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test} needs {} (Debian containernetworking-plugins)",
            p.display()
        );
    }
    eprintln!(
        "\n*** SKIPPED {test}: {} missing (apt-get install containernetworking-plugins) ***\n",
        p.display()
    );
    None
}

/// Whether `tool` is on PATH.
pub fn has_tool(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Like [`reference_or_skip`], for a program `.ci/run` installs.
pub fn tool_or_skip(test: &str, tool: &str) -> bool {
    if has_tool(tool) {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs {tool} (.ci/run installs it)");
    }
    eprintln!("\n*** SKIPPED {test}: {tool} missing (apt-get install {tool}) ***\n");
    false
}

pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("vt{}{}{}", std::process::id(), tag, n)
}

pub fn sh(cmd: &[&str]) -> Output {
    Command::new(cmd[0]).args(&cmd[1..]).output().unwrap()
}

pub fn sh_ok(cmd: &[&str]) -> String {
    let out = sh(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace under /run/netns, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        sh_ok(&["ip", "netns", "add", &name]);
        sh_ok(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn ip_json(&self, args: &[&str]) -> Value {
        let mut cmd = vec!["ip", "-n", &self.name, "-j"];
        cmd.extend_from_slice(args);
        let text = sh_ok(&cmd);
        if text.trim().is_empty() {
            return json!([]);
        }
        serde_json::from_str(&text).unwrap()
    }

    /// Interface names in this namespace.
    pub fn links(&self) -> Vec<String> {
        self.ip_json(&["link", "show"])
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }

    /// Links named `veth…` (host ends of pods' veths, on a node).
    pub fn veths(&self) -> Vec<String> {
        self.links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect()
    }

    /// A bridge holding `addr` (not up), as a node that had it before vnet came.
    pub fn add_bridge(&self, name: &str, addr: &str) {
        let n = self.name.as_str();
        sh_ok(&["ip", "-n", n, "link", "add", name, "type", "bridge"]);
        sh_ok(&["ip", "-n", n, "addr", "add", addr, "dev", name]);
    }

    pub fn link(&self, name: &str) -> Option<Value> {
        let v = self.ip_json(&["-d", "link", "show"]);
        v.as_array()
            .unwrap()
            .iter()
            .find(|l| l["ifname"] == name)
            .cloned()
    }

    /// `addr/prefix` strings of global addresses on `dev`.
    pub fn addrs(&self, dev: &str) -> Vec<String> {
        let v = self.ip_json(&["addr", "show", "dev", dev]);
        let mut out = Vec::new();
        for link in v.as_array().unwrap() {
            for a in link["addr_info"].as_array().into_iter().flatten() {
                if a["scope"] == "global" {
                    out.push(format!(
                        "{}/{}",
                        a["local"].as_str().unwrap(),
                        a["prefixlen"]
                    ));
                }
            }
        }
        out
    }

    pub fn routes(&self, family: &str) -> Vec<Value> {
        self.ip_json(&[family, "route", "show"])
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn exec(&self, cmd: &[&str]) -> Output {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(cmd);
        sh(&full)
    }

    pub fn ping(&self, addr: &str) -> bool {
        let six = if addr.contains(':') { "-6" } else { "-4" };
        // A couple of tries: the very first packet may wait for neighbour resolution.
        self.exec(&[
            "ping", six, "-c", "2", "-i", "0.2", "-W", "2", "-w", "4", addr,
        ])
        .status
        .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one plugin call printed and returned.
#[derive(Debug)]
pub struct Call {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?} stderr {:?}",
                self.stdout, self.stderr
            )
        })
    }
    pub fn ok(self) -> Call {
        assert_eq!(
            self.code, 0,
            "plugin failed: {} {}",
            self.stdout, self.stderr
        );
        self
    }
    /// Asserts failure with the CNI error `code` and returns the error object.
    pub fn err(self, code: u64) -> Value {
        assert_ne!(self.code, 0, "expected failure, got {}", self.stdout);
        let v = self.json();
        assert_eq!(v["code"], code, "wrong CNI code: {v}");
        assert!(
            v["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "no msg: {v}"
        );
        v
    }
}

/// One plugin invocation. `node` None runs in the test's own namespace (only for
/// commands that touch no kernel state: VERSION, IPAM-only).
pub struct Cni<'a> {
    pub bin: PathBuf,
    pub node: Option<&'a Netns>,
    pub env: Vec<(String, String)>,
}

impl<'a> Cni<'a> {
    pub fn new(node: Option<&'a Netns>) -> Cni<'a> {
        Cni {
            bin: PathBuf::from(BIN),
            node,
            env: Vec::new(),
        }
    }
    pub fn bin(mut self, p: impl Into<PathBuf>) -> Self {
        self.bin = p.into();
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn pod(self, command: &str, id: &str, netns: &str, ifname: &str) -> Self {
        self.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", REF_DIR)
    }
    pub fn run(&self, stdin: &[u8]) -> Call {
        let mut cmd = match self.node {
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &n.name]).arg(&self.bin);
                c
            }
            None => Command::new(&self.bin),
        };
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        Call {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
    pub fn run_json(&self, conf: &Value) -> Call {
        self.run(conf.to_string().as_bytes())
    }
}

/// A node namespace with its own IPAM data directory and a standard config.
pub struct Node {
    pub ns: Netns,
    pub data: TempDir,
    pub conf: Value,
}

impl Node {
    pub fn new(subnet: &str) -> Node {
        let ns = Netns::new("n");
        let data = TempDir::new("d");
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "testnet",
            "type": "vnet",
            "bridge": "v-net-0",
            "isGateway": true,
            "isDefaultGateway": true,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": data.path()}
        });
        Node { ns, data, conf }
    }

    pub fn call(&self, command: &str, id: &str, pod: &str, ifname: &str, conf: &Value) -> Call {
        Cni::new(Some(&self.ns))
            .pod(command, id, pod, ifname)
            .run_json(conf)
    }

    pub fn add(&self, id: &str, pod: &Netns) -> Call {
        self.call("ADD", id, &pod.path(), "eth0", &self.conf)
    }

    pub fn del(&self, id: &str, pod_path: &str) -> Call {
        self.call("DEL", id, pod_path, "eth0", &self.conf)
    }

    /// Directory holding this network's reservation files.
    pub fn net_dir(&self) -> PathBuf {
        let name = self.conf["name"].as_str().unwrap();
        self.data.path().join(name)
    }

    /// Reserved addresses (files named by an IP) in the store.
    pub fn reserved(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.net_dir()) else {
            return Vec::new();
        };
        let mut v: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .collect();
        v.sort();
        v
    }

    /// Host-side veths on the node.
    pub fn veths(&self) -> Vec<String> {
        self.ns.veths()
    }
}

/// The conf with `cniVersion` and `prevResult` set, as a runtime passes to CHECK/DEL.
pub fn with_prev(conf: &Value, prev: &Value) -> Value {
    let mut c = conf.clone();
    c["prevResult"] = prev.clone();
    c
}

/// The node's LAN side: a veth pair inside the node namespace (no `dummy` links here),
/// `lan0` holding the node IP so the other nodes' IPs are on-link gateways.
pub fn lan_side(ns: &Netns, ip: &str) {
    let n = ns.name.as_str();
    sh_ok(&[
        "ip", "-n", n, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
    ]);
    sh_ok(&["ip", "-n", n, "addr", "add", ip, "dev", "lan0"]);
    sh_ok(&["ip", "-n", n, "link", "set", "lan0", "up"]);
    sh_ok(&["ip", "-n", n, "link", "set", "lan1", "up"]);
}
