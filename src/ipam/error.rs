//! The single error type of the IPAM module.
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// Everything that can go wrong in IPAM. The plugin maps each variant to a CNI error code.
#[derive(Debug)]
pub enum IpamError {
    /// Invalid IPAM configuration (or an unsafe network name, container ID or ifname).
    Config(String),
    /// Range set `set` has no free address.
    Exhausted { set: usize, ranges: String },
    /// A requested IP is taken, is the gateway, or lies in no range set. `reason` is the full message.
    RequestedUnavailable { ip: IpAddr, reason: String },
    /// (id, ifname) already holds `ip` in this range set and nothing was requested.
    Duplicate { ip: IpAddr, id: String },
    /// A filesystem operation on the store failed.
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl IpamError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IpamError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Prefixes a `Config` message, e.g. with "invalid range set 2"; other variants pass through.
    pub(crate) fn context(self, prefix: &str) -> Self {
        match self {
            IpamError::Config(msg) => IpamError::Config(format!("{prefix}: {msg}")),
            other => other,
        }
    }
}

impl fmt::Display for IpamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpamError::Config(msg) => f.write_str(msg),
            IpamError::Exhausted { ranges, .. } => {
                write!(f, "no IP addresses available in range set: {ranges}")
            }
            IpamError::RequestedUnavailable { reason, .. } => f.write_str(reason),
            IpamError::Duplicate { ip, id } => write!(
                f,
                "{ip} has been allocated to {id}, duplicate allocation is not allowed"
            ),
            // The io::Error is reported through source(), not repeated here.
            IpamError::Io { op, path, .. } => write!(f, "failed to {op} {}", path.display()),
        }
    }
}

impl std::error::Error for IpamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IpamError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn messages_match_the_reference_wording() {
        let e = IpamError::Exhausted {
            set: 0,
            ranges: "10.1.2.2-10.1.2.6".into(),
        };
        assert_eq!(
            e.to_string(),
            "no IP addresses available in range set: 10.1.2.2-10.1.2.6"
        );
        let e = IpamError::Duplicate {
            ip: "10.1.2.2".parse().unwrap(),
            id: "dummy".into(),
        };
        assert_eq!(
            e.to_string(),
            "10.1.2.2 has been allocated to dummy, duplicate allocation is not allowed"
        );
    }

    #[test]
    fn io_error_is_a_source_not_part_of_the_message() {
        let e = IpamError::io(
            "read",
            "/x/y",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.to_string(), "failed to read /x/y");
        assert!(e.source().is_some());
    }

    #[test]
    fn context_prefixes_only_config_errors() {
        let e = IpamError::Config("empty range set".into()).context("invalid range set 1");
        assert_eq!(e.to_string(), "invalid range set 1: empty range set");
    }
}
