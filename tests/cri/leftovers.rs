//! What a containerd that did not tear its pods down leaves on the machine, and its
//! removal: after a failed test, a containerd killed mid-way, a pod never stopped.
//! Processes are found by what only this test's containerd gave them (its socket, its
//! cgroup parent); files by the sandbox IDs it handed to the plugins.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Where containerd 1.6's runc shims put their sockets, whatever `--state` says: named by
/// sha256("<containerd socket>/<namespace>/<sandbox id>").
const SHIM_SOCKETS: &str = "/run/containerd/s";
/// libcni's result cache: containerd 1.6 does not move it.
const CNI_CACHE: &str = "/var/lib/cni/results";

/// SIGKILLs the shims serving `sock` and every process in the cgroup `parent` (the pods'),
/// and waits until they are gone.
pub fn kill_processes(sock: &str, cgroup_parent: &str) {
    let cg = format!(":{cgroup_parent}/");
    let mut victims = Vec::new();
    for pid in proc_pids() {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let shim = args
            .windows(2)
            .any(|w| w[0] == b"-address" && w[1] == sock.as_bytes());
        let cgroups = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if shim || cgroups.contains(&cg) {
            victims.push(pid);
        }
    }
    for pid in &victims {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while victims.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Unmounts everything under `dir` (containerd's shm, netns and rootfs mounts), last
/// mounted first, until nothing is left.
pub fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    for _ in 0..5 {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let points: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        if points.is_empty() {
            return;
        }
        for p in points.iter().rev() {
            let _ = Command::new("umount").args(["-l", p]).output();
        }
    }
}

/// The cgroup `parent` and its children in every hierarchy (v1 controllers or v2). runc
/// creates the parent and leaves it behind even after a clean removal.
pub fn remove_cgroups(parent: &str) {
    let rel = parent.trim_start_matches('/');
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(rd) = fs::read_dir("/sys/fs/cgroup") {
        roots.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for root in roots {
        let dir = root.join(rel);
        while dir.is_dir() {
            if let Ok(rd) = fs::read_dir(&dir) {
                for child in rd.filter_map(|e| e.ok()).map(|e| e.path()) {
                    if child.is_dir() {
                        let _ = fs::remove_dir(child);
                    }
                }
            }
            // A killed process leaves its cgroup a moment after it is gone.
            if fs::remove_dir(&dir).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The shim sockets and libcni cache files of the sandboxes `ids` of containerd `sock`.
pub fn remove_files_of(sock: &str, ids: &[String]) {
    for id in ids {
        let key = format!("{sock}/k8s.io/{id}");
        let _ = fs::remove_file(Path::new(SHIM_SOCKETS).join(sha256_hex(&key)));
        if let Ok(rd) = fs::read_dir(CNI_CACHE) {
            for e in rd.filter_map(|e| e.ok()) {
                if e.file_name().to_string_lossy().contains(id.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

fn proc_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Running, not a zombie waiting for its parent.
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

fn sha256_hex(text: &str) -> String {
    let Ok(mut child) = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        return String::new();
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
