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
    let errors: Vec<Error> = [masq::gc(req, &valid), ipam::gc(req, &valid), locks]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    Error::all(errors)
}

/// Ready for ADD unless a range set has no free address (code 50). Masquerade needs
/// nothing installed: vnet speaks nf_tables netlink itself.
pub fn status(req: &Request) -> Result<(), Error> {
    ipam::status(req)
}
