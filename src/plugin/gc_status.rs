//! GC and STATUS (spec 1.1): IPAM reservations and, with `ipMasq`, masquerade rules.

use crate::cni::config::valid_attachments;

use super::attachment_lock;
use super::error::Error;
use super::ipam;
use super::masq;
use super::request::Request;

/// Releases every reservation and removes every masquerade element (or older per-pod
/// rule) and attachment lock file whose (container ID, ifname) is not in the valid list;
/// keeps going after a failure and reports them all.
pub fn gc(req: &Request) -> Result<(), Error> {
    let valid = valid_attachments(&req.conf.raw)?;
    let locks = attachment_lock::gc(&req.conf.name, &valid)
        .map(drop)
        .map_err(Error::from);
    // Reservations only once their masquerade elements are gone (see `del`): an address
    // freed while its stale element stays could go to a new pod whose element a later
    // GC would then remove.
    let ipam = match masq::gc(req, &valid) {
        Ok(()) => ipam::gc(req, &valid),
        Err(e) => Err(e),
    };
    Error::all([ipam, locks].into_iter().filter_map(Result::err).collect())
}

/// Ready for ADD unless a range set has no free address (code 50). Masquerade needs
/// nothing installed: vnet speaks nf_tables netlink itself.
pub fn status(req: &Request) -> Result<(), Error> {
    ipam::status(req)
}
