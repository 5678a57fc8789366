//! `"ipam": {"type": "dhcp"}` for real: the reference dhcp daemon runs its DHCP client on
//! the pod's interface inside the pod's namespace, so that interface must exist, be up and
//! be a port of the bridge (where busybox udhcpd answers) before vnet delegates, and must
//! still be there when DEL asks the daemon to release the lease.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::dhcp::{DhcpNode, POOL};
use common::rootns::RootNs;
use common::*;
use serde_json::Value;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The pod's address from the result, without the prefix.
fn address(r: &Value) -> String {
    let a = r["ips"][0]["address"].as_str().unwrap();
    a.split('/').next().unwrap().to_string()
}

fn pod_mac(r: &Value) -> String {
    r["interfaces"][2]["mac"].as_str().unwrap().to_lowercase()
}

fn in_pool(ip: &str, prefix: &str) -> bool {
    ip.strip_prefix(&format!("{prefix}."))
        .and_then(|h| h.parse::<u8>().ok())
        .is_some_and(|h| (POOL.0..=POOL.1).contains(&h))
}

#[test]
fn a_dhcp_pod_gets_its_lease_renews_it_and_del_releases_it() {
    // A short lease: the daemon renews at half of it.
    let Some(mut n) = DhcpNode::new("dhcp_lease", "10.250.1", 6) else {
        return;
    };
    let root = RootNs::snapshot();
    n.start_server();
    n.start_daemon("5s");
    let pod = Netns::new("p");
    let add = n.call("ADD", "d1", &pod.path(), &n.conf);
    if add.code != 0 {
        panic!("ADD failed: {} {}\n{}", add.stdout, add.stderr, n.logs());
    }
    let r = add.json();
    let ip = address(&r);
    assert!(in_pool(&ip, "10.250.1"), "{r}");
    assert_eq!(r["ips"][0]["address"], format!("{ip}/24"));
    assert_eq!(r["ips"][0]["gateway"], n.gateway.as_str());
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0", "the router option: {r}");
    assert_eq!(pod.addrs("eth0"), vec![format!("{ip}/24")]);
    let default = pod
        .routes("-4")
        .into_iter()
        .find(|rt| rt["dst"] == "default")
        .unwrap_or_else(|| panic!("no default route in the pod: {:?}", pod.routes("-4")));
    assert_eq!(default["gateway"], n.gateway.as_str());
    assert_eq!(n.bridge_ports(), n.veths(), "one port: the pod's veth");
    assert!(pod.ping(&n.gateway), "pod cannot reach its gateway");
    assert!(n.ns.ping(&ip), "node cannot reach the pod");

    // The server's side: the lease is the pod's MAC, and the daemon keeps renewing it.
    // (Until udhcpd rewrites its file after the ACK, it may still show the offer's
    // expiry, a minute away.)
    let first = n.wait_lease(&ip, 5, |l| {
        l.expires
            .is_some_and(|e| e > now() && e <= now() + n.lease + 1)
    });
    assert_eq!(first.mac, pod_mac(&r));
    let renewed = n.wait_lease(&ip, 10, |l| {
        l.expires.is_some_and(|e| e > first.expires.unwrap())
    });
    eprintln!("lease of {ip}: expiry {first:?} then {renewed:?}");

    // DEL asks the daemon to release the lease while eth0 still exists, then deletes it.
    n.call("DEL", "d1", &pod.path(), &n.conf).ok();
    n.wait_lease(&ip, 5, |l| l.expires.is_none());
    assert_eq!(pod.links(), vec!["lo"]);
    assert!(n.veths().is_empty() && n.bridge_ports().is_empty());
    n.call("DEL", "d1", &pod.path(), &n.conf).ok();
    root.assert_unchanged();
}

#[test]
fn without_the_daemon_add_fails_and_leaves_nothing() {
    let Some(mut n) = DhcpNode::new("dhcp_no_daemon", "10.250.2", 60) else {
        return;
    };
    n.start_server();
    let pod = Netns::new("p");
    let e = n.call("ADD", "d1", &pod.path(), &n.conf).err(999);
    let msg = e["msg"].as_str().unwrap();
    assert!(msg.contains("error dialing DHCP daemon"), "{e}");
    assert_eq!(pod.links(), vec!["lo"], "no eth0 left in the pod");
    assert!(n.veths().is_empty(), "no veth left: {:?}", n.veths());
    assert!(n.bridge_ports().is_empty());
    // DEL without the daemon: the plugin's error is reported, the rest is done.
    n.call("DEL", "d1", &pod.path(), &n.conf).err(999);
    // With a daemon that holds no lease for it, DEL has nothing to release: success.
    n.start_daemon("5s");
    n.call("DEL", "d1", &pod.path(), &n.conf).ok();
}

