//! Root tests: each builds its own node and pod namespaces (see [`harness::Lab`]) and
//! checks the kernel afterwards with `ip -j`. Without root they print
//! "SKIPPED: needs root" and pass.

mod apply;
mod bridge;
mod bridge_addr;
mod harness;
mod ping;
mod pod;
mod veth;

use crate::plan::{Ns, Op};

pub(crate) use harness::{root_or_skip, Lab};

fn ensure_bridge(name: &str) -> Op {
    Op::EnsureBridge {
        name: name.into(),
        mtu: None,
        promisc: false,
    }
}

fn add_veth(host: &str) -> Op {
    Op::AddVeth {
        host: host.into(),
        peer: "eth0".into(),
        mtu: None,
        peer_mac: None,
    }
}

fn up(ns: Ns, dev: &str) -> Op {
    Op::LinkUp {
        ns,
        dev: dev.into(),
    }
}

fn set_master(dev: &str, master: &str) -> Op {
    Op::SetMaster {
        dev: dev.into(),
        master: master.into(),
    }
}

fn bridge_addr(dev: &str, addr: &str, force: bool) -> Op {
    Op::EnsureBridgeAddr {
        dev: dev.into(),
        addr: addr.parse().unwrap(),
        force,
    }
}

fn pod_addr(addr: &str) -> Op {
    Op::AddAddr {
        ns: Ns::Pod,
        dev: "eth0".into(),
        addr: addr.parse().unwrap(),
    }
}

fn pod_route(dst: &str, gw: Option<&str>) -> Op {
    Op::AddRoute {
        ns: Ns::Pod,
        dst: dst.parse().unwrap(),
        gw: gw.map(|g| g.parse().unwrap()),
        dev: "eth0".into(),
    }
}

/// The `flags` array of an `ip -j link` entry contains `flag`.
fn has_flag(link: &serde_json::Value, flag: &str) -> bool {
    link["flags"].as_array().unwrap().iter().any(|f| f == flag)
}
