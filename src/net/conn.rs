//! `Node`: a current-thread tokio runtime plus one rtnetlink connection per namespace.
//!
//! A netlink socket talks to the namespace it was created in, whatever thread later uses
//! it. So the host connection is created on the calling thread, and the pod connection by
//! the calling thread while it briefly stands in the pod namespace (`netns::run_in`);
//! both are then driven by the same current-thread runtime from the caller's thread.

use std::{cell::RefCell, collections::HashMap, fs::File, future::Future, path::Path};

use rtnetlink::Handle;
use tokio::runtime::{self, Runtime};

use super::{netns, netns::RunError, Link, NetError, Ns};
use crate::plan::render::Facts;

/// One side (host or pod) of the node: a netlink handle and the namespace it lives in.
pub(crate) struct Side {
    pub(crate) handle: Handle,
    /// Kept open: the veth peer is placed with `IFLA_NET_NS_FD`, and sysctl writes
    /// `setns` into it.
    pub(crate) ns: File,
}

/// Kernel access for one CNI invocation: the node (host) namespace and optionally a pod's.
pub struct Node {
    // Field order matters for drop: the runtime (and the connection tasks it owns) goes
    // last, after the handles that feed it.
    pub(crate) host: Side,
    pub(crate) pod: Option<Side>,
    /// Links this invocation has read or changed, by namespace and name (see `link.rs`).
    pub(crate) known: RefCell<HashMap<(Ns, String), Link>>,
    /// The netfilter socket for masquerade, opened on first use (`masq.rs`).
    pub(crate) nft: RefCell<Option<super::nft::NftSock>>,
    rt: Runtime,
}

impl Node {
    /// Host side = the calling thread's namespace. `pod_netns` = `CNI_NETNS` path if any.
    /// A missing or unopenable pod netns gives [`NetError::NetnsOpen`].
    ///
    /// Must not be called from inside a tokio runtime (it blocks on its own).
    pub fn open(pod_netns: Option<&Path>) -> Result<Node, NetError> {
        let rt = runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| NetError::Namespace(format!("start the netlink runtime: {e}")))?;
        let host_ns = netns::current()
            .map_err(|e| NetError::Namespace(format!("open the host namespace: {e}")))?;
        let host = Side {
            handle: connect(rt.handle())?,
            ns: host_ns,
        };
        let pod = match pod_netns {
            Some(path) => Some(open_pod(rt.handle(), path, &host.ns)?),
            None => None,
        };
        Ok(Node {
            host,
            pod,
            known: RefCell::default(),
            nft: RefCell::default(),
            rt,
        })
    }

    /// Whether a pod namespace was opened.
    pub fn has_pod(&self) -> bool {
        self.pod.is_some()
    }

    /// The side for `ns`; asking for the pod without one is a usage error.
    pub(crate) fn side(&self, ns: Ns) -> Result<&Side, NetError> {
        match ns {
            Ns::Host => Ok(&self.host),
            Ns::Pod => self
                .pod
                .as_ref()
                .ok_or_else(|| NetError::Namespace("no pod network namespace was given".into())),
        }
    }

    pub(crate) fn handle(&self, ns: Ns) -> Result<&Handle, NetError> {
        Ok(&self.side(ns)?.handle)
    }

    /// What exists on the node already, so the commands printed are the ones that run:
    /// the bridge and its addresses, and (with `masq_network`) that network's pod sets and
    /// their rules.
    pub fn facts(&self, bridge: &str, masq_network: Option<&str>) -> Facts {
        let bridge_exists = matches!(self.link(Ns::Host, bridge), Ok(Some(l)) if l.kind.as_deref() == Some("bridge"));
        let bridge_addrs = if bridge_exists {
            self.addrs(Ns::Host, bridge).unwrap_or_default()
        } else {
            Vec::new()
        };
        let masq = masq_network
            .map(|n| self.masquerade_facts(n).unwrap_or_default())
            .unwrap_or_default();
        Facts {
            bridge_exists,
            bridge_addrs,
            masq,
        }
    }

    /// Drive `fut` (and the connection tasks) to completion on this thread.
    pub(crate) fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

/// Open the pod namespace and create its netlink socket from inside it. The node's own
/// namespace is refused, judged on the descriptor that is then entered (see
/// [`netns::open`]).
fn open_pod(rt: &runtime::Handle, path: &Path, host: &File) -> Result<Side, NetError> {
    let netns_open = |source| NetError::NetnsOpen {
        path: path.to_path_buf(),
        source,
    };
    let ns = netns::open(path).map_err(netns_open)?;
    if netns::same_namespace(&ns, host) {
        return Err(NetError::OwnNamespace {
            path: path.to_path_buf(),
        });
    }
    let handle = match netns::run_in(&ns, || connect(rt)) {
        Ok(handle) => handle?,
        Err(RunError::Setns(errno)) => return Err(netns_open(errno.into())),
        Err(e) => return Err(NetError::Namespace(e.describe("pod"))),
    };
    Ok(Side { handle, ns })
}

/// Create an rtnetlink socket in the calling thread's namespace and hand its connection
/// task to the runtime. Safe to call from any thread: `enter` only registers the socket
/// with the runtime's I/O driver.
fn connect(rt: &runtime::Handle) -> Result<Handle, NetError> {
    let _in_runtime = rt.enter();
    // Strict checking (NETLINK_GET_STRICT_CHK) makes the kernel honour the filters in a
    // dump request's header. Without it an address dump "for the bridge" returns every
    // address of the namespace, two IPv6 link-local ones per pod, and ADD slowed down
    // with each pod on the node.
    let (conn, handle, _unsolicited) = rtnetlink::new_connection_with_strict_check()
        .map_err(|e| NetError::Namespace(format!("open a netlink socket: {e}")))?;
    rt.spawn(conn);
    Ok(handle)
}

#[cfg(test)]
mod tests {
    /// The plugin may hand a `Node` to another thread (the host side stays the opener's
    /// namespace: sysctls re-enter it explicitly).
    #[test]
    fn node_is_send() {
        fn send<T: Send>() {}
        send::<super::Node>();
    }
}