#[test]
fn no_server_answering_fails_add_and_leaves_nothing() {
    let Some(mut n) = DhcpNode::new("dhcp_no_server", "10.250.3", 60) else {
        return;
    };
    // The daemon gives up after a few short tries (about 15 s): nobody answers.
    n.start_daemon("1s");
    let pod = Netns::new("p");
    let e = n.call("ADD", "d1", &pod.path(), &n.conf).err(999);
    assert!(
        e["msg"].as_str().unwrap().contains("DHCP.Allocate"),
        "{e}\n{}",
        n.logs()
    );
    assert_eq!(pod.links(), vec!["lo"]);
    assert!(n.veths().is_empty() && n.bridge_ports().is_empty());
    n.call("DEL", "d1", &pod.path(), &n.conf).ok();
}

#[test]
fn del_is_best_effort_once_the_lease_or_the_pod_is_gone() {
    let Some(mut n) = DhcpNode::serving("dhcp_del", "10.250.4", 60) else {
        return;
    };
    let pod = Netns::new("p");
    let r = n.call("ADD", "d1", &pod.path(), &n.conf).ok().json();
    // CHECK goes to the plugin too (Debian's dhcp 1.1.1 answers it by acquiring the
    // lease again; the daemon restart below drops both).
    n.call("CHECK", "d1", &pod.path(), &with_prev(&n.conf, &r))
        .ok();
    // A restarted daemon has forgotten the lease: DEL still removes the pod's link.
    n.stop_daemon();
    n.start_daemon("5s");
    n.call("DEL", "d1", &pod.path(), &n.conf).ok();
    assert_eq!(pod.links(), vec!["lo"]);
    assert!(n.veths().is_empty());

    // The runtime's second DEL comes without a namespace: IPAM only, nothing to do.
    n.call("DEL", "d1", "", &n.conf).ok();

    // A pod namespace deleted before DEL: the daemon's client thread still holds it,
    // and with it the veth (the lease goes on being renewed); DEL's release lets both go.
    let r = n.call("ADD", "d2", &pod.path(), &n.conf).ok().json();
    let ip = address(&r);
    let path = pod.path();
    drop(pod);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        n.veths().len(),
        1,
        "the daemon no longer holds the namespace?"
    );
    n.call("DEL", "d2", &path, &n.conf).ok();
    let t0 = std::time::Instant::now();
    while !n.veths().is_empty() {
        assert!(
            t0.elapsed().as_secs() < 10,
            "veth of the deleted pod still on the node: {:?}",
            n.veths()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The link was still there, in the namespace the daemon held: the release got out.
    n.wait_lease(&ip, 5, |l| l.expires.is_none());
}

/// VNET_TRACE prints the calls in the order they ran: the link, the plugin, the address
/// it answered with; at DEL the plugin before the link goes. Explain says the same.
#[test]
fn trace_and_explain_show_the_link_before_the_plugin() {
    let Some(n) = DhcpNode::serving("dhcp_trace", "10.250.5", 60) else {
        return;
    };
    let pod = Netns::new("p");
    let traced = |command: &str| {
        let c = Cni::new(Some(&n.ns))
            .pod(command, "t1", &pod.path(), "eth0")
            .env("VNET_TRACE", "1")
            .run_json(&n.conf);
        assert_eq!(c.code, 0, "{c:?}\n{}", n.logs());
        c
    };
    let add = traced("ADD");
    let ip = address(&add.json());
    let at = |text: &str, what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what:?} not in the trace:\n{text}"))
    };
    let t = &add.stderr;
    let plugin = format!("CNI_COMMAND=ADD {}", n.dhcp.display());
    assert!(at(t, "type veth peer name eth0") < at(t, &plugin), "{t}");
    assert!(at(t, "link set eth0 up") < at(t, &plugin), "{t}");
    assert!(
        at(t, &plugin) < at(t, &format!("addr add {ip}/24 dev eth0")),
        "{t}"
    );
    // The bridge holds the gateway already: the trace says so instead of adding it.
    assert!(
        t.contains("v-net-0 already holds the gateway 10.250.5.1/24"),
        "{t}"
    );
    let del = traced("DEL");
    let t = &del.stderr;
    let plugin = format!("CNI_COMMAND=DEL {}", n.dhcp.display());
    assert!(at(t, &plugin) < at(t, "link del eth0"), "{t}");

    let file = n.dir.path().join("net.conf");
    std::fs::write(&file, n.conf.to_string()).unwrap();
    let explain = |verb: &str| {
        let out = sh_ok(&[
            "ip",
            "netns",
            "exec",
            &n.ns.name,
            BIN,
            "explain",
            verb,
            "--conf",
            file.to_str().unwrap(),
            "--netns",
            &pod.path(),
        ]);
        out
    };
    let e = explain("add");
    assert!(
        at(&e, "link set eth0 up") < at(&e, "CNI_COMMAND=ADD CNI_PATH/dhcp"),
        "{e}"
    );
    assert!(e.contains("bridge v-net-0 exists already"), "{e}");
    let e = explain("del");
    assert!(
        at(&e, "CNI_COMMAND=DEL CNI_PATH/dhcp") < at(&e, "link del eth0"),
        "{e}"
    );
}
