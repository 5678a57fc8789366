//! `/proc/sys` writes, done while the thread stands in the target namespace: the kernel resolves
//! `/proc/sys/net/...` against the network namespace of the writing thread.

use std::{
    fs::OpenOptions,
    io::{self, Write},
    path::{Component, Path},
};

use super::{netns, NetError, Node, Ns};

impl Node {
    /// Write `value` to `/proc/sys/<key>` in `ns`.
    pub(crate) fn write_sysctl(&self, ns: Ns, key: &str, value: &str) -> Result<(), NetError> {
        let sysctl_err = |source| NetError::Sysctl {
            key: key.to_string(),
            source,
        };
        check_key(key).map_err(sysctl_err)?;
        let side = self.side(ns)?;
        let path = Path::new("/proc/sys").join(key);
        let written = netns::run_in(&side.ns, || write_existing(&path, value));
        match written {
            Ok(result) => result.map_err(sysctl_err),
            Err(e) => Err(NetError::Namespace(e.describe(ns_name(ns)))),
        }
    }
}

fn ns_name(ns: Ns) -> &'static str {
    match ns {
        Ns::Host => "host",
        Ns::Pod => "pod",
    }
}

/// A key is a relative path below `/proc/sys` with plain components only.
fn check_key(key: &str) -> io::Result<()> {
    let plain = !key.is_empty()
        && Path::new(key)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a relative path below /proc/sys",
        ))
    }
}

/// Write without creating: a sysctl that does not exist is `ENOENT`.
fn write_existing(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_stay_below_proc_sys() {
        assert!(check_key("net/ipv4/conf/eth0/arp_notify").is_ok());
        assert!(check_key("net/ipv4/conf/eth0.100/arp_notify").is_ok());
        assert!(check_key("../../etc/passwd").is_err());
        assert!(check_key("/etc/passwd").is_err());
        assert!(check_key("net/./ipv4").is_ok()); // `.` components are dropped by Path
        assert!(check_key("").is_err());
    }
}
