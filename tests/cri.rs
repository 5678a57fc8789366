//! containerd's CRI plugin, the path a kubelet takes into a runtime, running pod sandboxes
//! on vnet. Debian's containerd 1.6 is started privately inside a node namespace of the
//! test, with the conflist vnet → portmap → loopback and a pause image built here, and
//! driven by tests/cri/cri_client.py with the calls a kubelet makes (RunPodSandbox,
//! PodSandboxStatus, StopPodSandbox, RemovePodSandbox). A wrapper in containerd's bin_dir
//! records every plugin call, so the tests also pin down how containerd calls a plugin.

#![allow(clippy::unwrap_used)]

#[path = "cri/calls.rs"]
mod calls;
mod common;
#[path = "cri/harness.rs"]
mod harness;
#[path = "cri/leftovers.rs"]
mod leftovers;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use calls::CniCall;
use common::rootns::RootNs;
use harness::{poll, CriNode, NODE_IP, POD_NAMESPACE};

const HOST_PORT: u16 = 18080;
const POD_PORT: u16 = 8080;

/// The bridge's address: the subnet's first host, host-local's default gateway.
fn gateway(node: &CriNode) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(node.subnet.network()) + 1)
}

/// Asserts `ip` is a pod address of the node's range and returns it.
fn assert_pod_ip(node: &CriNode, ip: &str) -> Ipv4Addr {
    let a: Ipv4Addr = ip
        .parse()
        .unwrap_or_else(|_| panic!("pod IP {ip:?} is not IPv4"));
    assert!(node.subnet.contains(&a), "{a} is not in {}", node.subnet);
    assert!(
        a != gateway(node) && a != node.subnet.network() && a != node.subnet.broadcast(),
        "{a} is not a host address of {} besides the gateway",
        node.subnet
    );
    a
}

/// The addresses on the pod's eth0, as `addr/prefix`.
fn pod_addrs(netns: &str) -> Vec<String> {
    let out = CriNode::in_netns(netns, &["ip", "-j", "-4", "addr", "show", "dev", "eth0"]);
    assert!(out.status.success(), "no eth0 in {netns}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

/// (command, plugin) of the calls for one pod's interface, in call order.
fn calls_for<'a>(calls: &'a [CniCall], id: &str, ifname: &str) -> Vec<(&'a str, &'a str)> {
    calls
        .iter()
        .filter(|c| c.var("CNI_CONTAINERID") == id && c.var("CNI_IFNAME") == ifname)
        .map(|c| (c.command(), c.plugin.as_str()))
        .collect()
}

fn vnet_calls<'a>(calls: &'a [CniCall], id: &str) -> Vec<&'a CniCall> {
    calls
        .iter()
        .filter(|c| c.plugin == "vnet" && c.var("CNI_CONTAINERID") == id)
        .collect()
}

/// CNI_ARGS as a set: containerd builds it from a Go map, so its order changes per call.
fn cni_args(call: &CniCall) -> BTreeSet<String> {
    call.var("CNI_ARGS")
        .split(';')
        .map(str::to_string)
        .collect()
}

fn print_calls(phase: &str, calls: &[CniCall]) {
    for c in calls {
        eprintln!("--- {phase}: {} {}", c.plugin, c.command());
        for (k, v) in &c.env {
            eprintln!("    {k}={v}");
        }
        eprintln!("    stdin: {}", c.stdin);
    }
}

