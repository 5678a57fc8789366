//! podman (Debian's 4.3, CNI backend) running containers on vnet, end to end: the
//! network is podman's default conflist shape with vnet in the reference `bridge`'s place
//! (vnet → portmap → firewall → tuning), podman drives the plugins the way it does on a
//! real machine, and every step is checked against the kernel (`ip -j`), the IPAM store
//! and real traffic.
//!
//! Everything podman owns is private to each test: its configuration (`CONTAINERS_CONF`,
//! `CONTAINERS_STORAGE_CONF`), storage, locks, plugin and network directories, and the
//! network namespace it runs in (a "node" namespace per test). The machine's own
//! namespace is snapshotted before and compared after.
//!
//! Facts about podman 4.3 these tests rely on (seen with a logging wrapper plugin):
//! - every podman command first calls each plugin of the conflist with `CNI_COMMAND=VERSION`
//!   and placeholders elsewhere (`CNI_NETNS=dummy`, `CNI_IFNAME=dummy`, `CNI_PATH=dummy`,
//!   `CNI_CONTAINERID` empty);
//! - ADD carries `CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=<name>` and a fresh namespace
//!   `/run/netns/netns-<uuid>`; `stop` sends DEL and removes the namespace before it
//!   returns; `start` and `restart` (DEL, then ADD) make a new namespace and take the next
//!   address;
//! - `network reload` sends DEL then ADD into the same namespace with
//!   `CNI_ARGS=…;MAC=<old mac>;IP=<old address>`, so the container keeps both (the MAC is
//!   also set by `tuning`, last in the chain, which reads the same `MAC=`);
//! - `network disconnect` sends DEL (still with those `MAC=`/`IP=` arguments), `network
//!   connect` an ADD without them (a new address);
//! - a container that exits by itself is torn down by conmon's exit command
//!   (`podman container cleanup`), which reads the same `CONTAINERS_CONF`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::rootns::RootNs;
use common::*;
use regex::Regex;
use serde_json::{json, Value};

const IMAGE: &str = "localhost/vnet-test-busybox";
/// libcni's result cache: podman 4.3 gives libcni no cache directory of its own, so
/// every ADD writes `<network>-<container id>-<ifname>` here (and DEL removes it).
const CNI_CACHE: &str = "/var/lib/cni/results";
const BUSYBOX: &str = "/usr/bin/busybox";
/// The port `httpd` listens on inside a container.
const HTTP_PORT: u16 = 80;
/// A CGI script for busybox httpd that answers the client's address as the server saw
/// it: what tells a masqueraded connection from one that kept its source.
const CGI_REMOTE_ADDR: &str =
    "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n";

/// Root, the programs podman needs, and the reference plugins of podman's default chain;
/// then the machine's own namespace as it is before the test.
fn prerequisites(test: &str) -> Option<RootNs> {
    if !root_or_skip(test) {
        return None;
    }
    // podman, its OCI runtime and monitor; nsenter (util-linux) to run it in the node
    // namespace; busybox(-static) for the image; nft (vnet's ipMasq) and iptables (the
    // reference portmap and firewall) in the node namespace.
    for tool in [
        "podman",
        "runc",
        "conmon",
        "nsenter",
        "busybox",
        "tar",
        "timeout",
        "nft",
        "iptables",
        "iptables-save",
    ] {
        if !tool_or_skip(test, tool) {
            return None;
        }
    }
    for plugin in ["portmap", "firewall", "tuning"] {
        reference_or_skip(test, plugin)?;
    }
    assert!(
        is_static(Path::new(BUSYBOX)),
        "{BUSYBOX} is not statically linked: the image has no libc (apt-get install busybox-static)"
    );
    Some(RootNs::snapshot())
}

/// Whether an ELF executable has no program interpreter (PT_INTERP), i.e. runs in an
/// empty root file system.
fn is_static(path: &Path) -> bool {
    let Ok(elf) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return false;
    }
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 > elf.len() || u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) != 3
    })
}

/// Retries `f` until it succeeds or `limit` has passed, then fails with its last error.
fn poll<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("{what}: not within {limit:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `<dir>/index.html` and `<dir>/cgi-bin/ip` (the client's address) for busybox httpd.
fn write_site(dir: &Path, index: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir.join("cgi-bin")).unwrap();
    std::fs::write(dir.join("index.html"), index).unwrap();
    let cgi = dir.join("cgi-bin/ip");
    std::fs::write(&cgi, CGI_REMOTE_ADDR).unwrap();
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `busybox httpd` serving `dir` on IPv4 only (on `[::]` it reports IPv4 clients as
/// `[::ffff:a.b.c.d]`), as container command arguments.
fn httpd_args(dir: &str, port: u16) -> Vec<String> {
    let listen = format!("0.0.0.0:{port}");
    ["httpd", "-f", "-p", &listen, "-h", dir]
        .map(String::from)
        .into()
}

/// A program the test started, killed (by its own PID) when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A hard limit from /proc/self/limits (`unlimited` as u64::MAX).
fn hard_limit(name: &str) -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
    let hard = line[name.len()..].split_whitespace().nth(1).unwrap();
    hard.parse().unwrap_or(u64::MAX)
}

/// Each test's pod subnet: the node namespaces are private, so this only keeps two
/// tests' stores and rules apart when someone reads them side by side.
fn subnet_prefix() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("10.{}.{}", 100 + std::process::id() % 100, n % 256)
}

/// A container as `podman inspect` shows it; the network fields are empty when it is not
/// attached to the test's network.
#[derive(Debug, Clone)]
struct Ctr {
    name: String,
    id: String,
    ip: String,
    mac: String,
    /// The container's network namespace (`/run/netns/netns-<uuid>`), empty when stopped.
    sandbox: String,
}

/// A vnet network of podman: conflist name, bridge, pod subnet.
struct Net {
    name: String,
    bridge: String,
    /// The first three octets of the pod subnet (a /24).
    prefix: String,
}

