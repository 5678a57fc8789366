//! `vnet ipam gc` against each source of truth, and `vnet ipam release`.

#![allow(clippy::unwrap_used)]

mod common;
mod ipam_common;

use common::{root_or_skip, sh_ok, Netns};
use ipam_common::*;
use serde_json::{json, Value};

/// a, b, c, d on eth0 (10.48.0.2-5), a also on net1 (.6), and a legacy file of `old`.
fn populated() -> Store {
    let s = Store::subnet("10.48.0.0/24");
    for id in ["a", "b", "c", "d"] {
        s.add(id);
    }
    s.call_if("ADD", "a", "net1").ok();
    s.write("10.48.0.50", b"old");
    s.write("10.48.0.51", b"");
    s
}

fn gc(s: &Store, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["gc", "--json", "--min-age", "0"];
    all.extend_from_slice(args);
    let out = s.cli(&all);
    let code = out.status.code().unwrap();
    let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        code == 0,
        "gc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, doc)
}

fn stale(doc: &Value) -> Vec<String> {
    doc["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap().to_string())
        .collect()
}

fn names(s: &Store) -> Vec<String> {
    s.files().into_iter().map(|f| f.0).collect()
}

#[test]
fn gc_with_valid_attachments_dry_run_then_apply() {
    let s = populated();
    let list = s.data.path().join("valid.json");
    std::fs::write(
        &list,
        json!([{"containerID": "a", "ifname": "eth0"}, {"containerID": "c", "ifname": "eth0"}])
            .to_string(),
    )
    .unwrap();
    let before = names(&s);
    let (_, doc) = gc(&s, &["--valid", list.to_str().unwrap()]);
    assert_eq!(doc["applied"], false);
    assert_eq!(doc["source"], "valid-attachments");
    // b and d are gone, a's net1 is not in the list, `old` is a legacy file of no valid ID.
    assert_eq!(
        stale(&doc),
        ["10.48.0.3", "10.48.0.5", "10.48.0.6", "10.48.0.50"]
    );
    assert_eq!(doc["kept"], 2);
    assert_eq!(doc["unknown_owner"][0]["address"], "10.48.0.51");
    assert_eq!(names(&s), before, "a dry run changes nothing");

    // The whole CNI GC config works as the list too, and --apply releases.
    std::fs::write(
        &list,
        json!({"cniVersion": "1.1.0", "name": NET,
               "cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"},
                                             {"containerID": "c", "ifname": "eth0"}]})
        .to_string(),
    )
    .unwrap();
    let (_, doc) = gc(&s, &["--valid", list.to_str().unwrap(), "--apply"]);
    assert_eq!(doc["applied"], true);
    assert_eq!(stale(&doc).len(), 4);
    assert_eq!(names(&s), ["10.48.0.2", "10.48.0.4", "10.48.0.51"]);
    // The index followed: DEL of a kept container still finds its address.
    s.del("c");
    assert_eq!(names(&s), ["10.48.0.2", "10.48.0.51"]);
    let (code, doc) = s.status_json();
    assert_eq!(code, 1, "the empty file stays a finding");
    assert_eq!(doc["networks"][0]["index"], "valid");
}

