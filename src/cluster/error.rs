//! The one error type of the cluster module.

use std::{fmt, io, path::PathBuf};

#[derive(Debug)]
pub enum ClusterError {
    /// A node table, a split request or a `vnet` config key that cannot be used; the
    /// message names the value and why.
    Invalid(String),
    /// Reading or writing a file failed.
    Io { path: PathBuf, source: io::Error },
    /// This node could not be found in the node table.
    NotInTable(String),
    /// Reading or changing the node's routes failed.
    Net(crate::net::NetError),
}

impl ClusterError {
    pub(crate) fn invalid(msg: impl Into<String>) -> ClusterError {
        ClusterError::Invalid(msg.into())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> ClusterError {
        ClusterError::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClusterError::Invalid(msg) | ClusterError::NotInTable(msg) => f.write_str(msg),
            // Transparent: the kernel layer's error is the message, its cause the cause.
            ClusterError::Net(e) => write!(f, "{e}"),
            ClusterError::Io { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// The cause is kept here, out of the message (`cni::error::with_causes` joins them).
impl std::error::Error for ClusterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClusterError::Io { source, .. } => Some(source),
            ClusterError::Net(e) => e.source(),
            ClusterError::Invalid(_) | ClusterError::NotInTable(_) => None,
        }
    }
}