impl Net {
    fn new() -> Net {
        let net = Net {
            name: unique("net"),
            bridge: unique("b"),
            prefix: subnet_prefix(),
        };
        assert!(
            net.bridge.len() <= 15,
            "bridge name {} too long",
            net.bridge
        );
        net
    }

    fn gateway(&self) -> String {
        format!("{}.1", self.prefix)
    }
}

/// One test's private podman: node namespace, configuration, storage, plugin directory,
/// a vnet network and the busybox image. Drop removes all of it, also after a failure.
struct Podman {
    node: Netns,
    dir: TempDir,
    /// The network containers are run on unless a test says otherwise.
    net: Net,
    /// The names of all networks written, for the cleanup of libcni's cache.
    networks: Mutex<Vec<String>>,
    /// The cgroup (under each hierarchy's root) of the test's containers and their
    /// conmons, instead of podman's shared `libpod_parent`.
    cgroup: String,
    /// Every container namespace seen, for the fallback cleanup.
    sandboxes: Mutex<BTreeSet<String>>,
}

impl Podman {
    fn new() -> Podman {
        let node = Netns::new("n");
        let dir = TempDir::new("podman");
        let p = Podman {
            net: Net::new(),
            networks: Mutex::new(Vec::new()),
            cgroup: unique("cg"),
            node,
            dir,
            sandboxes: Mutex::new(BTreeSet::new()),
        };
        for d in ["plugins", "net.d", "ipam", "tmp", "xdg", "home", "storage"] {
            std::fs::create_dir_all(p.path(d)).unwrap();
        }
        p.write_config();
        p.write_network(&p.net);
        p.import_image();
        p
    }

    /// Another vnet network beside [`Self::net`], with its own bridge and subnet.
    fn add_network(&self) -> Net {
        let net = Net::new();
        self.write_network(&net);
        net
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write_config(&self) {
        // The plugin directory: the vnet under test plus the reference plugins podman's
        // default network chains after its bridge.
        std::os::unix::fs::symlink(BIN, self.path("plugins/vnet")).unwrap();
        for plugin in ["portmap", "firewall", "tuning"] {
            std::os::unix::fs::symlink(
                Path::new(REF_DIR).join(plugin),
                self.path("plugins").join(plugin),
            )
            .unwrap();
        }
        // podman asks for 1048576 open files and processes in every container, which
        // only a process with CAP_SYS_RESOURCE may grant above its own hard limit; and
        // podman itself pins its RLIMIT_NPROC (inherited by conmon and runc) to 32768
        // at start-up. Ask for what runc can actually set.
        let nofile = hard_limit("Max open files").min(1 << 20);
        let nproc = hard_limit("Max processes").min(32768);
        let containers_conf = format!(
            r#"[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[engine]
# crun fails on this kind of kernel's cgroup setup; runc works.
runtime = "runc"
# No systemd scopes in the machine's systemd (and no systemd needed).
cgroup_manager = "cgroupfs"
events_logger = "none"
# Per-container lock files in the private tmp_dir instead of the machine-wide
# /dev/shm/libpod_lock segment.
lock_type = "file"
tmp_dir = "{tmp}"
# static_dir and volume_path stay at their defaults under graphroot: conmon's exit
# command (`podman --root … container cleanup`) derives them from --root, and a
# mismatch with the database makes that cleanup fail, so no DEL when a container exits.

[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
network_config_dir = "{netd}"
"#,
            tmp = self.path("tmp").display(),
            plugins = self.path("plugins").display(),
            netd = self.path("net.d").display(),
        );
        std::fs::write(self.path("containers.conf"), containers_conf).unwrap();
        // vfs: no overlay mounts in the machine's mount namespace, and no dependence on
        // what the temp directory's file system supports; the image is 2 MB.
        let storage_conf = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            self.path("storage/graph").display(),
            self.path("storage/run").display(),
        );
        std::fs::write(self.path("storage.conf"), storage_conf).unwrap();
        std::fs::write(self.path("registries.conf"), "").unwrap();
    }

    fn write_network(&self, net: &Net) {
        // What `podman network create` writes with the CNI backend, with vnet in place
        // of `bridge` and the store in the test's directory.
        let conflist = json!({
            "cniVersion": "0.4.0",
            "name": net.name,
            "plugins": [
                {
                    "type": "vnet",
                    "bridge": net.bridge,
                    "isGateway": true,
                    "ipMasq": true,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "ranges": [[{
                            "subnet": format!("{}.0/24", net.prefix),
                            "gateway": net.gateway(),
                        }]],
                        "dataDir": self.path("ipam"),
                    },
                    "capabilities": {"ips": true}
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "firewall", "backend": ""},
                {"type": "tuning"}
            ]
        });
        std::fs::write(
            self.path(&format!("net.d/{}.conflist", net.name)),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
        self.networks.lock().unwrap().push(net.name.clone());
    }

    /// A root file system of busybox and its applet links, imported as an image whose
    /// default command sleeps. STOPSIGNAL KILL: the kernel drops signals to a PID
    /// namespace's init that it has no handler for, so SIGTERM would be ignored by
    /// `sleep` or `httpd` and every stop would wait podman's 10 s before killing.
    fn import_image(&self) {
        let root = self.path("image/rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for applet in sh_ok(&[BUSYBOX, "--list"]).lines() {
            if !applet.is_empty() && applet != "busybox" {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        write_site(&root.join("www"), &self.page());
        let tar = self.path("image/rootfs.tar");
        sh_ok(&[
            "tar",
            "-C",
            root.to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ]);
        self.ok(&[
            "import",
            "--change",
            r#"CMD=["sleep","1000000"]"#,
            "--change",
            "STOPSIGNAL=SIGKILL",
            tar.to_str().unwrap(),
            IMAGE,
        ]);
    }

    /// What `httpd` serves from this test's image.
    fn page(&self) -> String {
        format!("hello from {}\n", self.net.name)
    }

    /// `podman ARGS` in the node namespace with only the test's configuration.
    ///
    /// nsenter, not `ip netns exec`: the latter also gives the command a new mount
    /// namespace with a fresh /sys, where runc finds no cgroup mounts ("no cgroup mount
    /// found in mountinfo") and where the namespace and storage mounts one podman command
    /// makes would be invisible to the next.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        // A hung podman fails the test instead of hanging it.
        c.args(["-k", "10", "120", "nsenter"])
            .arg(format!("--net={}", self.node.path()))
            .arg("podman")
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", self.path("home"))
            .env("XDG_RUNTIME_DIR", self.path("xdg"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf"))
            .stdin(Stdio::null());
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs podman and returns its trimmed stdout; fails the test if podman failed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(out.status.success(), "podman {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `podman run -d --name NAME` on the test's network, in the test's cgroup.
    /// (containers.conf of podman 4.3 has no key for the cgroup parent.)
    fn run_args(&self, name: &str, extra: &[&str], cmd: &[&str]) -> Vec<String> {
        self.run_args_on(&self.net.name, name, extra, cmd)
    }

    /// [`Self::run_args`] on `networks` (podman's `--network a,b`).
    fn run_args_on(&self, networks: &str, name: &str, extra: &[&str], cmd: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "-d", "--name", name, "--network", networks]
            .map(String::from)
            .into();
        args.push(format!("--cgroup-parent=/{}", self.cgroup));
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(IMAGE.into());
        args.extend(cmd.iter().map(|a| a.to_string()));
        args
    }

    /// [`Self::run_args`], run; returns the container ID.
    fn run(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let args = self.run_args(name, extra, cmd);
        let id = self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "podman run printed {id:?}"
        );
        id
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value =
            serde_json::from_str(&self.ok(&["inspect", "--type", "container", name])).unwrap();
        v[0].clone()
    }

    fn ctr(&self, name: &str) -> Ctr {
        let c = &self.inspect(name);
        let settings = &c["NetworkSettings"];
        let net = &settings["Networks"][&self.net.name];
        let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let ctr = Ctr {
            name: name.to_string(),
            id: field(&c["Id"]),
            ip: field(&net["IPAddress"]),
            mac: field(&net["MacAddress"]),
            sandbox: field(&settings["SandboxKey"]),
        };
        if !ctr.sandbox.is_empty() {
            self.sandboxes.lock().unwrap().insert(ctr.sandbox.clone());
        }
        ctr
    }

    /// `podman exec NAME CMD…`: whether it succeeded, and what it printed.
    fn exec(&self, name: &str, cmd: &[&str]) -> Result<String, String> {
        let mut args = vec!["exec", name];
        args.extend_from_slice(cmd);
        let out = self.output(&args);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(text(&out))
        }
    }

    fn ping(&self, from: &Ctr, to: &str) {
        // One echo reply within 5 s; the first request may wait for ARP on the bridge.
        if let Err(e) = self.exec(&from.name, &["ping", "-c", "1", "-W", "5", to]) {
            panic!("{} ({}) cannot ping {to}: {e}", from.name, from.ip);
        }
    }

    /// GETs `url` from inside container `from` until it answers (the server may still be
    /// starting when `podman run -d` returns). busybox 1.35's `wget -T` crashes: `timeout`
    /// bounds each try instead.
    fn http_from(&self, from: &str, url: &str) -> String {
        poll(
            &format!("GET {url} from {from}"),
            Duration::from_secs(30),
            || self.exec(from, &["timeout", "5", "wget", "-qO-", url]),
        )
    }

    /// Reservation files of [`Self::net`]: address → content.
    fn store(&self) -> BTreeMap<String, String> {
        self.store_of(&self.net)
    }

    /// Reservation files in `<dataDir>/<network>/`: address → content.
    fn store_of(&self, net: &Net) -> BTreeMap<String, String> {
        let dir = self.path("ipam").join(&net.name);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return BTreeMap::new();
        };
        rd.map(|e| e.unwrap())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .parse::<std::net::IpAddr>()
                    .is_ok()
            })
            .map(|e| {
                let content = std::fs::read_to_string(e.path()).unwrap();
                (e.file_name().to_string_lossy().into_owned(), content)
            })
            .collect()
    }

