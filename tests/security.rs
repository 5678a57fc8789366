//! Security, black box: names that try to leave their directory are refused before the
//! disk or the kernel is touched; reservation files are not world-writable; the plugin
//! never runs another program (no shell, no `ip`, no `sysctl`, no `nft`, also with
//! `ipMasq`) when IPAM is built in.
//!
//! "Before anything is touched" is checked with strace where it is installed (CI installs
//! it): no netlink socket, no setns, no mkdir, no file created. Without strace the checks
//! fall back to looking at the kernel and the disk afterwards, and say so.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn strace() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/strace");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var_os("CI").is_some() {
        panic!("security tests need strace under CI (apt-get install strace)");
    }
    eprintln!("\n*** security: strace missing, syscall-level checks SKIPPED (apt-get install strace) ***\n");
    None
}

/// Runs one call of `bin` (named `argv0`) in `node`, under strace when available;
/// returns the call and the trace (empty without strace).
fn traced(
    node: &Netns,
    bin: &Path,
    env: &[(&str, String)],
    stdin: &Value,
    trace_set: &str,
) -> (Call, String) {
    let dir = TempDir::new("tr");
    let out = dir.path().join("trace");
    let mut c = Cni::new(Some(node));
    match strace() {
        Some(st) => c.bin = st,
        None => c.bin = bin.to_path_buf(),
    }
    for (k, v) in env {
        c = c.env(k, v);
    }
    let call = if c.bin != bin {
        // strace runs the plugin as its child: -f follows threads and children.
        let args = [
            "-f",
            "-qq",
            "-e",
            &format!("trace={trace_set}"),
            "-o",
            &out.display().to_string(),
            "--",
            &bin.display().to_string(),
        ];
        run_with_args(&c, &args, stdin.to_string().as_bytes())
    } else {
        run_with_args(&c, &[], stdin.to_string().as_bytes())
    };
    let trace = std::fs::read_to_string(&out).unwrap_or_default();
    (call, trace)
}

