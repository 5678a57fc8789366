//! A private containerd (Debian's 1.6) whose CRI plugin runs pod sandboxes on vnet,
//! inside a node network namespace the test made, driven by `cri_client.py` (the calls a
//! kubelet makes). Everything it creates is removed on drop, also after a failure.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::calls::{self, CniCall};
use crate::common::{self, sh_ok, Netns, TempDir, BIN, REF_DIR};
use crate::leftovers;

/// Debian's python, which sees Debian's python3-grpcio (the `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri/cri_client.py");
const IMAGE_BUILDER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri/pause_image.py");
const IMAGE: &str = "localhost/vnet-pause:test";
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Closes every descriptor above 2, then runs argv[1:] with PATH alone: not python's own
/// environment, to which it adds LC_CTYPE=C.UTF-8 (PEP 538) in the C locale.
const CLOSE_FDS_AND_EXEC: &str = "import os, sys; os.closerange(3, 1 << 20); \
     os.execvpe(sys.argv[1], sys.argv[1:], {'PATH': os.environ['PATH']})";
/// The node's address on its link to the client namespace (both made by the test).
pub const NODE_IP: &str = "192.168.50.1";
const CLIENT_IP: &str = "192.168.50.2";
pub const POD_NAMESPACE: &str = "vnet-test";

static SUBNETS: AtomicUsize = AtomicUsize::new(0);

/// Root, the tools, the reference plugins and Debian's grpc for python; under CI a missing
/// one fails the test instead of skipping it.
pub fn ready_or_skip(test: &str) -> bool {
    if !common::root_or_skip(test) {
        return false;
    }
    let tools = [
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "runc",
        "nsenter",
        "busybox",
        "iptables",
        "nft",
        "ping",
    ];
    if !tools.iter().all(|t| common::tool_or_skip(test, t)) {
        return false;
    }
    if ["portmap", "loopback"]
        .iter()
        .any(|p| common::reference_or_skip(test, p).is_none())
    {
        return false;
    }
    let grpc = Command::new(PYTHON)
        .args(["-c", "import grpc, grpc_tools.protoc"])
        .output()
        .is_ok_and(|o| o.status.success());
    if grpc {
        return true;
    }
    let what = "python3-grpcio and python3-grpc-tools for /usr/bin/python3";
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs {what} (.ci/run installs them)");
    }
    eprintln!("\n*** SKIPPED {test}: {what} missing (apt-get install them) ***\n");
    false
}

/// What `PodSandboxStatus` said of a pod.
#[derive(Debug, Clone)]
pub struct PodStatus {
    pub state: String,
    pub ip: String,
    /// The pod's network namespace, a bind mount under containerd's state dir.
    pub netns: String,
}

/// A process the test started in a pod's namespace, killed on drop.
pub struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct CriNode {
    pub node: Netns,
    /// A second namespace linked to the node: "another host" for the port mapping.
    pub client: Netns,
    pub dir: TempDir,
    /// The CNI network (conflist `name`) and its pod subnet.
    pub net: String,
    pub subnet: Ipv4Net,
    bridge: String,
    /// Pod cgroups go under this parent (what a kubelet passes), so that a cleanup after a
    /// failure finds them, and their processes, in one place.
    cgroup_parent: String,
    containerd: Option<Child>,
    /// Pods run and not yet removed.
    pods: RefCell<Vec<String>>,
}