#[test]
fn gc_with_a_runtime_container_list_and_the_safety_catches() {
    let s = populated();
    let list = s.data.path().join("pods.txt");
    std::fs::write(&list, "b\n\nd\n# comment\nold\n").unwrap();
    let out = s.cli(&[
        "gc",
        "--containers",
        list.to_str().unwrap(),
        "--min-age",
        "0",
    ]);
    let human = text(&out);
    assert!(
        human.starts_with(
            "network ipamnet: 3 stale of 7 reservations (dry run; --apply releases them)\n"
        ),
        "{human}"
    );
    assert!(human.contains("would release 10.48.0.2  a/eth0"), "{human}");
    assert!(
        human.contains("kept 10.48.0.51: owner unreadable"),
        "{human}"
    );
    // Every reservation is younger than the default minimum age: nothing is stale.
    let out = s.cli(&["gc", "--containers", list.to_str().unwrap(), "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((stale(&doc).len(), doc["kept"].as_u64()), (0, Some(6)));
    // An empty list is refused unless asked for (a failed `crictl` must not wipe the node).
    std::fs::write(&list, "\n").unwrap();
    let out = s.cli(&["gc", "--containers", list.to_str().unwrap(), "--apply"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-empty"));
    assert_eq!(names(&s).len(), 7);
    let (_, doc) = gc(
        &s,
        &[
            "--containers",
            list.to_str().unwrap(),
            "--allow-empty",
            "--apply",
        ],
    );
    assert_eq!(stale(&doc).len(), 6);
    assert_eq!(names(&s), ["10.48.0.51"]);
    // Exactly one source is required; a network is required.
    assert_eq!(s.cli(&["gc"]).status.code(), Some(2));
    let data = s.data.path().to_str().unwrap();
    assert_eq!(
        vnet(&["ipam", "gc", "--netns", "--data-dir", data])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn gc_against_live_network_namespaces() {
    if !root_or_skip("gc_against_live_network_namespaces") {
        return;
    }
    let s = Store::subnet("10.213.77.0/24");
    let (live, gone) = (s.add("live"), s.add("gone"));
    // The pod that still exists holds its address on eth0 (a veth pair inside the pod
    // namespace: the machine has no dummy links, and nothing touches the host namespace).
    let pod = Netns::new("gcp");
    sh_ok(&[
        "ip", "-n", &pod.name, "link", "add", "eth0", "type", "veth", "peer", "name", "p0",
    ]);
    sh_ok(&[
        "ip",
        "-n",
        &pod.name,
        "addr",
        "add",
        &format!("{live}/24"),
        "dev",
        "eth0",
    ]);
    let (_, doc) = gc(&s, &["--netns", "--apply"]);
    assert_eq!(doc["source"], "netns");
    assert_eq!(stale(&doc), [gone]);
    assert_eq!(names(&s), std::slice::from_ref(&live));
    // Once the pod namespace is deleted, its address goes too.
    drop(pod);
    let (_, doc) = gc(&s, &["--netns", "--apply"]);
    assert_eq!(stale(&doc), [live]);
    assert!(names(&s).is_empty());
}

#[test]
fn release_by_address_and_by_container() {
    let s = populated();
    let out = s.cli(&["release", "10.48.0.3"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out),
        "network ipamnet: released 10.48.0.3 (held by b/eth0)\n"
    );
    let out = s.cli(&["release", "10.48.0.3"]);
    assert_eq!(
        (out.status.code(), text(&out)),
        (Some(1), "network ipamnet: nothing to release\n".into())
    );
    // With --ifname: that attachment only, as DEL.
    let out = s.cli(&["release", "--container", "a", "--ifname", "net1", "--json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["released"],
        json!([{"address": "10.48.0.6", "container_id": "a", "ifname": "net1"}])
    );
    // Without: every attachment of the container, and legacy files of that ID.
    s.call_if("ADD", "a", "net1").ok();
    let out = s.cli(&["release", "--container", "a"]);
    assert_eq!(text(&out).lines().count(), 2, "{}", text(&out));
    let out = s.cli(&["release", "--container", "old"]);
    assert_eq!(
        text(&out),
        "network ipamnet: released 10.48.0.50 (held by old, legacy file)\n"
    );
    assert_eq!(names(&s), ["10.48.0.4", "10.48.0.5", "10.48.0.51"]);
    // The index kept up: plain DELs still find what is left.
    s.del("c");
    s.del("d");
    assert_eq!(names(&s), ["10.48.0.51"]);
    assert_eq!(
        s.cli(&["release"]).status.code(),
        Some(2),
        "address or --container"
    );
}
