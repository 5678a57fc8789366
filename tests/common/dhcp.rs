//! DHCP IPAM for real: a node namespace whose bridge holds the gateway, busybox `udhcpd`
//! answering on that bridge, and the reference `dhcp` daemon (`/usr/lib/cni/dhcp daemon`)
//! with a private socket, both running inside the node namespace and killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{reference_or_skip, root_or_skip, sh, sh_ok, tool_or_skip, Call, Cni, Netns, TempDir};

/// The pool the server hands out: `<prefix>.200` to `<prefix>.209`.
pub const POOL: (u8, u8) = (200, 209);

/// One lease as the server's lease file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub mac: String,
    pub ip: String,
    /// Unix time it expires; `None` once released (busybox writes "expired").
    pub expires: Option<u64>,
}

pub struct DhcpNode {
    pub ns: Netns,
    pub dir: TempDir,
    /// The network config: vnet, bridge `v-net-0`, `ipam.type` dhcp with the private socket.
    pub conf: Value,
    pub gateway: String,
    /// The lease time the server gives, in seconds.
    pub lease: u64,
    pub dhcp: PathBuf,
    server: Option<Child>,
    daemon: Option<Child>,
}

/// Kills a child of ours and reaps it.
fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl DhcpNode {
    /// A node for `prefix` (e.g. "10.250.1"): bridge v-net-0 up with `<prefix>.1/24`, the
    /// server configured for `lease` seconds. Nothing runs yet. `None`: skipped (not root,
    /// no busybox or no reference plugins).
    pub fn new(test: &str, prefix: &str, lease: u32) -> Option<DhcpNode> {
        if !root_or_skip(test) || !tool_or_skip(test, "busybox") {
            return None;
        }
        let dhcp = reference_or_skip(test, "dhcp")?;
        let ns = Netns::new("dh");
        let dir = TempDir::new("dhcp");
        let gateway = format!("{prefix}.1");
        ns.add_bridge("v-net-0", &format!("{gateway}/24"));
        let n = ns.name.as_str();
        sh_ok(&["ip", "-n", n, "link", "set", "v-net-0", "up"]);
        let d = dir.path().display();
        let (first, last) = POOL;
        std::fs::write(
            dir.path().join("udhcpd.conf"),
            format!(
                "interface v-net-0\nstart {prefix}.{first}\nend {prefix}.{last}\n\
                 lease_file {d}/udhcpd.leases\npidfile {d}/udhcpd.pid\nauto_time 1\n\
                 option subnet 255.255.255.0\noption router {gateway}\noption lease {lease}\n"
            ),
        )
        .unwrap();
        std::fs::write(dir.path().join("udhcpd.leases"), "").unwrap();
        let conf = json!({
            "cniVersion": "1.0.0",
            "name": "dhcpnet",
            "type": "vnet",
            "bridge": "v-net-0",
            "isGateway": true,
            "ipam": {"type": "dhcp", "daemonSocketPath": dir.path().join("dhcp.sock")}
        });
        Some(DhcpNode {
            ns,
            dir,
            conf,
            gateway,
            lease: lease.into(),
            dhcp,
            server: None,
            daemon: None,
        })
    }

    /// [`new`](Self::new), with the server and the daemon running.
    pub fn serving(test: &str, prefix: &str, lease: u32) -> Option<DhcpNode> {
        let mut n = DhcpNode::new(test, prefix, lease)?;
        n.start_server();
        n.start_daemon("5s");
        Some(n)
    }

    fn spawn(&self, log: &str, cmd: &[&str]) -> Child {
        let log = std::fs::File::create(self.dir.path().join(log)).unwrap();
        Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// busybox udhcpd on v-net-0, in the foreground; a short ARP check before an offer.
    pub fn start_server(&mut self) {
        let conf = self.dir.path().join("udhcpd.conf");
        let child = self.spawn(
            "udhcpd.log",
            &[
                "busybox",
                "udhcpd",
                "-f",
                "-a",
                "300",
                conf.to_str().unwrap(),
            ],
        );
        self.server = Some(child);
        self.wait_for("udhcpd.pid");
    }

    /// The reference daemon on its private socket. `timeout` bounds each DHCP exchange
    /// and its retries (the default gives up after about a minute without a server).
    pub fn start_daemon(&mut self, timeout: &str) {
        let sock = self.dir.path().join("dhcp.sock");
        let _ = std::fs::remove_file(&sock);
        let dhcp = self.dhcp.display().to_string();
        let child = self.spawn(
            "daemon.log",
            &[
                &dhcp,
                "daemon",
                "-socketpath",
                sock.to_str().unwrap(),
                "-timeout",
                timeout,
                "-resendmax",
                timeout,
            ],
        );
        self.daemon = Some(child);
        self.wait_for("dhcp.sock");
    }

    pub fn stop_daemon(&mut self) {
        stop(&mut self.daemon);
    }

    fn wait_for(&self, file: &str) {
        let p = self.dir.path().join(file);
        let t0 = Instant::now();
        while !p.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{file} did not appear: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's and the daemon's logs, for failure messages.
    pub fn logs(&self) -> String {
        ["udhcpd.log", "daemon.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                format!("--- {f} ---\n{text}")
            })
            .collect()
    }

    pub fn call(&self, command: &str, id: &str, netns: &str, conf: &Value) -> Call {
        Cni::new(Some(&self.ns))
            .pod(command, id, netns, "eth0")
            .run_json(conf)
    }

    /// The server's leases. Its lease file is empty until udhcpd first writes it, then
    /// rewritten in place every second: a read that finds it empty or catches it
    /// half-written fails ("short read") and counts as no lease seen yet.
    pub fn leases(&self) -> Vec<Lease> {
        let file = self.dir.path().join("udhcpd.leases");
        let out = sh(&[
            "busybox",
            "dumpleases",
            "-a",
            "-d",
            "-f",
            file.to_str().unwrap(),
        ]);
        if !out.status.success() {
            return Vec::new();
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some(Lease {
                    mac: f.first()?.to_string(),
                    ip: f.get(1)?.to_string(),
                    expires: f.last()?.parse().ok(),
                })
            })
            .collect()
    }

    /// Waits (up to `secs`) until the lease of `ip` satisfies `ok`; returns it.
    pub fn wait_lease(&self, ip: &str, secs: u64, ok: impl Fn(&Lease) -> bool) -> Lease {
        let t0 = Instant::now();
        loop {
            let found = self.leases().into_iter().find(|l| l.ip == ip);
            if let Some(l) = found.filter(&ok) {
                return l;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "lease of {ip} never got there: {:?}\n{}",
                self.leases(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn veths(&self) -> Vec<String> {
        self.ns.veths()
    }

    /// The ports of the bridge.
    pub fn bridge_ports(&self) -> Vec<String> {
        let v = self.ns.ip_json(&["link", "show", "master", "v-net-0"]);
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .collect()
    }
}

impl Drop for DhcpNode {
    fn drop(&mut self) {
        stop(&mut self.daemon);
        stop(&mut self.server);
    }
}
