//! DEL: best effort about what is gone, never silent about what failed. A missing netns,
//! a missing interface or an unknown container are success. A pod interface that could
//! not be deleted (or a namespace that could not be looked into) fails the call before
//! anything else is released: freeing the address of a pod that still holds it would
//! hand it to the next pod. The runtime retries DEL, and the retry finishes the job.

use crate::net::Node;
use crate::plan::{Ns, Op};

use super::error::Error;
use super::ipam;
use super::masq;
use super::request::Request;
use super::trace;

pub fn del(req: &Request) -> Result<(), Error> {
    // Deleting the pod end removes the host end with it. Without a netns there is no
    // link left to delete: it died with the namespace.
    if let Some(netns) = req.env.netns.as_deref() {
        match Node::open(Some(netns)) {
            Ok(node) => {
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
            Err(e) if e.netns_gone() => {}
            Err(e) => return Err(e.into()),
        }
    }
    // By tag, so it works without the netns (plugins issue #810). A masquerade element
    // that could not be removed keeps the address reserved: released, the address would
    // go to the next pod while the element still names this attachment, and a later GC
    // removing that stale element would take the new pod's masquerade with it. The
    // runtime retries DEL.
    masq::del(req)?;
    ipam::del(req)
}
