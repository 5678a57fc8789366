//! Every failure the plugin can report, and the one place they become CNI codes.

use std::fmt;

use crate::cluster::ClusterError;
use crate::cni::error::with_causes;
use crate::cni::{code, CniError};
use crate::ipam::IpamError;
use crate::net::NetError;

use super::delegate::DelegateError;

#[derive(Debug)]
pub enum Error {
    Cni(CniError),
    Ipam(IpamError),
    Net(NetError),
    Delegate(DelegateError),
    /// The `vnet` key (node table) or the route sync it asks for.
    Cluster(ClusterError),
    IfnameExists {
        ifname: String,
    },
    Check(String),
    /// ADD's own failure that is neither the caller's nor a kernel refusal (a link it
    /// just made vanished): code 110, never "CHECK mismatch".
    Internal(String),
    /// DEL and GC keep going after a failure and report everything at the end.
    Several(Vec<Error>),
}

impl Error {
    /// The one way to report several failures: none is success, one is itself, and
    /// nested lists are flattened, so a caller never sees `Several` of one or of lists.
    pub fn all(errors: Vec<Error>) -> Result<(), Error> {
        let mut flat = Vec::new();
        for e in errors {
            match e {
                Error::Several(inner) => flat.extend(inner),
                e => flat.push(e),
            }
        }
        match flat.len() {
            0 => Ok(()),
            1 => Err(flat.remove(0)),
            _ => Err(Error::Several(flat)),
        }
    }
}

impl From<CniError> for Error {
    fn from(e: CniError) -> Self {
        Error::Cni(e)
    }
}
impl From<IpamError> for Error {
    fn from(e: IpamError) -> Self {
        Error::Ipam(e)
    }
}
impl From<NetError> for Error {
    fn from(e: NetError) -> Self {
        Error::Net(e)
    }
}
impl From<ClusterError> for Error {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::Net(n) => Error::Net(n),
            other => Error::Cluster(other),
        }
    }
}
impl From<DelegateError> for Error {
    fn from(e: DelegateError) -> Self {
        Error::Delegate(e)
    }
}

/// The CNI `msg`: each failure with its causes (`with_causes`), several joined by `; `.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cni(e) => write!(f, "{e}"),
            Error::Ipam(e) => f.write_str(&with_causes(e)),
            Error::Net(e) => f.write_str(&with_causes(e)),
            Error::Delegate(e) => f.write_str(&with_causes(e)),
            Error::Cluster(e) => f.write_str(&with_causes(e)),
            Error::IfnameExists { ifname } => {
                write!(
                    f,
                    "interface {ifname:?} already exists in the pod namespace"
                )
            }
            Error::Check(msg) => write!(f, "check failed: {msg}"),
            Error::Internal(msg) => f.write_str(msg),
            Error::Several(errs) => {
                let parts: Vec<String> = errs.iter().map(ToString::to_string).collect();
                write!(f, "{}", parts.join("; "))
            }
        }
    }
}

impl std::error::Error for Error {}

fn is_transient(errno: Option<i32>) -> bool {
    matches!(
        errno,
        Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::EINTR)
    )
}

/// The CNI code for each failure. Spec codes keep the spec's meaning; the rest are
/// vnet's own (>= 100), documented in the README.
pub fn to_cni(e: &Error) -> CniError {
    let c = match e {
        Error::Cni(e) => return e.clone(),
        Error::Delegate(DelegateError::Failed { error, .. }) => return error.clone(),
        Error::Several(errs) => {
            return match errs.first() {
                Some(first) => CniError::new(to_cni(first).code, e.to_string()),
                None => CniError::new(code::KERNEL, "no error"),
            }
        }
        Error::Ipam(i) => match i {
            IpamError::Config(_) => code::INVALID_CONFIG,
            IpamError::Exhausted { .. } => code::ADDRESS_EXHAUSTED,
            IpamError::RequestedUnavailable { .. } => code::ADDRESS_UNAVAILABLE,
            IpamError::Duplicate { .. } => code::DUPLICATE_ALLOCATION,
            IpamError::Io { source, .. } if is_transient(source.raw_os_error()) => code::TRY_AGAIN,
            IpamError::Io { .. } => code::IO,
        },
        Error::Net(n) => match n {
            NetError::NetnsOpen { .. } => code::NETNS_MISSING,
            NetError::OwnNamespace { .. } => code::INVALID_ENV,
            NetError::NotABridge { .. } => code::NOT_A_BRIDGE,
            NetError::BridgeAddrConflict { .. } => code::BRIDGE_ADDRESS_CONFLICT,
            n if is_transient(n.errno()) => code::TRY_AGAIN,
            NetError::Netlink { .. } | NetError::Sysctl { .. } | NetError::Namespace(_) => {
                code::KERNEL
            }
        },
        Error::Cluster(ClusterError::Io { source, .. }) if is_transient(source.raw_os_error()) => {
            code::TRY_AGAIN
        }
        Error::Cluster(ClusterError::Io { .. }) => code::IO,
        Error::Cluster(_) => code::INVALID_CONFIG,
        Error::Delegate(DelegateError::NotFound { .. }) => code::INVALID_CONFIG,
        Error::Delegate(DelegateError::NoCniPath { .. }) => code::INVALID_ENV,
        Error::Delegate(DelegateError::Loop { .. }) => code::INVALID_CONFIG,
        Error::Delegate(_) => code::DELEGATE,
        Error::IfnameExists { .. } => code::IFNAME_EXISTS,
        Error::Check(_) => code::CHECK_MISMATCH,
        Error::Internal(_) => code::INTERNAL,
    };
    CniError::new(c, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_errors_are_one_flat_list() {
        let e = |m: &str| Error::Check(m.into());
        assert!(Error::all(vec![]).is_ok());
        assert!(matches!(Error::all(vec![e("a")]), Err(Error::Check(m)) if m == "a"));
        let nested = Error::Several(vec![e("b"), e("c")]);
        match Error::all(vec![e("a"), nested]) {
            Err(Error::Several(v)) => assert_eq!(v.len(), 3),
            other => panic!("{other:?}"),
        }
        // A list of one nested list is that list, not a list of a list.
        let only = Error::all(vec![Error::Several(vec![e("x"), e("y")])]);
        assert!(matches!(only, Err(Error::Several(v)) if v.len() == 2));
    }
}
