//! scripts/install.sh into a temporary prefix: binary, host-local link, config kept.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

fn install(prefix: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .args(["--prefix", prefix.to_str().unwrap(), "--binary", BIN])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn installs_binary_and_config_and_keeps_an_existing_config() {
    let root = TempDir::new("inst");
    let out = install(root.path(), &["--host-local"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = root.path().join("opt/cni/bin/vnet");
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(BIN).unwrap());
    let link = std::fs::read_link(root.path().join("opt/cni/bin/host-local")).unwrap();
    assert_eq!(link.to_str(), Some("vnet"));
    let conf = root.path().join("etc/cni/net.d/10-bridge.conf");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&conf).unwrap()).unwrap();
    assert_eq!(v["type"], "vnet");
    assert_eq!(v["bridge"], "v-net-0");
    assert_eq!(v["ipam"]["subnet"], "10.244.1.0/24");

    // A second install keeps the operator's edited config.
    std::fs::write(&conf, "{\"edited\": true}").unwrap();
    assert!(install(root.path(), &[]).status.success());
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "{\"edited\": true}"
    );
}

#[test]
fn shipped_config_is_accepted_by_the_plugin() {
    let conf = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/10-bridge.conf")).unwrap();
    let out = Cni::new(None)
        .env("CNI_COMMAND", "VERSION")
        .run(&conf)
        .ok()
        .json();
    assert_eq!(out["cniVersion"], "1.0.0");
    let parsed = vnet::cni::NetConf::parse(
        vnet::cni::config::decode(&conf).unwrap(),
        &vnet::cni::args::CniArgs::default(),
    )
    .unwrap();
    assert!(parsed.builtin_ipam() && parsed.is_default_gateway);
}
