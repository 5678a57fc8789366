//! DEL: best effort about what is gone, never silent about what failed. A missing netns,
//! a missing interface or an unknown container are success. A masquerade element or pod
//! interface that could not be deleted (or a namespace that could not be looked into)
//! fails the call before the address is released: freeing the address of a pod that
//! still holds it would hand it to the next pod. The runtime retries DEL, and the retry
//! finishes the job.
//!
//! A delegated IPAM plugin is called before the interface goes instead (it had the link
//! at ADD, see `plan::build::ipam_step`): dhcp can only send its release through it. That
//! gives up nothing: dhcp's DEL stops the daemon renewing the lease whether or not the
//! release gets out, so after it the address is the server's to give again either way,
//! now (released) or at the lease's end (link deleted first).

use std::path::Path;

use crate::net::Node;
use crate::plan::build::{ipam_step, IpamStep};
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
    match ipam_step(&req.conf) {
        IpamStep::First => {
            del_link(req, pod.as_ref())?;
            ipam::del(req)
        }
        // A delegated plugin got the link at ADD and gets it at DEL too: dhcp sends its
        // release through the pod's interface ("no such device" once it is gone: plugins
        // issue #791, the reference bridge's order). Its failure is reported after the
        // link is deleted all the same; the runtime's retry calls it again.
        IpamStep::AfterLink => {
            let released = ipam::del(req);
            let deleted = del_link(req, pod.as_ref());
            Error::all(
                vec![released.err(), deleted.err()]
                    .into_iter()
                    .flatten()
                    .collect(),
            )
        }
    }
}

/// Deleting the pod end removes the host end with it.
fn del_link(req: &Request, pod: Option<&(&Path, Node)>) -> Result<(), Error> {
    let Some((netns, node)) = pod else {
        return Ok(());
    };
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
    Ok(())
}