impl CriNode {
    /// A node whose conflist is vnet (subnet of `prefix` bits) → portmap → loopback, and
    /// containerd started on it with the pause image imported.
    pub fn start(prefix: u8) -> CriNode {
        let n = SUBNETS.fetch_add(1, Ordering::SeqCst);
        let subnet = format!(
            "10.{}.{}.0/{prefix}",
            100 + std::process::id() % 100,
            n % 256
        );
        let mut me = CriNode {
            node: Netns::new("cn"),
            client: Netns::new("cc"),
            dir: TempDir::new("cri"),
            net: common::unique("net"),
            subnet: subnet.parse().unwrap(),
            bridge: common::unique("b"),
            cgroup_parent: format!("/{}", common::unique("cg")),
            containerd: None,
            pods: RefCell::new(Vec::new()),
        };
        me.link_client();
        me.write_cni();
        me.write_config();
        me.spawn_containerd();
        me.wait_ready();
        me.import_pause_image();
        me
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    pub fn socket(&self) -> String {
        self.p("containerd.sock")
    }

    pub fn bin_dir(&self) -> String {
        self.p("bin")
    }

    /// The node and the client namespace on one veth pair, NODE_IP/24 and CLIENT_IP/24.
    fn link_client(&self) {
        let (node, client) = (&self.node.name, &self.client.name);
        sh_ok(&[
            "ip", "link", "add", "up0", "netns", node, "type", "veth", "peer", "name", "eth0",
            "netns", client,
        ]);
        for (ns, dev, addr) in [(node, "up0", NODE_IP), (client, "eth0", CLIENT_IP)] {
            sh_ok(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                dev,
            ]);
            sh_ok(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// bin_dir: vnet, portmap and loopback behind a wrapper that records each call's
    /// environment and stdin in `calls/`; conf_dir: the one conflist.
    fn write_cni(&self) {
        fs::create_dir_all(self.path("bin")).unwrap();
        fs::create_dir_all(self.path("calls")).unwrap();
        fs::create_dir_all(self.path("net.d")).unwrap();
        let plugins = [
            ("vnet", PathBuf::from(BIN)),
            ("portmap", Path::new(REF_DIR).join("portmap")),
            ("loopback", Path::new(REF_DIR).join("loopback")),
        ];
        for (name, real) in plugins {
            let script = calls::wrapper(&self.path("calls"), name, &real);
            let path = self.path("bin").join(name);
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let conflist = json!({
            "cniVersion": "1.0.0",
            "name": self.net,
            "plugins": [
                {
                    "type": "vnet",
                    "bridge": self.bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "ipam": {
                        "type": "host-local",
                        "subnet": self.subnet.to_string(),
                        // The pod's replies to the client namespace (port mapping) leave
                        // by the default route.
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.p("ipam"),
                    }
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        fs::write(
            self.path("net.d/10-vnet.conflist"),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
    }

    fn write_config(&self) {
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
# Not needed here: the other snapshotters probe the file system at start-up, and the opt
# plugin would create /opt/containerd on the machine.
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.internal.v1.opt",
]

[grpc]
  address = "{sock}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{IMAGE}"
  # The pods' network namespaces under --state, not /run/netns.
  netns_mounts_under_state_dir = true
  # The sandbox's default oom_score_adj is -998, and lowering it needs CAP_SYS_RESOURCE,
  # which root lacks on the test machines (runc fails "failed to update
  # /proc/self/oom_score_adj: Permission denied"): keep it at containerd's own.
  restrict_oom_score_adj = true

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{bin}"
    conf_dir = "{conf}"
    max_conf_num = 1

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc's state, else /run/containerd/runc on the machine.
        Root = "{runc}"
"#,
            root = self.p("root"),
            state = self.p("state"),
            sock = self.socket(),
            bin = self.bin_dir(),
            conf = self.p("net.d"),
            runc = self.p("runc"),
        );
        fs::write(self.path("config.toml"), config).unwrap();
    }

    /// containerd in the node's network namespace (`nsenter --net`, not `ip netns exec`:
    /// that one also remounts /sys, which hides the cgroup mounts and makes runc fail with
    /// "no cgroup mount found in mountinfo"). It keeps the machine's mount namespace, so
    /// the netns paths it reports are usable by the test as they are.
    fn spawn_containerd(&mut self) {
        let log = fs::File::create(self.path("containerd.log")).unwrap();
        let child = Command::new(PYTHON)
            // containerd and its shims keep every descriptor they inherit, and Rust marks
            // only its own close-on-exec: whoever started the test may have left others
            // open (a pipe that keeps a CI log open until the last shim exits). Python
            // closes them all before it becomes nsenter, then containerd.
            .args(["-c", CLOSE_FDS_AND_EXEC, "nsenter"])
            .arg(format!("--net={}", self.node.path()))
            .arg("containerd")
            .args(["--config", &self.p("config.toml")])
            .args(["--root", &self.p("root")])
            .args(["--state", &self.p("state")])
            .args(["--address", &self.socket()])
            .env_clear()
            .env("PATH", PATH)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.containerd = Some(child);
    }

    /// Asserts containerd holds none of the descriptors the test would have passed on.
    fn assert_no_inherited_fds(&self) {
        let pid = self.containerd.as_ref().unwrap().id();
        let ours: Vec<PathBuf> = fds_without_cloexec()
            .into_iter()
            .filter(|t| t != Path::new("/dev/null"))
            .collect();
        let theirs: Vec<PathBuf> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| fs::read_link(e.path()).ok())
            .collect();
        let leaked: Vec<&PathBuf> = ours.iter().filter(|t| theirs.contains(t)).collect();
        assert!(leaked.is_empty(), "containerd inherited {leaked:?}");
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.path("containerd.log")).unwrap_or_default()
    }

    /// The log's warnings and errors: what explains a failed call.
    pub fn log_problems(&self) -> String {
        let log = self.log();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
            .map(|l| l.chars().take(600).collect())
            .collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn wait_ready(&mut self) {
        let sock = self.socket();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("ctr")
                .args(["-a", &sock, "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                break;
            }
            if let Some(status) = self.containerd.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd not serving after 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.assert_no_inherited_fds();
        // The CRI plugin is the one that can fail to load while containerd runs on.
        let v = self.cri_json(&["version"]);
        assert_eq!(v["runtime_name"], "containerd", "{v}");
        assert_eq!(v["runtime_api_version"], "v1", "{v}");
    }

    fn import_pause_image(&self) {
        let tar = self.p("pause.tar");
        sh_ok(&[PYTHON, IMAGE_BUILDER, &tar, IMAGE]);
        let sock = self.socket();
        sh_ok(&["ctr", "-a", &sock, "-n", "k8s.io", "images", "import", &tar]);
        // The CRI plugin learns of the import from an event, a moment later; a sandbox
        // started before that would try to pull the image from a registry.
        poll("the CRI plugin to see the pause image", 30, || {
            self.cri_json(&["image", IMAGE])["id"] != ""
        });
    }

    /// One client call; `Err` carries its stderr (the gRPC code and message).
    pub fn cri(&self, args: &[&str]) -> Result<String, String> {
        let out = self.cri_output(args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn cri_output(&self, args: &[&str]) -> Output {
        Command::new(PYTHON)
            .arg(CLIENT)
            .args(["--socket", &self.socket(), "--gen", &self.p("gen")])
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap()
    }

    pub fn cri_ok(&self, args: &[&str]) -> String {
        self.cri(args).unwrap_or_else(|e| {
            panic!(
                "CRI {args:?} failed: {e}\ncontainerd log:\n{}",
                self.log_problems()
            )
        })
    }

    fn cri_json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.cri_ok(args)).unwrap()
    }

    /// RunPodSandbox with a POD network namespace; `ports` are (host, container) TCP.
    pub fn run_pod(&self, name: &str, ports: &[(u16, u16)]) -> Result<String, String> {
        let uid = format!("uid-{name}");
        let mut args = vec![
            "run".to_string(),
            name.to_string(),
            POD_NAMESPACE.to_string(),
            uid,
            "--cgroup-parent".to_string(),
            self.cgroup_parent.clone(),
        ];
        for (host, container) in ports {
            args.push(format!("--port={host}:{container}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = self.cri(&args)?;
        self.pods.borrow_mut().push(id.clone());
        Ok(id)
    }

    pub fn run_pod_ok(&self, name: &str, ports: &[(u16, u16)]) -> String {
        self.run_pod(name, ports).unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox {name} failed: {e}\ncontainerd log:\n{}",
                self.log_problems()
            )
        })
    }

    pub fn status(&self, id: &str) -> PodStatus {
        let v = self.cri_json(&["status", id]);
        PodStatus {
            state: v["state"].as_str().unwrap().to_string(),
            ip: v["ip"].as_str().unwrap().to_string(),
            netns: v["netns"].as_str().unwrap().to_string(),
        }
    }

    pub fn stop(&self, id: &str) {
        self.cri_ok(&["stop", id]);
    }

    pub fn remove(&self, id: &str) {
        self.cri_ok(&["remove", id]);
        self.pods.borrow_mut().retain(|p| p != id);
    }

    /// Reserved addresses in vnet's store (files named by an IP in dataDir/<network>/).
    pub fn reserved(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.path("ipam").join(&self.net)) else {
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

    /// The reservation file of `ip`: `<containerID>\r\n<ifname>`.
    pub fn reservation(&self, ip: &str) -> String {
        fs::read_to_string(self.path("ipam").join(&self.net).join(ip)).unwrap_or_default()
    }

    /// Host-side veths on the node.
    pub fn veths(&self) -> Vec<String> {
        self.node
            .links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect()
    }

    /// The node's NAT rules: vnet's masquerade table and portmap's iptables chains.
    pub fn nat_rules(&self) -> String {
        let nft = self.node.exec(&["nft", "list", "table", "inet", "vnet"]);
        let ipt = self.node.exec(&["iptables", "-t", "nat", "-S"]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&nft.stdout),
            String::from_utf8_lossy(&ipt.stdout)
        )
    }

    /// Every plugin call recorded so far, in call order.
    pub fn calls(&self) -> Vec<CniCall> {
        calls::read(&self.path("calls"))
    }

    /// Runs `cmd` in the network namespace at `netns` (a path, as status reports it).
    pub fn in_netns(netns: &str, cmd: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .args(cmd)
            .output()
            .unwrap()
    }

    pub fn ping_from(netns: &str, addr: &str) -> bool {
        // A few tries within the deadline: the first packet may wait for ARP.
        Self::in_netns(
            netns,
            &["ping", "-c", "2", "-i", "0.2", "-W", "2", "-w", "5", addr],
        )
        .status
        .success()
    }

    /// A one-shot TCP listener on `port` in the pod's namespace that answers `reply`.
    pub fn listen_in(netns: &str, port: u16, reply: &str) -> Background {
        let child = Command::new("nsenter")
            .arg(format!("--net={netns}"))
            .args([
                "busybox",
                "nc",
                "-l",
                "-p",
                &port.to_string(),
                "-e",
                "echo",
                reply,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Background(child)
    }

    /// What a TCP connection from the client namespace to `addr:port` receives.
    pub fn fetch_from_client(&self, addr: &str, port: u16) -> String {
        let out = self
            .client
            .exec(&["busybox", "nc", "-w", "3", addr, &port.to_string()]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    // ---- cleanup ----

    fn stop_containerd(&mut self) {
        let Some(mut child) = self.containerd.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Container IDs this node saw: the pods still listed and every ID a plugin was given
    /// (a failed RunPodSandbox returns none).
    fn container_ids(&self) -> Vec<String> {
        let mut ids = self.pods.borrow().clone();
        ids.extend(
            self.calls()
                .iter()
                .map(|c| c.var("CNI_CONTAINERID").to_string()),
        );
        ids.sort();
        ids.dedup();
        // Sandbox IDs are 64 hex digits; nothing else is used to build a path.
        ids.retain(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        ids
    }

    /// What survives a containerd that did not tear its pods down: the pods' processes,
    /// the shims serving our socket, mounts under the temp dir, the cgroups, the shims'
    /// sockets and libcni's cache files.
    fn remove_leftovers(&self) {
        let sock = self.socket();
        leftovers::kill_processes(&sock, &self.cgroup_parent);
        leftovers::unmount_under(self.dir.path());
        leftovers::remove_cgroups(&self.cgroup_parent);
        leftovers::remove_files_of(&sock, &self.container_ids());
    }
}

impl Drop for CriNode {
    fn drop(&mut self) {
        // Pods first, the way a kubelet ends them, while containerd still runs.
        if self.containerd.is_some() {
            for id in self.pods.borrow().clone() {
                let _ = self.cri_output(&["--timeout", "20", "stop", &id]);
                let _ = self.cri_output(&["--timeout", "20", "remove", &id]);
            }
        }
        self.stop_containerd();
        self.remove_leftovers();
        // Then the fields: the temp dir and both namespaces (bridge, rules and all).
    }
}

/// Waits for `done`, up to `secs`, and panics naming `what`.
pub fn poll(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What our descriptors above 2 that a child would inherit point to.
fn fds_without_cloexec() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc/self/fdinfo")
        .unwrap()
        .filter_map(|e| e.ok())
    {
        let fd = e.file_name().to_string_lossy().into_owned();
        if fd.parse::<u32>().is_ok_and(|n| n <= 2) {
            continue;
        }
        let info = fs::read_to_string(e.path()).unwrap_or_default();
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
        // O_CLOEXEC is 02000000.
        if flags.is_some_and(|f| f & 0o2000000 == 0) {
            if let Ok(target) = fs::read_link(format!("/proc/self/fd/{fd}")) {
                v.push(target);
            }
        }
    }
    v
}
