//! GC and STATUS (spec 1.1): both only concern IPAM for this plugin.

use crate::cni::config::valid_attachments;

use super::error::Error;
use super::ipam;
use super::request::Request;

/// Releases every reservation whose (container ID, ifname) is not in the valid list.
pub fn gc(req: &Request) -> Result<(), Error> {
    let valid = valid_attachments(&req.conf.raw)?;
    ipam::gc(req, &valid)
}

/// Ready for ADD unless a range set has no free address (code 50).
pub fn status(req: &Request) -> Result<(), Error> {
    ipam::status(req)
}