/// `Cni::run` with extra arguments after the binary.
fn run_with_args(c: &Cni, args: &[&str], stdin: &[u8]) -> Call {
    use std::io::Write;
    use std::process::Stdio;
    let node = c.node.unwrap();
    // By absolute path: a PATH in `c.env` would also steer the lookup of `ip` itself.
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap();
    let mut cmd = Command::new(ip);
    cmd.args(["netns", "exec", &node.name])
        .arg(&c.bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(c.env.iter().map(|(k, v)| (k, v)))
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

/// Syscalls that would mean the plugin acted: a netlink socket, entering a namespace,
/// creating a directory or a file, removing or renaming one.
const ACTING: &str =
    "socket,setns,mkdir,mkdirat,creat,openat,open,unlink,unlinkat,rename,renameat,renameat2,rmdir";

fn assert_did_nothing(what: &str, trace: &str) {
    for line in trace.lines() {
        let acted = line.contains("AF_NETLINK")
            || line.contains("setns(")
            || line.contains("mkdir")
            || line.contains("O_CREAT")
            || line.contains("unlink")
            || line.contains("rename")
            || line.contains("rmdir");
        assert!(!acted, "{what}: the plugin acted before refusing: {line}");
    }
}

fn pod_env(command: &str, id: &str, pod: &Netns, ifname: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CNI_COMMAND", command.to_string()),
        ("CNI_CONTAINERID", id.to_string()),
        ("CNI_NETNS", pod.path()),
        ("CNI_IFNAME", ifname.to_string()),
        ("CNI_PATH", REF_DIR.to_string()),
    ]
}

#[test]
fn escaping_names_are_refused_before_disk_or_kernel() {
    if !root_or_skip("escaping_names") {
        return;
    }
    let node = Node::new("10.247.1.0/24");
    let pod = Netns::new("p");
    // A directory the escapes aim at: it must stay empty.
    let target = TempDir::new("target");
    let sibling = target.path().file_name().unwrap().to_str().unwrap();
    let long = "n".repeat(300);
    let mut bad_confs: Vec<(String, Value)> = Vec::new();
    for name in [
        format!("../{sibling}"),
        "..".to_string(),
        "/etc".to_string(),
        "a/b".to_string(),
        "a\u{0}b".to_string(),
        long.clone(),
    ] {
        let mut c = node.conf.clone();
        c["name"] = json!(name);
        bad_confs.push((format!("network name {name:.40?}"), c));
    }
    let data = node.data.path().display().to_string();
    for dir in [
        format!("{data}/../{sibling}"),
        "relative/networks".to_string(),
        format!("{data}/a\u{0}b"),
        format!("/{}", "d".repeat(5000)),
        "/..".to_string(),
    ] {
        let mut c = node.conf.clone();
        c["ipam"]["dataDir"] = json!(dir);
        bad_confs.push((format!("dataDir {dir:.60?}"), c));
    }
    let mut tried = 0;
    for (what, conf) in &bad_confs {
        for command in ["ADD", "DEL", "CHECK"] {
            let env = pod_env(command, "sec1", &pod, "eth0");
            let (call, trace) = traced(&node.ns, Path::new(BIN), &env, conf, ACTING);
            let v = call.err(7);
            assert!(
                v["msg"].as_str().unwrap().len() < 1000,
                "{what}: huge message"
            );
            assert_did_nothing(&format!("{command} {what}"), &trace);
            tried += 1;
        }
    }
    let bad_env: Vec<(&str, &str)> = vec![
        ("CNI_CONTAINERID", "../../x"),
        ("CNI_CONTAINERID", "/abs"),
        ("CNI_CONTAINERID", ".."),
        ("CNI_CONTAINERID", &long[..]),
        ("CNI_IFNAME", "../x"),
        ("CNI_IFNAME", "/"),
        ("CNI_IFNAME", "a/b"),
        ("CNI_IFNAME", "eth0-way-too-long"),
    ];
    let long_id = "i".repeat(600);
    for (var, value) in bad_env
        .iter()
        .copied()
        .chain([("CNI_CONTAINERID", long_id.as_str())])
    {
        for command in ["ADD", "DEL", "CHECK"] {
            let mut env = pod_env(command, "sec1", &pod, "eth0");
            env.retain(|(k, _)| *k != var);
            env.push((var, value.to_string()));
            let (call, trace) = traced(&node.ns, Path::new(BIN), &env, &node.conf, ACTING);
            call.err(4);
            assert_did_nothing(&format!("{command} {var}={value:.40?}"), &trace);
            tried += 1;
        }
    }
    // The same through vnet as the IPAM plugin alone (linked as host-local).
    let bin_dir = TempDir::new("bin");
    let host_local = bin_dir.path().join("host-local");
    std::os::unix::fs::symlink(BIN, &host_local).unwrap();
    for (what, conf) in &bad_confs {
        let env = pod_env("ADD", "sec1", &pod, "eth0");
        let (call, trace) = traced(&node.ns, &host_local, &env, conf, ACTING);
        call.err(7);
        assert_did_nothing(&format!("host-local {what}"), &trace);
        tried += 1;
    }
    assert!(tried > 50);
    eprintln!("inputs: {tried}");
    // The detector itself works: a good ADD does open netlink and create files.
    let env = pod_env("ADD", "sec-good", &pod, "eth0");
    let (call, trace) = traced(&node.ns, Path::new(BIN), &env, &node.conf, ACTING);
    call.ok();
    if strace().is_some() {
        assert!(
            trace.contains("AF_NETLINK") && trace.contains("O_CREAT"),
            "{trace}"
        );
    }
    let env = pod_env("DEL", "sec-good", &pod, "eth0");
    traced(&node.ns, Path::new(BIN), &env, &node.conf, ACTING)
        .0
        .ok();
    assert!(node.reserved().is_empty());
    std::fs::remove_dir_all(node.net_dir()).unwrap();
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 0);
    assert_eq!(std::fs::read_dir(node.data.path()).unwrap().count(), 0);
    // Only the good ADD's shared bridge is left.
    assert_eq!(node.ns.links(), vec!["lo", "v-net-0"]);
    assert_eq!(pod.links(), vec!["lo"]);
}

