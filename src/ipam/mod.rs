//! host-local compatible IPAM.