    /// The pods vnet masquerades in the node: address → the attachment's tag
    /// (`vnet <network> <container id> <ifname>`). vnet has kept them in two shapes, both
    /// read here: one rule per pod whose comment is the tag (`ip saddr A … masquerade`),
    /// and one rule per network over a set whose elements carry the tag as comment. The
    /// per-network rule and set stay when the last pod goes, like the bridge.
    fn masquerades(&self) -> BTreeMap<String, String> {
        let out = self
            .node
            .exec(&["nft", "-j", "list", "table", "inet", "vnet"]);
        if !out.status.success() {
            // No table yet: nothing masqueraded.
            return BTreeMap::new();
        }
        let listing: Value = serde_json::from_slice(&out.stdout).unwrap();
        let is_tag = |c: &str| c.starts_with("vnet") && c.split(' ').count() == 4;
        let mut tagged = Vec::new();
        for item in listing["nftables"].as_array().unwrap() {
            let rule = &item["rule"];
            let comment = rule["comment"].as_str().unwrap_or_default();
            if is_tag(comment) {
                // The per-pod rule's `ip saddr A` match.
                let saddr = rule["expr"].as_array().into_iter().flatten().find_map(|e| {
                    let m = &e["match"];
                    (m["left"]["payload"]["field"] == "saddr").then(|| m["right"].clone())
                });
                let saddr = saddr.and_then(|a| a.as_str().map(String::from));
                tagged.push((
                    saddr.unwrap_or_else(|| panic!("no saddr in {rule}")),
                    comment,
                ));
            }
            for elem in item["set"]["elem"].as_array().into_iter().flatten() {
                let (addr, comment) = (&elem["elem"]["val"], &elem["elem"]["comment"]);
                let comment = comment.as_str().unwrap_or_default();
                assert!(is_tag(comment), "set element without a tag: {elem}");
                tagged.push((addr.as_str().unwrap().to_string(), comment));
            }
        }
        let map: BTreeMap<String, String> = tagged
            .iter()
            .map(|(a, c)| (a.clone(), c.to_string()))
            .collect();
        assert_eq!(
            map.len(),
            tagged.len(),
            "an address masqueraded twice: {tagged:?}"
        );
        map
    }

