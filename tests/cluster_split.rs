//! `vnet cluster split`, the built binary: printed table, written files, refusals.
//! Pure, no root needed.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

const NODES: &str = "node1=192.168.1.11,node2=192.168.1.12,node3=192.168.1.13";

fn split(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(["cluster", "split"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `NODE POD-SUBNET` pairs of the printed table.
fn rows(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[1].parse::<std::net::IpAddr>().is_ok()
        })
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {} {}", f[0], f[1], f[2])
        })
        .collect()
}

#[test]
fn weave_range_over_three_nodes_is_three_slash_14s_and_one_spare() {
    let (code, out, err) = split(&["--range", "10.32.0.0/12", "--nodes", NODES]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![
            "node1 192.168.1.11 10.32.0.0/14",
            "node2 192.168.1.12 10.36.0.0/14",
            "node3 192.168.1.13 10.40.0.0/14"
        ]
    );
    assert!(out.contains("spare (unassigned): 10.44.0.0/14"), "{out}");
}

#[test]
fn per_node_slash_24_writes_the_table_and_a_config_per_node() {
    let dir = TempDir::new("split");
    let out_dir = dir.path().to_str().unwrap();
    let (code, out, err) = split(&[
        "--range",
        "10.244.0.0/16",
        "--per-node",
        "/24",
        "--nodes",
        NODES,
        "--out",
        out_dir,
        "--data-dir",
        "/run/vnet-lab/{node}/ipam",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![
            "node1 192.168.1.11 10.244.1.0/24",
            "node2 192.168.1.12 10.244.2.0/24",
            "node3 192.168.1.13 10.244.3.0/24"
        ]
    );
    // The written table is the shipped example.
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("nodes.json")).unwrap()).unwrap();
    let shipped: Value = serde_json::from_str(include_str!("../conf/nodes.json")).unwrap();
    assert_eq!(written, shipped);
    let c: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("node3").join("10-bridge.conf")).unwrap(),
    )
    .unwrap();
    assert_eq!(c["ipam"]["subnet"], "10.244.3.0/24");
    assert_eq!(c["ipam"]["dataDir"], "/run/vnet-lab/node3/ipam");
    assert_eq!(c["vnet"]["node"], "node3");
    assert_eq!(c["ipMasq"], true);
    assert_eq!(c["bridge"], "v-net-0");
}

#[test]
fn kubectl_output_is_the_source_of_truth() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/kubectl-nodes.json"
    );
    let (code, out, err) = split(&["--from-kubectl", fixture, "--range", "10.244.0.0/16"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        rows(&out),
        vec![
            "node1 192.168.1.11 10.244.0.0/24",
            "node2 192.168.1.12 10.244.1.0/24",
            "node3 192.168.1.13 10.244.2.0/24"
        ]
    );
}

#[test]
fn overlapping_and_too_small_inputs_are_refused() {
    let (code, _, err) = split(&["--range", "10.0.0.0/29", "--nodes", NODES]);
    assert_eq!(code, 2);
    assert!(err.contains("too small for 3 nodes"), "{err}");
    let (code, _, err) = split(&[
        "--range",
        "192.168.0.0/16",
        "--per-node",
        "/24",
        "--nodes",
        NODES,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("inside the cluster range"), "{err}");
    let (code, _, err) = split(&[
        "--range",
        "10.244.0.0/23",
        "--per-node",
        "/24",
        "--nodes",
        NODES,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("holds 2 blocks of /24"), "{err}");
}

#[test]
fn the_shipped_node_configs_are_what_split_writes() {
    let dir = TempDir::new("split");
    let (code, _, err) = split(&[
        "--range",
        "10.244.0.0/16",
        "--per-node",
        "/24",
        "--nodes",
        NODES,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let conf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    for file in [
        "nodes.json",
        "node1/10-bridge.conf",
        "node2/10-bridge.conf",
        "node3/10-bridge.conf",
    ] {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            std::fs::read_to_string(conf.join(file)).unwrap(),
            "conf/{file} differs from what `vnet cluster split` writes: regenerate it"
        );
    }
}
