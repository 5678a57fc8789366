//! DEL: best effort about what is gone, never silent about what failed. A missing netns,
//! a missing interface or an unknown container are success. A masquerade element or pod
//! interface that could not be deleted (or a namespace that could not be looked into)
//! fails the call before the address is released: freeing the address of a pod that
//! still holds it would hand it to the next pod. The runtime retries DEL, and the retry
//! finishes the job.

use crate::net::Node;
use crate::plan::{Ns, Op};

use super::error::Error;
use super::ipam;
use super::masq;
use super::request::Request;
use super::trace;

pub fn del(req: &Request) -> Result<(), Error> {
    // Without a netns there is no link left to delete: it died with the namespace.
    let pod = match req.env.netns.as_deref() {
        Some(netns) => match Node::open(Some(netns)) {
            Ok(node) => Some((netns, node)),
            Err(e) if e.netns_gone() => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    // The masquerade element goes first, by tag too, so it works without the netns
    // (plugins issue #810). One that could not be removed fails the call with the pod's
    // interface and address kept: released, the address would go to the next pod while
    // the element still names this attachment, and a later GC removing that stale element
    // would take the new pod's masquerade with it. The runtime retries DEL.
    //
    // First, and on the Node that then deletes the veth, for speed: the kernel frees a
    // removed element after an RCU grace period, and closing the netfilter socket waits
    // for that (nf_tables flushes its deferred frees when a netfilter socket is released).
    // Closed at once, that was 10–25 ms more per DEL here; kept open across the veth
    // deletion (about 20 ms, grace periods of its own), the free is done by the time the
    // socket closes.
    masq::del(req, pod.as_ref().map(|(_, node)| node))?;
    // Deleting the pod end removes the host end with it.
    if let Some((netns, node)) = &pod {
        let op = Op::DelLink {
            ns: Ns::Pod,
            dev: req.env.ifname.clone(),
        };
        trace::plan(
            "DEL",
            &req.env.container_id,
            Some(netns),
            std::slice::from_ref(&op),
        );
        node.apply(&[op])?;
    }
    ipam::del(req)
}