    /// The ports of [`Self::net`]'s bridge.
    fn ports(&self) -> Vec<Value> {
        self.ports_of(&self.net)
    }

    /// A bridge's ports in the node (`ip -j link show master BRIDGE`).
    fn ports_of(&self, net: &Net) -> Vec<Value> {
        self.node
            .ip_json(&["link", "show", "master", &net.bridge])
            .as_array()
            .unwrap()
            .clone()
    }

    /// The node's `iptables-save` (portmap's and firewall's rules).
    fn iptables(&self) -> String {
        let out = self.node.exec(&["iptables-save"]);
        assert!(out.status.success(), "iptables-save: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// libcni's cached results for this test's networks.
    fn cni_cache(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(CNI_CACHE) else {
            return Vec::new();
        };
        let prefixes: Vec<String> = self
            .networks
            .lock()
            .unwrap()
            .iter()
            .map(|n| format!("{n}-"))
            .collect();
        rd.filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
            .collect()
    }

    /// Exactly `ctrs` are attached: one reservation each (`<id>\r\neth0`, distinct
    /// addresses in the range), one masquerade entry each, one host veth on the bridge each
    /// paired with the container's eth0, and in each container namespace exactly lo and
    /// eth0 with the inspected address, MAC and the default route via the gateway.
    fn expect_attached(&self, ctrs: &[&Ctr]) {
        let names: Vec<&str> = ctrs.iter().map(|c| c.name.as_str()).collect();
        let want_store: BTreeMap<String, String> = ctrs
            .iter()
            .map(|c| (c.ip.clone(), format!("{}\r\neth0", c.id)))
            .collect();
        assert_eq!(
            want_store.len(),
            ctrs.len(),
            "addresses not distinct: {ctrs:?}"
        );
        for c in ctrs {
            let host: u8 =
                c.ip.strip_prefix(&format!("{}.", self.net.prefix))
                    .and_then(|h| h.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("{} got {:?}, not in {}.0/24", c.name, c.ip, self.net.prefix)
                    });
            assert!((2..=254).contains(&host), "{} got {}", c.name, c.ip);
        }
        assert_eq!(self.store(), want_store, "reservations of {names:?}");
        let want_masq: BTreeMap<String, String> = ctrs
            .iter()
            .map(|c| {
                (
                    c.ip.clone(),
                    format!("vnet {} {} eth0", self.net.name, c.id),
                )
            })
            .collect();
        assert_eq!(
            self.masquerades(),
            want_masq,
            "masquerade entries of {names:?}"
        );

        let ports = self.ports();
        let port_names: Vec<&str> = ports
            .iter()
            .map(|p| p["ifname"].as_str().unwrap())
            .collect();
        assert_eq!(
            ports.len(),
            ctrs.len(),
            "bridge ports {port_names:?} for {names:?}"
        );
        let veth = Regex::new("^veth[0-9a-f]{8}$").unwrap();
        for p in &ports {
            let name = p["ifname"].as_str().unwrap();
            assert!(veth.is_match(name), "bridge port {name}");
            assert!(flags_up(p), "{name} down: {p}");
        }
        let mut peers = BTreeSet::new();
        for c in ctrs {
            assert!(
                Path::new(&c.sandbox).exists(),
                "{}: no {}",
                c.name,
                c.sandbox
            );
            let links = pod_json(&c.sandbox, &["addr", "show"]);
            let links = links.as_array().unwrap();
            let ifnames: Vec<&str> = links
                .iter()
                .map(|l| l["ifname"].as_str().unwrap())
                .collect();
            assert_eq!(ifnames, ["lo", "eth0"], "{}'s links", c.name);
            let eth0 = &links[1];
            assert!(flags_up(eth0), "{}'s eth0 down: {eth0}", c.name);
            assert_eq!(eth0["address"], c.mac.as_str(), "{}'s eth0 MAC", c.name);
            assert_eq!(
                global_addrs(eth0),
                [format!("{}/24", c.ip)],
                "{}'s eth0",
                c.name
            );
            // The veth's other end: eth0's link index is the host end's ifindex.
            let peer = ports
                .iter()
                .find(|p| p["ifindex"] == eth0["link_index"])
                .unwrap_or_else(|| {
                    panic!(
                        "{}'s eth0 {eth0} pairs with no port of {port_names:?}",
                        c.name
                    )
                });
            assert!(peers.insert(peer["ifname"].as_str().unwrap().to_string()));
            let routes = pod_json(&c.sandbox, &["-4", "route", "show", "default"]);
            assert_eq!(
                routes.as_array().unwrap().len(),
                1,
                "{}'s default route: {routes}",
                c.name
            );
            assert_eq!(routes[0]["gateway"], self.net.gateway().as_str());
            assert_eq!(routes[0]["dev"], "eth0");
        }
    }

    /// Nothing of `gone` is left: no reservation, masquerade entry, bridge port or veth at
    /// all, namespace, portmap or firewall rule naming them, libcni cache entry.
    fn expect_clean(&self, gone: &[&Ctr]) {
        assert_eq!(self.store(), BTreeMap::new(), "reservations left");
        assert_eq!(
            self.masquerades(),
            BTreeMap::new(),
            "masquerade entries left"
        );
        assert_eq!(self.ports(), Vec::<Value>::new(), "bridge ports left");
        let veths: Vec<String> = self
            .node
            .links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect();
        assert!(veths.is_empty(), "veths left in the node: {veths:?}");
        let rules = self.iptables();
        for c in gone {
            assert!(
                !c.sandbox.is_empty() && !Path::new(&c.sandbox).exists(),
                "{}'s namespace {:?} left",
                c.name,
                c.sandbox
            );
            let ip_rule = Regex::new(&format!(r"\b{}\b", regex::escape(&c.ip))).unwrap();
            let left: Vec<&str> = rules
                .lines()
                .filter(|l| l.contains(&c.id) || ip_rule.is_match(l))
                .collect();
            assert!(
                left.is_empty(),
                "iptables rules of {} left: {left:#?}",
                c.name
            );
        }
        assert_eq!(self.cni_cache(), Vec::<String>::new(), "libcni cache left");
    }

    /// Fallback cleanup: podman's own `rm`, then whatever a failed or killed podman left.
    fn cleanup(&self) {
        let ids: Vec<String> = self
            .output(&["ps", "-aq", "--no-trunc"])
            .stdout
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l).trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let _ = self.output(&["rm", "-af", "-t", "0"]);
        self.kill_processes();
        // Containers whose conmon died: podman runs runc with its default state root.
        for id in &ids {
            if Path::new("/run/runc").join(id).exists() {
                let _ = Command::new("runc").args(["delete", "-f", id]).output();
            }
        }
        // Mounts podman made in the machine's mount namespace (container namespaces,
        // /dev/shm of containers), deepest first.
        let sandboxes = self.sandboxes.lock().unwrap().clone();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(self.dir.path().to_str().unwrap()) || sandboxes.contains(*m))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").args(["-l", m]).output();
        }
        for s in &sandboxes {
            let _ = std::fs::remove_file(s);
        }
        for name in self.cni_cache() {
            let _ = std::fs::remove_file(Path::new(CNI_CACHE).join(name));
        }
        self.remove_cgroups();
    }

    /// The test's cgroup in every hierarchy (cgroup v1 has one per controller, v2 one),
    /// children first. rmdir only removes an empty cgroup, and a conmon may still be
    /// running its exit command when `podman rm` has returned: retry for a while.
    fn remove_cgroups(&self) {
        fn rmdir_tree(dir: &Path) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        rmdir_tree(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        let root = Path::new("/sys/fs/cgroup");
        let mut candidates = vec![root.join(&self.cgroup)];
        if let Ok(rd) = std::fs::read_dir(root) {
            candidates.extend(rd.flatten().map(|e| e.path().join(&self.cgroup)));
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            candidates.retain(|c| c.is_dir());
            candidates.iter().for_each(|c| rmdir_tree(c));
            if candidates.iter().all(|c| !c.is_dir()) || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills podman and conmon processes of this test: they carry its CONTAINERS_CONF.
    fn kill_processes(&self) {
        let marker = format!(
            "CONTAINERS_CONF={}\0",
            self.path("containers.conf").display()
        );
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return;
        };
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let mut env = Vec::new();
            let read = std::fs::File::open(e.path().join("environ"))
                .and_then(|mut f| f.read_to_end(&mut env));
            if read.is_ok()
                && pid != std::process::id() as i32
                && env.windows(marker.len()).any(|w| w == marker.as_bytes())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.cleanup();
        // Then the node namespace and the directory go with the fields.
    }
}

fn flags_up(link: &Value) -> bool {
    link["flags"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "UP"))
}