#[test]
fn reservation_files_are_not_world_writable_even_with_umask_0() {
    if !root_or_skip("file_modes") {
        return;
    }
    let node = Node::new("10.247.2.0/24");
    let pods: Vec<Netns> = (0..2).map(|_| Netns::new("p")).collect();
    for (i, pod) in pods.iter().enumerate() {
        // A runtime with umask 0 must not make the store writable by everyone.
        let mut c = Cni::new(Some(&node.ns)).bin("/bin/sh");
        for (k, v) in pod_env("ADD", &format!("m{i}"), pod, "eth0") {
            c = c.env(k, &v);
        }
        let call = run_with_args(
            &c,
            &["-c", &format!("umask 000 && exec {BIN}")],
            node.conf.to_string().as_bytes(),
        );
        assert_eq!(call.code, 0, "{} {}", call.stdout, call.stderr);
    }
    let mut seen = 0;
    let dir = node.net_dir();
    let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o002, 0, "network directory mode {dir_mode:o}");
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let mode = e.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o002, 0, "{name} is world-writable ({mode:o})");
        if name.parse::<std::net::IpAddr>().is_ok() || name.starts_with("last_reserved_ip") {
            // As the reference since v1.4.0: owner only.
            assert_eq!(mode, 0o600, "{name} mode {mode:o}");
            seen += 1;
        }
    }
    assert_eq!(seen, 3, "two reservations and one last_reserved_ip");
}

/// A directory of programs that must never run: each leaves a mark if it does.
fn trap_dir(marks: &Path) -> TempDir {
    let dir = TempDir::new("trap");
    for prog in [
        "sh",
        "bash",
        "dash",
        "ip",
        "sysctl",
        "iptables",
        "nft",
        "host-local",
    ] {
        let p = dir.path().join(prog);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho {prog} \"$@\" >> {}\nexit 1\n",
                marks.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

#[test]
fn the_plugin_runs_no_other_program() {
    if !root_or_skip("no_exec") {
        return;
    }
    let node = Node::new("10.247.3.0/24");
    let pod = Netns::new("p");
    let marks_dir = TempDir::new("marks");
    let marks = marks_dir.path().join("ran");
    let trap = trap_dir(&marks);
    let trap_path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", trap.path().display());
    let mut conf = node.conf.clone();
    conf["cniVersion"] = json!("1.1.0");
    // With masquerade too: vnet speaks nf_tables netlink itself, no `nft` (a trap here).
    conf["ipMasq"] = json!(true);
    let mut results = Vec::new();
    let mut run = |command: &str, conf: &Value| -> Call {
        let mut env = pod_env(command, "x1", &pod, "eth0");
        // CNI_PATH and PATH both point at the traps: a lookup would find them first.
        env.retain(|(k, _)| *k != "CNI_PATH");
        env.push(("CNI_PATH", trap.path().display().to_string()));
        env.push(("PATH", trap_path.clone()));
        let (call, trace) = traced(&node.ns, Path::new(BIN), &env, conf, "execve,execveat");
        if !trace.is_empty() {
            let execs: Vec<&str> = trace.lines().filter(|l| l.contains("execve")).collect();
            assert_eq!(execs.len(), 1, "{command}: {execs:?}");
            assert!(execs[0].contains(BIN), "{command}: {execs:?}");
        }
        results.push(command.to_string());
        call
    };
    let add = run("ADD", &conf).ok().json();
    let with_prev = with_prev(&conf, &add);
    run("CHECK", &with_prev).ok();
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "x1", "ifname": "eth0"}]);
    run("GC", &gc).ok();
    run("STATUS", &conf).ok();
    run("DEL", &with_prev).ok();
    run("DEL", &with_prev).ok();
    // Failing paths too: a kernel refusal rolled back, a missing netns.
    let mut bad_route = conf.clone();
    bad_route["ipam"]["routes"] = json!([{"dst": "10.99.0.0/16", "gw": "192.0.2.1"}]);
    run("ADD", &bad_route).err(107);
    assert_eq!(results.len(), 7);
    assert!(
        !marks.exists(),
        "the plugin ran: {}",
        std::fs::read_to_string(&marks).unwrap_or_default()
    );
    assert!(node.reserved().is_empty());
}