#[test]
fn two_pods_get_addresses_reach_each_other_publish_a_port_and_leave_nothing() {
    if !harness::ready_or_skip("cri_two_pods") {
        return;
    }
    let root = RootNs::snapshot();
    {
        let node = CriNode::start(24);
        let a = node.run_pod_ok("pod-a", &[(HOST_PORT, POD_PORT)]);
        let b = node.run_pod_ok("pod-b", &[]);
        let (sa, sb) = (node.status(&a), node.status(&b));
        let state_dir = node.dir.path().join("state");
        for s in [&sa, &sb] {
            assert_eq!(s.state, "SANDBOX_READY", "{s:?}");
            assert_pod_ip(&node, &s.ip);
            // netns_mounts_under_state_dir: nothing of the pod in the machine's /run/netns.
            assert!(Path::new(&s.netns).starts_with(&state_dir), "{s:?}");
            let prefix = node.subnet.prefix_len();
            assert_eq!(pod_addrs(&s.netns), [format!("{}/{prefix}", s.ip)], "{s:?}");
        }
        assert_ne!(sa.ip, sb.ip, "two pods, one address");
        let mut both = vec![sa.ip.clone(), sb.ip.clone()];
        both.sort();
        assert_eq!(node.reserved(), both, "vnet's store");
        assert_eq!(node.reservation(&sa.ip), format!("{a}\r\neth0"));
        assert_eq!(node.reservation(&sb.ip), format!("{b}\r\neth0"));
        assert_eq!(node.veths().len(), 2, "{:?}", node.node.links());

        assert!(
            CriNode::ping_from(&sa.netns, &sb.ip),
            "pod-a cannot reach pod-b"
        );
        assert!(
            CriNode::ping_from(&sb.netns, &sa.ip),
            "pod-b cannot reach pod-a"
        );

        // hostPort: from another namespace to the node's address, DNAT'd by portmap to
        // a listener in pod-a's namespace; the reply proves which listener answered.
        let token = format!("pod-a-{}", &a[..12]);
        let _listener = CriNode::listen_in(&sa.netns, POD_PORT, &token);
        poll(&format!("{NODE_IP}:{HOST_PORT} to reach pod-a"), 20, || {
            node.fetch_from_client(NODE_IP, HOST_PORT) == token
        });

        for id in [&a, &b] {
            node.stop(id);
            node.remove(id);
        }
        assert_eq!(node.reserved(), Vec::<String>::new(), "store after Remove");
        assert_eq!(node.veths(), Vec::<String>::new(), "veths after Remove");
        let nat = node.nat_rules();
        assert!(
            !nat.contains(&a) && !nat.contains(&b) && !nat.contains("CNI-DN-"),
            "NAT rules left:\n{nat}"
        );
        for s in [&sa, &sb] {
            assert!(!Path::new(&s.netns).exists(), "{} left", s.netns);
        }

        // The range is free again: a third pod gets an address from it and works.
        let c = node.run_pod_ok("pod-c", &[]);
        let sc = node.status(&c);
        assert_pod_ip(&node, &sc.ip);
        assert_eq!(node.reserved(), [sc.ip.as_str()]);
        assert!(
            CriNode::ping_from(&sc.netns, &gateway(&node).to_string()),
            "pod-c cannot reach its gateway"
        );
        node.stop(&c);
        node.remove(&c);
        assert_eq!(node.reserved(), Vec::<String>::new(), "store after pod-c");
        assert_eq!(node.veths(), Vec::<String>::new(), "veths after pod-c");

        // One ADD per pod, a DEL on Stop with the namespace, a DEL on Remove without.
        let calls = node.calls();
        for (id, s) in [(&a, &sa), (&b, &sb), (&c, &sc)] {
            let v = vnet_calls(&calls, id);
            let seen: Vec<(&str, &str)> = v
                .iter()
                .map(|c| (c.command(), c.var("CNI_NETNS")))
                .collect();
            assert_eq!(
                seen,
                [("ADD", &*s.netns), ("DEL", &*s.netns), ("DEL", "")],
                "vnet calls for {id}"
            );
        }
    }
    root.assert_unchanged();
}

