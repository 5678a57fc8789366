//! Shared by the tests/ipam_*.rs files: vnet as the IPAM plugin alone (a `host-local`
//! symlink to the built binary) on a throwaway data directory, and the `vnet ipam` CLI.
//! IPAM-only calls touch no kernel state, so they run in the test's own namespace.
#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{json, Value};

use crate::common::{Call, Cni, TempDir, BIN, REF_DIR};

pub const NET: &str = "ipamnet";

/// A data directory, a `host-local` symlink to vnet, and the config that ties them.
pub struct Store {
    pub data: TempDir,
    pub bin: TempDir,
    pub conf: Value,
}

impl Store {
    /// `ipam` is the `ipam` object without type and dataDir.
    pub fn new(ipam: Value) -> Store {
        let data = TempDir::new("ipd");
        let bin = TempDir::new("ipb");
        symlink(BIN, bin.path().join("host-local")).unwrap();
        let mut ipam = ipam;
        ipam["type"] = json!("host-local");
        ipam["dataDir"] = json!(data.path());
        let conf = json!({"cniVersion": "1.0.0", "name": NET, "type": "bridge", "ipam": ipam});
        Store { data, bin, conf }
    }

    pub fn subnet(subnet: &str) -> Store {
        Store::new(json!({"subnet": subnet}))
    }

    pub fn host_local(&self) -> PathBuf {
        self.bin.path().join("host-local")
    }

    pub fn dir(&self) -> PathBuf {
        self.data.path().join(NET)
    }

    /// The config written to a file, for `vnet ipam --conf`.
    pub fn conf_file(&self) -> PathBuf {
        let p = self.data.path().join("net.conf");
        std::fs::write(&p, self.conf.to_string()).unwrap();
        p
    }

    fn cni(&self, bin: &Path, command: &str, id: &str, ifname: &str) -> Cni<'static> {
        Cni::new(None)
            .bin(bin)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", "/run/netns/vnet-ipam-only")
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", REF_DIR)
    }

    pub fn call(&self, command: &str, id: &str) -> Call {
        self.call_if(command, id, "eth0")
    }

    pub fn call_if(&self, command: &str, id: &str, ifname: &str) -> Call {
        self.cni(&self.host_local(), command, id, ifname)
            .run_json(&self.conf)
    }

    /// The same call by the reference host-local.
    pub fn reference(&self, reference: &Path, command: &str, id: &str) -> Call {
        self.cni(reference, command, id, "eth0")
            .run_json(&self.conf)
    }

    /// ADD, returning the address (without prefix).
    pub fn add(&self, id: &str) -> String {
        let r = self.call("ADD", id).ok().json();
        ip_of(&r)
    }

    pub fn del(&self, id: &str) {
        self.call("DEL", id).ok();
    }

    /// A plugin call started but not waited for (to kill it, or run many at once).
    pub fn spawn(&self, command: &str, id: &str, crash_at: Option<&str>) -> Child {
        let mut cmd = Command::new(self.host_local());
        cmd.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", "/run/netns/vnet-ipam-only")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", REF_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            cmd.env("VNET_CRASH_AT", point);
        }
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(self.conf.to_string().as_bytes());
        child
    }

    /// `vnet ipam <args…> --conf <this store's config>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let conf = self.conf_file();
        let mut all: Vec<&str> = vec!["ipam"];
        all.extend_from_slice(args);
        all.extend(["--conf", conf.to_str().unwrap()]);
        vnet(&all)
    }

    /// Reservation files: (address, content), sorted by name.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let Ok(rd) = std::fs::read_dir(self.dir()) else {
            return Vec::new();
        };
        let mut v: Vec<(String, Vec<u8>)> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<std::net::IpAddr>().is_ok())
            .map(|n| {
                let c = std::fs::read(self.dir().join(&n)).unwrap_or_default();
                (n, c)
            })
            .collect();
        v.sort();
        v
    }

    /// Every name in the network directory.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    pub fn write(&self, name: &str, content: &[u8]) {
        std::fs::create_dir_all(self.dir()).unwrap();
        std::fs::write(self.dir().join(name), content).unwrap();
    }

    /// `vnet ipam status --json` for this store: (exit code, document).
    pub fn status_json(&self) -> (i32, Value) {
        let out = self.cli(&["status", "--json"]);
        let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status --json printed no JSON ({e}): {} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    }
}

/// Runs `vnet <args>` as the CLI (no CNI_* variables).
pub fn vnet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The first address of an ADD result, without prefix.
pub fn ip_of(result: &Value) -> String {
    let a = result["ips"][0]["address"].as_str().unwrap();
    a.split('/').next().unwrap().to_string()
}

/// Deterministic pseudo-random numbers (xorshift64*), seeded per test.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