fn global_addrs(link: &Value) -> Vec<String> {
    link["addr_info"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// `ip -j ARGS` inside a container's network namespace.
fn pod_json(sandbox: &str, args: &[&str]) -> Value {
    let mut cmd = vec![
        "nsenter".to_string(),
        format!("--net={sandbox}"),
        "ip".into(),
        "-j".into(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let out = sh_ok(&cmd);
    if out.trim().is_empty() {
        return json!([]);
    }
    serde_json::from_str(&out).unwrap()
}

#[test]
fn two_containers_get_distinct_addresses_ping_each_other_and_talk_http() {
    let Some(root) = prerequisites("podman_two_containers") else {
        return;
    };
    let p = Podman::new();
    let httpd = httpd_args("/www", HTTP_PORT);
    p.run(
        "web",
        &[],
        &httpd.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    p.run("client", &[], &[]);
    // `--ip` and `--mac-address` reach the plugins as CNI_ARGS IP= and MAC= (vnet takes
    // the address; tuning, last in the chain, sets the MAC again).
    let (fixed_ip, fixed_mac) = (format!("{}.200", p.net.prefix), "02:42:0a:00:00:c8");
    p.run(
        "fixed",
        &["--ip", &fixed_ip, "--mac-address", fixed_mac],
        &[],
    );
    let (web, client, fixed) = (p.ctr("web"), p.ctr("client"), p.ctr("fixed"));
    assert_eq!(
        (fixed.ip.as_str(), fixed.mac.as_str()),
        (fixed_ip.as_str(), fixed_mac)
    );
    p.expect_attached(&[&web, &client, &fixed]);
    assert_ne!(web.sandbox, client.sandbox);

    p.ping(&client, &web.ip);
    p.ping(&web, &client.ip);
    let page = p.http_from("client", &format!("http://{}:{HTTP_PORT}/", web.ip));
    assert_eq!(page, p.page());
    // Pod to pod keeps the source address: the masquerade rule spares the pod subnet.
    let seen = p.http_from("client", &format!("http://{}/cgi-bin/ip", web.ip));
    assert_eq!(seen, format!("{}\n", client.ip), "web saw client as");
    p.ping(&fixed, &web.ip);
    // The gateway on the bridge answers too (the node end of the pod network).
    p.ping(&client, &p.net.gateway());

    p.ok(&["rm", "-f", "web", "client", "fixed"]);
    p.expect_clean(&[&web, &client, &fixed]);
    drop(p);
    root.assert_unchanged();
}

#[test]
fn published_port_and_masquerade_work_and_network_reload_restores_them_after_a_firewall_flush() {
    let Some(root) = prerequisites("podman_published_port") else {
        return;
    };
    const HOST_PORT: u16 = 18080;
    const LAN_PORT: u16 = 8080;
    let p = Podman::new();
    // A "LAN host": its own namespace, wired to the node by a veth pair made straight in
    // the two namespaces (never in the machine's own). Both are private to this test, so
    // fixed names and addresses cannot clash.
    let lan = Netns::new("lan");
    let (node, host) = (&p.node.name, &lan.name);
    for cmd in [
        format!("link add lan0 netns {node} type veth peer name lan0 netns {host}"),
        format!("-n {node} addr add 192.168.200.1/24 dev lan0"),
        format!("-n {host} addr add 192.168.200.2/24 dev lan0"),
        format!("-n {node} link set lan0 up"),
        format!("-n {host} link set lan0 up"),
    ] {
        let mut argv = vec!["ip"];
        argv.extend(cmd.split(' '));
        sh_ok(&argv);
    }
    // A server on the LAN host that answers with the client address it sees.
    let site = p.path("lan-www");
    write_site(&site, "lan\n");
    let mut server = vec![
        "netns".to_string(),
        "exec".into(),
        lan.name.clone(),
        BUSYBOX.into(),
    ];
    server.extend(httpd_args(site.to_str().unwrap(), LAN_PORT));
    let _server = Server(
        Command::new("ip")
            .args(&server)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let published = format!("{HOST_PORT}:{HTTP_PORT}");
    let httpd = httpd_args("/www", HTTP_PORT);
    let httpd: Vec<&str> = httpd.iter().map(String::as_str).collect();
    p.run("web", &["-p", &published], &httpd);
    let web = p.ctr("web");
    p.expect_attached(&[&web]);
    assert_eq!(
        p.ok(&["port", "web"]),
        format!("{HTTP_PORT}/tcp -> 0.0.0.0:{HOST_PORT}")
    );

    let published_url = format!("http://192.168.200.1:{HOST_PORT}/");
    let get = |ns: &Netns| -> Result<String, String> {
        let out = ns.exec(&["timeout", "5", BUSYBOX, "wget", "-qO-", &published_url]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(text(&out))
        }
    };
    let lan_url = format!("http://192.168.200.2:{LAN_PORT}/cgi-bin/ip");
    // Everything the chain puts in place for `web`, checked with real traffic.
    let check_chain = |web: &Ctr, step: &str| {
        // portmap's DNAT names the container and leads to its vnet address.
        let rules = p.iptables();
        assert!(
            rules.contains(&web.id)
                && rules.contains(&format!("--to-destination {}:{HTTP_PORT}", web.ip)),
            "{step}: no portmap DNAT to {} in\n{rules}",
            web.ip
        );
        // From the LAN host (PREROUTING DNAT, forwarded onto the bridge), retried while
        // httpd starts, and from the node itself (OUTPUT DNAT).
        let page = poll(
            &format!("{step}: GET {published_url} from the LAN host"),
            Duration::from_secs(30),
            || get(&lan),
        );
        assert_eq!(page, p.page(), "{step}");
        assert_eq!(get(&p.node).unwrap(), p.page(), "{step}: from the node");
        // vnet's masquerade: the LAN host has no route to the pod subnet, and sees the
        // node's LAN address.
        let seen = p.http_from("web", &lan_url);
        assert_eq!(seen, "192.168.200.1\n", "{step}: the LAN host saw web as");
    };
    check_chain(&web, "run");

    // A firewall reload (firewalld, `nft flush ruleset`) wipes every rule of the node:
    // vnet's masquerade table and the iptables-nft tables of portmap and firewall.
    // Rebuilding them is what `podman network reload` is for: DEL then ADD of the whole
    // chain, which must work although none of the rules DEL would remove exist.
    let flush = p.node.exec(&["nft", "flush", "ruleset"]);
    assert!(
        flush.status.success(),
        "nft flush ruleset: {}",
        text(&flush)
    );
    assert_eq!(p.masquerades(), BTreeMap::new());
    assert!(
        !p.iptables().contains(&web.id),
        "portmap rules survived the flush"
    );
    p.ok(&["network", "reload", "web"]);
    let reloaded = p.ctr("web");
    assert_eq!((&reloaded.ip, &reloaded.sandbox), (&web.ip, &web.sandbox));
    p.expect_attached(&[&reloaded]);
    check_chain(&reloaded, "reload");

    p.ok(&["rm", "-f", "web"]);
    p.expect_clean(&[&web]);
    // Nothing answers on the node's port any more.
    assert!(get(&lan).is_err(), "the published port still answers");
    drop(lan);
    drop(p);
    root.assert_unchanged();
}

#[test]
fn stop_start_restart_reload_disconnect_connect_rm_keep_store_and_links_exact() {
    let Some(root) = prerequisites("podman_lifecycle") else {
        return;
    };
    let p = Podman::new();
    let ip = |host: u8| format!("{}.{host}", p.net.prefix);
    // `b` stays attached throughout: nothing done to `a` may touch it.
    p.run("a", &[], &[]);
    p.run("b", &[], &[]);
    let (a, b) = (p.ctr("a"), p.ctr("b"));
    // host-local's round robin from the start of the range.
    assert_eq!(
        (a.ip.as_str(), b.ip.as_str()),
        (ip(2).as_str(), ip(3).as_str())
    );
    p.expect_attached(&[&a, &b]);
    let b_port = |p: &Podman| -> Value {
        let b_eth0 = pod_json(&b.sandbox, &["link", "show", "eth0"]);
        p.ports()
            .into_iter()
            .find(|port| port["ifindex"] == b_eth0[0]["link_index"])
            .unwrap()
    };
    let b_port0 = b_port(&p);
    let b_unchanged = |p: &Podman, step: &str| {
        assert_eq!(p.ctr("b").ip, b.ip, "after {step}");
        assert_eq!(
            b_port(p)["ifname"],
            b_port0["ifname"],
            "b's veth after {step}"
        );
        assert_eq!(
            b_port(p)["ifindex"],
            b_port0["ifindex"],
            "b's veth after {step}"
        );
    };

    // stop: DEL before podman returns, and the namespace is gone.
    p.ok(&["stop", "a"]);
    let stopped = p.ctr("a");
    assert_eq!((stopped.ip.as_str(), stopped.sandbox.as_str()), ("", ""));
    assert!(!Path::new(&a.sandbox).exists(), "stop left {}", a.sandbox);
    p.expect_attached(&[&b]);
    b_unchanged(&p, "stop");

    // start: a new namespace and the next address.
    p.ok(&["start", "a"]);
    let a1 = p.ctr("a");
    assert_eq!(a1.ip, ip(4));
    assert_ne!(a1.sandbox, a.sandbox);
    p.expect_attached(&[&a1, &b]);
    b_unchanged(&p, "start");
    p.ping(&b, &a1.ip);

    // restart: DEL then ADD, again a new namespace and the next address.
    p.ok(&["restart", "a"]);
    let a2 = p.ctr("a");
    assert_eq!(a2.ip, ip(5));
    assert_ne!(a2.sandbox, a1.sandbox);
    assert!(
        !Path::new(&a1.sandbox).exists(),
        "restart left {}",
        a1.sandbox
    );
    p.expect_attached(&[&a2, &b]);
    b_unchanged(&p, "restart");

    // network reload: DEL then ADD in the same namespace with IP= and MAC= of before: the
    // same address and MAC on a new veth pair.
    let port_before = pod_json(&a2.sandbox, &["link", "show", "eth0"])[0]["link_index"].clone();
    p.ok(&["network", "reload", "a"]);
    let a3 = p.ctr("a");
    assert_eq!(
        (&a3.ip, &a3.mac, &a3.sandbox),
        (&a2.ip, &a2.mac, &a2.sandbox)
    );
    p.expect_attached(&[&a3, &b]);
    let port_after = pod_json(&a3.sandbox, &["link", "show", "eth0"])[0]["link_index"].clone();
    assert_ne!(
        port_after, port_before,
        "reload did not re-create a's veth pair"
    );
    b_unchanged(&p, "reload");
    p.ping(&b, &a3.ip);

    // network disconnect: DEL; the container keeps running in its namespace with lo only.
    p.ok(&["network", "disconnect", &p.net.name, "a"]);
    let a4 = p.ctr("a");
    assert_eq!(
        (a4.ip.as_str(), a4.sandbox.as_str()),
        ("", a3.sandbox.as_str())
    );
    let links = pod_json(&a3.sandbox, &["link", "show"]);
    let names: Vec<&str> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lo"], "a's links after disconnect");
    p.expect_attached(&[&b]);
    b_unchanged(&p, "disconnect");

    // network connect: ADD without IP=, so the next address.
    p.ok(&["network", "connect", &p.net.name, "a"]);
    let a5 = p.ctr("a");
    assert_eq!(
        (a5.ip.as_str(), a5.sandbox.as_str()),
        (ip(6).as_str(), a3.sandbox.as_str())
    );
    p.expect_attached(&[&a5, &b]);
    b_unchanged(&p, "connect");
    p.ping(&b, &a5.ip);
    p.ping(&a5, &b.ip);

    // rm of the running container: DEL, namespace gone.
    p.ok(&["rm", "-f", "a"]);
    assert!(!Path::new(&a5.sandbox).exists(), "rm left {}", a5.sandbox);
    p.expect_attached(&[&b]);
    b_unchanged(&p, "rm");

    // A container that exits by itself: no podman command is waiting, conmon runs
    // `podman container cleanup` (in the node namespace, with the test's environment),
    // which sends DEL some time after `podman wait` has returned.
    p.run("e", &[], &["true"]);
    assert_eq!(p.ok(&["wait", "e"]), "0");
    let b_only = BTreeMap::from([(b.ip.clone(), format!("{}\r\neth0", b.id))]);
    poll("cleanup after exit", Duration::from_secs(30), || {
        let (store, sandbox) = (p.store(), p.ctr("e").sandbox);
        if store == b_only && sandbox.is_empty() {
            Ok(())
        } else {
            Err(format!("store {store:?}, namespace {sandbox:?}"))
        }
    });
    p.expect_attached(&[&b]);
    b_unchanged(&p, "exit");
    p.ok(&["rm", "e"]);

    p.ok(&["rm", "-f", "b"]);
    p.expect_clean(&[&a5, &b]);
    drop(p);
    root.assert_unchanged();
}

#[test]
fn twenty_concurrent_runs_then_rm_leave_nothing_behind() {
    let Some(root) = prerequisites("podman_concurrent") else {
        return;
    };
    const N: usize = 20;
    let p = Podman::new();
    let names: Vec<String> = (0..N).map(|i| format!("c{i}")).collect();
    let runs: Vec<Child> = names
        .iter()
        .map(|n| {
            let args = p.run_args(n, &[], &[]);
            p.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    for (n, child) in names.iter().zip(runs) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "podman run {n}: {}", text(&out));
    }
    let ctrs: Vec<Ctr> = names.iter().map(|n| p.ctr(n)).collect();
    p.expect_attached(&ctrs.iter().collect::<Vec<_>>());
    // Two of them, far apart in start order, reach each other.
    p.ping(&ctrs[0], &ctrs[N - 1].ip);

    let rms: Vec<Child> = names.iter().map(|n| p.spawn(&["rm", "-f", n])).collect();
    for (n, child) in names.iter().zip(rms) {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "podman rm -f {n}: {}", text(&out));
    }
    // podman 4.3 can return from concurrent `rm -f`s before the last removal is
    // finished: one container still listed an instant later (seen here once in 14 runs
    // under load; upstream podman issue 18874, "rm -fa ... is not actually waiting for
    // container removal"). Gone within seconds is what a user sees; one that stays is a
    // leak, and its state is printed.
    poll("containers removed", Duration::from_secs(30), || {
        match p.ok(&["ps", "-aq"]).as_str() {
            "" => Ok(()),
            _ => Err(p.ok(&["ps", "-a", "--format", "{{.ID}} {{.Names}} {{.State}}"])),
        }
    });
    p.expect_clean(&ctrs.iter().collect::<Vec<_>>());
    drop(p);
    root.assert_unchanged();
}

/// The container side of a namespace.
#[derive(Debug, PartialEq, Eq)]
struct PodView {
    /// Global addresses per interface, lo left out.
    addrs: BTreeMap<String, Vec<String>>,
    /// IPv4 default routes as (gateway, device).
    defaults: BTreeSet<(String, String)>,
}

fn pod_view(sandbox: &str) -> PodView {
    let links = pod_json(sandbox, &["addr", "show"]);
    let addrs = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ifname"] != "lo")
        .map(|l| (l["ifname"].as_str().unwrap().to_string(), global_addrs(l)))
        .collect();
    let routes = pod_json(sandbox, &["-4", "route", "show", "default"]);
    let defaults = routes
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (field("gateway"), field("dev"))
        })
        .collect();
    PodView { addrs, defaults }
}

/// podman's default network shape gives every network a default route, so a container
/// on two of them (`--network a,b`, or `network connect` while on one) gets two: the
/// reference bridge adds the second beside the first. vnet used to refuse it ("add
/// route 0.0.0.0/0 via … dev eth1 in pod: file exists") and the container could not
/// start.
#[test]
fn a_container_on_two_vnet_networks_gets_an_interface_and_a_default_route_on_each() {
    let Some(root) = prerequisites("podman_two_networks") else {
        return;
    };
    let p = Podman::new();
    let (one, two) = (&p.net, p.add_network());
    let run = |name: &str, networks: &str| {
        let args = p.run_args_on(networks, name, &[], &[]);
        p.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // `n` is on the second network only: `m` reaches it through its second interface.
    let n_id = run("n", &two.name);
    let m_id = run("m", &format!("{},{}", one.name, two.name));
    let attachment = |name: &str, net: &Net| -> String {
        let v = p.inspect(name);
        v["NetworkSettings"]["Networks"][&net.name]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let sandbox = p.ctr("m").sandbox;
    let n_ip = attachment("n", &two);
    // The interface each network got in `m`, as its reservation names it.
    let owner = |net: &Net, ip: &str| -> String {
        let content = p.store_of(net).get(ip).cloned().unwrap_or_default();
        let (id, ifname) = content.split_once("\r\n").unwrap_or_default();
        assert_eq!(id, m_id, "{ip} on {} belongs to {content:?}", net.name);
        ifname.to_string()
    };
    // Exactly `m` on `one` and, when `on_two`, on `two`; `n` on `two` throughout.
    // Returns m's address on `one`.
    let expect = |on_two: bool| -> String {
        let ip1 = attachment("m", one);
        let if1 = owner(one, &ip1);
        let mut want_addrs = BTreeMap::from([(if1.clone(), vec![format!("{ip1}/24")])]);
        let mut want_routes = BTreeSet::from([(one.gateway(), if1.clone())]);
        let mut want_masq = BTreeMap::from([
            (ip1.clone(), format!("vnet {} {m_id} {if1}", one.name)),
            (n_ip.clone(), format!("vnet {} {n_id} eth0", two.name)),
        ]);
        let mut want_two = BTreeMap::from([(n_ip.clone(), format!("{n_id}\r\neth0"))]);
        if on_two {
            let ip2 = attachment("m", &two);
            let if2 = owner(&two, &ip2);
            assert_eq!(
                BTreeSet::from([if1.as_str(), if2.as_str()]),
                BTreeSet::from(["eth0", "eth1"])
            );
            want_addrs.insert(if2.clone(), vec![format!("{ip2}/24")]);
            want_routes.insert((two.gateway(), if2.clone()));
            want_masq.insert(ip2.clone(), format!("vnet {} {m_id} {if2}", two.name));
            want_two.insert(ip2.clone(), format!("{m_id}\r\n{if2}"));
        }
        assert_eq!(p.store_of(one).len(), 1, "{:?}", p.store_of(one));
        assert_eq!(
            p.store_of(&two),
            want_two,
            "reservations on the second network"
        );
        assert_eq!(
            pod_view(&sandbox),
            PodView {
                addrs: want_addrs,
                defaults: want_routes
            },
            "m's interfaces and default routes"
        );
        assert_eq!(p.masquerades(), want_masq);
        assert_eq!(p.ports_of(one).len(), 1);
        assert_eq!(p.ports_of(&two).len(), if on_two { 2 } else { 1 });
        ip1
    };

    let ip1 = expect(true);
    let m = p.ctr("m");
    p.ping(&m, &n_ip);
    p.ping(&m, &one.gateway());

    // Leaving the second network takes its interface, route and address only.
    p.ok(&["network", "disconnect", &two.name, "m"]);
    assert_eq!(expect(false), ip1);
    // Joining again: the second default route is added beside the first one.
    p.ok(&["network", "connect", &two.name, "m"]);
    assert_eq!(expect(true), ip1);
    p.ping(&m, &n_ip);

    p.ok(&["rm", "-f", "m", "n"]);
    assert_eq!(p.store_of(one), BTreeMap::new());
    assert_eq!(p.store_of(&two), BTreeMap::new());
    assert_eq!(p.masquerades(), BTreeMap::new());
    assert_eq!((p.ports_of(one), p.ports_of(&two)), (vec![], vec![]));
    assert!(!Path::new(&sandbox).exists(), "{sandbox} left");
    assert_eq!(p.cni_cache(), Vec::<String>::new(), "libcni cache left");
    drop(p);
    root.assert_unchanged();
}