#[test]
fn containerd_runs_the_chain_once_on_run_and_once_more_on_stop_and_remove() {
    if !harness::ready_or_skip("cri_calls") {
        return;
    }
    let root = RootNs::snapshot();
    {
        let node = CriNode::start(24);
        let id = node.run_pod_ok("pod-calls", &[(HOST_PORT, POD_PORT)]);
        let st = node.status(&id);
        let ip = assert_pod_ip(&node, &st.ip);
        let after_run = node.calls();
        print_calls("RunPodSandbox", &after_run);

        // ADD down our chain for eth0; containerd's own loopback network for lo.
        let chain_add = [("ADD", "vnet"), ("ADD", "portmap"), ("ADD", "loopback")];
        assert_eq!(calls_for(&after_run, &id, "eth0"), chain_add);
        assert_eq!(calls_for(&after_run, &id, "lo"), [("ADD", "loopback")]);
        assert_eq!(after_run.len(), 4, "calls for other containers");
        let add = vnet_calls(&after_run, &id)[0];
        let cni_vars: BTreeSet<&str> = add
            .env
            .keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("CNI_"))
            .collect();
        assert_eq!(
            cni_vars,
            BTreeSet::from([
                "CNI_ARGS",
                "CNI_COMMAND",
                "CNI_CONTAINERID",
                "CNI_IFNAME",
                "CNI_NETNS",
                "CNI_PATH"
            ])
        );
        assert_eq!(add.var("CNI_NETNS"), st.netns);
        assert_eq!(add.var("CNI_PATH"), node.bin_dir());
        let want_args: BTreeSet<String> = [
            "IgnoreUnknown=1".to_string(),
            format!("K8S_POD_NAMESPACE={POD_NAMESPACE}"),
            "K8S_POD_NAME=pod-calls".to_string(),
            format!("K8S_POD_INFRA_CONTAINER_ID={id}"),
            "K8S_POD_UID=uid-pod-calls".to_string(),
        ]
        .into();
        assert_eq!(cni_args(add), want_args);
        // vnet gets its own conflist entry with the list's name and version, nothing more.
        assert_eq!(add.stdin["type"], "vnet");
        assert_eq!(add.stdin["name"], node.net.as_str());
        assert_eq!(add.stdin["cniVersion"], "1.0.0");
        assert!(add.stdin.get("prevResult").is_none() && add.stdin.get("runtimeConfig").is_none());
        // portmap gets vnet's result and the pod's port mapping, spelled by go-cni.
        let portmap = after_run.iter().find(|c| c.plugin == "portmap").unwrap();
        assert_eq!(
            portmap.stdin["runtimeConfig"]["portMappings"],
            serde_json::json!([{"HostPort": HOST_PORT, "ContainerPort": POD_PORT, "Protocol": "tcp", "HostIP": ""}])
        );
        let prefix = node.subnet.prefix_len();
        assert_eq!(
            portmap.stdin["prevResult"]["ips"][0]["address"],
            format!("{ip}/{prefix}")
        );

        // StopPodSandbox: DEL up the chain, with the namespace; the address is released.
        node.stop(&id);
        let after_stop = node.calls();
        let stop = &after_stop[after_run.len()..];
        print_calls("StopPodSandbox", stop);
        let chain_del = [("DEL", "loopback"), ("DEL", "portmap"), ("DEL", "vnet")];
        assert_eq!(calls_for(stop, &id, "eth0"), chain_del);
        assert_eq!(calls_for(stop, &id, "lo"), [("DEL", "loopback")]);
        assert!(stop.iter().all(|c| c.var("CNI_NETNS") == st.netns));
        assert_eq!(node.reserved(), Vec::<String>::new(), "store after Stop");
        assert_eq!(node.veths(), Vec::<String>::new(), "veths after Stop");

        // RemovePodSandbox: the same DELs again, the namespace gone: CNI_NETNS empty.
        node.remove(&id);
        let after_remove = node.calls();
        let remove = &after_remove[after_stop.len()..];
        print_calls("RemovePodSandbox", remove);
        assert_eq!(calls_for(remove, &id, "eth0"), chain_del);
        assert_eq!(calls_for(remove, &id, "lo"), [("DEL", "loopback")]);
        assert!(remove.iter().all(|c| c.var("CNI_NETNS").is_empty()));
        // libcni keeps the ADD result until the first DEL: Stop's DEL carries it as
        // prevResult, Remove's has none (the cache entry went with the first DEL).
        let dels = vnet_calls(&after_remove, &id);
        assert_eq!(
            dels[1].stdin["prevResult"]["ips"][0]["address"],
            format!("{ip}/{prefix}"),
            "{}",
            dels[1].stdin
        );
        assert!(
            dels[2].stdin.get("prevResult").is_none(),
            "{}",
            dels[2].stdin
        );

        // Never CHECK, STATUS, GC or VERSION.
        let commands: BTreeSet<&str> = after_remove.iter().map(CniCall::command).collect();
        assert_eq!(commands, BTreeSet::from(["ADD", "DEL"]));
        assert_eq!(node.reserved(), Vec::<String>::new(), "store after Remove");
    }
    root.assert_unchanged();
}

#[test]
fn a_failed_add_reaches_the_client_and_containerd_undoes_it() {
    if !harness::ready_or_skip("cri_failed_add") {
        return;
    }
    let root = RootNs::snapshot();
    {
        // A /30: the gateway and one pod address.
        let node = CriNode::start(30);
        let one = node.run_pod_ok("pod-one", &[]);
        let s1 = node.status(&one);
        assert_pod_ip(&node, &s1.ip);

        let err = node
            .run_pod("pod-two", &[])
            .expect_err("a second pod in a /30");
        assert!(
            err.contains("failed to setup network for sandbox")
                && err.contains(r#"plugin type="vnet" failed (add)"#),
            "{err}"
        );
        // vnet words it as host-local does.
        assert!(
            err.contains("no IP addresses available in range set"),
            "vnet's message: {err}"
        );

        // containerd sent DEL for the failed sandbox after the ADD, down the chain.
        let calls = node.calls();
        let two = calls
            .iter()
            .find(|c| cni_args(c).contains("K8S_POD_NAME=pod-two"))
            .map(|c| c.var("CNI_CONTAINERID").to_string())
            .expect("no call for pod-two");
        let v: Vec<&str> = vnet_calls(&calls, &two)
            .iter()
            .map(|c| c.command())
            .collect();
        assert_eq!(v.first(), Some(&"ADD"), "{v:?}");
        assert!(v[1..].iter().all(|c| *c == "DEL") && v.len() >= 2, "{v:?}");

        // Nothing of pod-two is left; pod-one is untouched and still works.
        assert_eq!(node.reserved(), [s1.ip.as_str()]);
        assert_eq!(node.reservation(&s1.ip), format!("{one}\r\neth0"));
        assert_eq!(node.veths().len(), 1, "{:?}", node.node.links());
        assert!(CriNode::ping_from(&s1.netns, &gateway(&node).to_string()));

        node.stop(&one);
        node.remove(&one);
        assert_eq!(node.reserved(), Vec::<String>::new());
        assert_eq!(node.veths(), Vec::<String>::new());
    }
    root.assert_unchanged();
}
