//! The one error type of the kernel layer.
//!
//! Every variant names the failed operation and carries the value it was about; the
//! kernel's answer is the `source()`, out of the message, as everywhere in vnet
//! (`cni::error::with_causes` joins them for a CNI `msg`). The plugin maps the variant
//! (and errno) to a code.

use std::{fmt, io, path::PathBuf};

use ipnet::IpNet;

/// A failure of the kernel layer.
#[derive(Debug)]
pub enum NetError {
    /// The pod network namespace path could not be opened or entered.
    NetnsOpen { path: PathBuf, source: io::Error },
    /// The pod network namespace is the one the plugin runs in: the node's own. Acting on
    /// it would put the pod's interface on the node, or (DEL) delete a node's link.
    OwnNamespace { path: PathBuf },
    /// A netlink request failed. `op` says what was attempted, e.g.
    /// `add veth veth1a2b3c4d peer eth0`; `source` is the kernel's errno when it answered
    /// with one, else what the netlink library said.
    Netlink { op: String, source: io::Error },
    /// A link with the bridge's name exists but is not a bridge.
    NotABridge { name: String },
    /// The bridge holds an address that conflicts with the gateway address to add.
    BridgeAddrConflict {
        dev: String,
        existing: IpNet,
        wanted: IpNet,
    },
    /// Writing `/proc/sys/<key>` failed.
    Sysctl { key: String, source: io::Error },
    /// Entering a namespace or running the helper thread failed.
    Namespace(String),
}

impl NetError {
    /// The kernel errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Netlink { source, .. }
            | NetError::NetnsOpen { source, .. }
            | NetError::Sysctl { source, .. } => source.raw_os_error(),
            NetError::NotABridge { .. }
            | NetError::OwnNamespace { .. }
            | NetError::BridgeAddrConflict { .. }
            | NetError::Namespace(_) => None,
        }
    }

    /// Whether this says the pod namespace is not there (any more): nothing at the path,
    /// or a file that is not a namespace. DEL treats that as done; anything else (out of
    /// descriptors, permission) means it could not look.
    pub fn netns_gone(&self) -> bool {
        matches!(self, NetError::NetnsOpen { source, .. } if super::netns::is_gone(source))
    }

    /// Wrap an rtnetlink error for the operation `op`.
    pub(crate) fn netlink(op: impl Into<String>, err: rtnetlink::Error) -> NetError {
        match errno_of(&err) {
            Some(errno) => NetError::from_errno(op, errno),
            None => NetError::Netlink {
                op: op.into(),
                source: io::Error::other(err.to_string()),
            },
        }
    }

    /// A netlink-style error with a known errno (also used for "link not found").
    pub(crate) fn from_errno(op: impl Into<String>, errno: i32) -> NetError {
        NetError::Netlink {
            op: op.into(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    /// A request the netlink library refused to build (an IPv4 route via an IPv6
    /// gateway): `EINVAL`, with the library's words in the operation.
    pub(crate) fn invalid(op: &str, why: impl fmt::Display) -> NetError {
        NetError::from_errno(format!("{op} ({why})"), libc::EINVAL)
    }
}

/// The positive errno of a kernel NACK, `None` for any other rtnetlink failure.
pub(crate) fn errno_of(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) if msg.raw_code() != 0 => Some(msg.raw_code().abs()),
        _ => None,
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NetnsOpen { path, .. } => {
                write!(f, "failed to open netns {:?}", path.display().to_string())
            }
            NetError::OwnNamespace { path } => write!(
                f,
                "CNI_NETNS {:?} is the plugin's own network namespace, not a pod's",
                path.display().to_string()
            ),
            NetError::Netlink { op, .. } => f.write_str(op),
            NetError::NotABridge { name } => {
                write!(f, "{name:?} already exists but is not a bridge")
            }
            NetError::BridgeAddrConflict {
                dev,
                existing,
                wanted,
            } => write!(
                f,
                "{dev:?} already has an IP address {existing} different from {wanted}"
            ),
            NetError::Sysctl { key, .. } => write!(f, "write /proc/sys/{key}"),
            NetError::Namespace(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetError::Netlink { source, .. }
            | NetError::NetnsOpen { source, .. }
            | NetError::Sysctl { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::error::with_causes;

    #[test]
    fn displays_lower_case_with_context() {
        let e = NetError::from_errno(
            "add route 0.0.0.0/0 via 10.244.1.1 dev eth0 in pod",
            libc::ENETUNREACH,
        );
        assert_eq!(
            e.to_string(),
            "add route 0.0.0.0/0 via 10.244.1.1 dev eth0 in pod"
        );
        assert_eq!(
            with_causes(&e),
            "add route 0.0.0.0/0 via 10.244.1.1 dev eth0 in pod: network is unreachable (os error 101)"
        );
        assert_eq!(e.errno(), Some(libc::ENETUNREACH));

        let e = NetError::BridgeAddrConflict {
            dev: "v-net-0".into(),
            existing: "10.9.9.1/24".parse().unwrap(),
            wanted: "10.244.1.1/24".parse().unwrap(),
        };
        assert_eq!(
            e.to_string(),
            "\"v-net-0\" already has an IP address 10.9.9.1/24 different from 10.244.1.1/24"
        );
        assert_eq!(e.errno(), None);

        let e = NetError::NotABridge {
            name: "cni0".into(),
        };
        assert_eq!(e.to_string(), "\"cni0\" already exists but is not a bridge");
    }

    #[test]
    fn io_backed_errors_expose_errno() {
        let e = NetError::NetnsOpen {
            path: "/var/run/netns/x".into(),
            source: io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(e.errno(), Some(libc::ENOENT));
        assert_eq!(
            with_causes(&e),
            "failed to open netns \"/var/run/netns/x\": no such file or directory (os error 2)"
        );
        let e = NetError::Sysctl {
            key: "net/ipv4/ip_forward".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            with_causes(&e),
            "write /proc/sys/net/ipv4/ip_forward: permission denied (os error 13)"
        );
    }

    #[test]
    fn kernel_nack_maps_to_positive_errno() {
        let mut msg = rtnetlink::packet_core::ErrorMessage::default();
        msg.code = std::num::NonZeroI32::new(-libc::EEXIST);
        let err = rtnetlink::Error::NetlinkError(msg);
        assert_eq!(errno_of(&err), Some(libc::EEXIST));
        let e = NetError::netlink("create bridge br0", err);
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(
            with_causes(&e),
            "create bridge br0: file exists (os error 17)"
        );
        assert_eq!(errno_of(&rtnetlink::Error::RequestFailed), None);
    }
}
