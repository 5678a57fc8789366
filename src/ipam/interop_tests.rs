//! Sharing a data directory with the reference `host-local` binary. Skipped (loudly) when
//! the binary is not installed.
use super::test_util::{conf, TempDir};
use super::{allocate, find, release, IpamError};
use serde_json::json;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

const HOST_LOCAL: &str = "/usr/lib/cni/host-local";

fn reference_missing() -> bool {
    let missing = !Path::new(HOST_LOCAL).exists();
    if missing {
        eprintln!("SKIPPED: {HOST_LOCAL} is not installed; host-local interop not tested");
    }
    missing
}

/// Runs the reference plugin; returns its stdout, panicking with its output on failure.
fn host_local(command: &str, data_dir: &Path, id: &str, ifname: &str) -> serde_json::Value {
    let config = json!({
        "cniVersion": "1.0.0",
        "name": "mynet",
        "ipam": {"type": "host-local", "subnet": "10.1.2.0/24", "dataDir": data_dir},
    });
    let mut child = Command::new(HOST_LOCAL)
        .env_clear()
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_NETNS", "/proc/self/ns/net")
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(config.to_string().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "host-local {command} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vnet_conf(tmp: &TempDir) -> super::IpamConf {
    conf(tmp.path(), json!([[{"subnet": "10.1.2.0/24"}]]))
}

#[test]
fn reference_add_is_found_and_released_by_vnet() {
    if reference_missing() {
        return;
    }
    let tmp = TempDir::new("interop-add");
    let result = host_local("ADD", tmp.path(), "ref1", "eth0");
    assert_eq!(result["ips"][0]["address"], "10.1.2.2/24");
    assert_eq!(
        find(tmp.path(), "mynet", "ref1", "eth0").unwrap(),
        [ip("10.1.2.2")]
    );
    let e = allocate(&vnet_conf(&tmp), "mynet", "ref1", "eth0").unwrap_err();
    assert!(matches!(e, IpamError::Duplicate { .. }), "{e}");
    assert_eq!(
        release(tmp.path(), "mynet", "ref1", "eth0").unwrap(),
        [ip("10.1.2.2")]
    );
    assert!(!tmp.path().join("mynet/10.1.2.2").exists());
}

#[test]
fn vnet_allocation_is_released_by_reference_del() {
    if reference_missing() {
        return;
    }
    let tmp = TempDir::new("interop-del");
    let got = allocate(&vnet_conf(&tmp), "mynet", "vnet1", "eth0").unwrap();
    let file = tmp
        .path()
        .join("mynet")
        .join(got[0].address.addr().to_string());
    assert!(file.exists());
    host_local("DEL", tmp.path(), "vnet1", "eth0");
    assert!(!file.exists());
}

#[test]
fn round_robin_hint_is_shared_both_ways() {
    if reference_missing() {
        return;
    }
    let tmp = TempDir::new("interop-rr");
    let c = vnet_conf(&tmp);
    assert_eq!(
        allocate(&c, "mynet", "v1", "eth0").unwrap()[0]
            .address
            .to_string(),
        "10.1.2.2/24"
    );
    let result = host_local("ADD", tmp.path(), "r1", "eth0");
    assert_eq!(result["ips"][0]["address"], "10.1.2.3/24");
    assert_eq!(
        allocate(&c, "mynet", "v2", "eth0").unwrap()[0]
            .address
            .to_string(),
        "10.1.2.4/24"
    );
    // The reference honours vnet's reservations when it walks for a free address.
    release(tmp.path(), "mynet", "v1", "eth0").unwrap();
    let result = host_local("ADD", tmp.path(), "r2", "eth0");
    assert_eq!(result["ips"][0]["address"], "10.1.2.5/24");
}
