//! `/proc/sys` writes, done while the thread stands in the target namespace: the kernel resolves
//! `/proc/sys/net/...` against the network namespace of the writing thread.
//!
//! IPv4 per-device keys (`net/ipv4/conf/<dev>/arp_notify`) go through netlink instead
//! (`IFLA_INET_CONF`, the same value the file holds). Every namespace has its own
//! `/proc/sys/net` entries under one shared dentry tree, so the first lookup of
//! `ipv4/conf/eth0` in a fresh pod namespace walks past the same names of every other
//! namespace on the machine: 0.23 ms per ADD with 60 pods here, growing with the pods,
//! against one netlink message on the pod socket already open.

use std::{
    fs::OpenOptions,
    io::{self, Read, Write},
    path::{Component, Path},
};

use netlink_packet_route::link::{AfSpecInet, AfSpecUnspec, InetDevConf, LinkAttribute};
use rtnetlink::LinkUnspec;

use super::{netns, ns_suffix, NetError, Node, Ns};

impl Node {
    /// Write `value` to `/proc/sys/<key>` in `ns`.
    pub(crate) fn write_sysctl(&self, ns: Ns, key: &str, value: &str) -> Result<(), NetError> {
        let sysctl_err = |source| NetError::Sysctl {
            key: key.to_string(),
            source,
        };
        check_key(key).map_err(sysctl_err)?;
        if let Some((dev, conf)) = inet_devconf(key, value) {
            return self.block_on(self.set_inet_conf(ns, key, dev, conf));
        }
        let side = self.side(ns)?;
        let path = Path::new("/proc/sys").join(key);
        let written = netns::run_in(&side.ns, || write_existing(&path, value));
        match written {
            Ok(result) => result.map_err(sysctl_err),
            Err(e) => Err(NetError::Namespace(e.describe(ns_name(ns)))),
        }
    }
}

impl Node {
    /// The value of `/proc/sys/<key>` in `ns`, without its newline; `None` when the key
    /// does not exist (a device that is gone, IPv6 disabled). Read from inside `ns`, like
    /// a write: the kernel answers for the reading thread's namespace.
    pub fn read_sysctl(&self, ns: Ns, key: &str) -> Result<Option<String>, NetError> {
        let sysctl_err = |source| NetError::Sysctl {
            key: key.to_string(),
            source,
        };
        check_key(key).map_err(sysctl_err)?;
        let side = self.side(ns)?;
        let path = Path::new("/proc/sys").join(key);
        let read = netns::run_in(&side.ns, || read_small(&path));
        match read {
            Ok(Ok(value)) => Ok(Some(value)),
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Ok(Err(e)) => Err(sysctl_err(e)),
            Err(e) => Err(NetError::Namespace(e.describe(ns_name(ns)))),
        }
    }
}

impl Node {
    /// Errors read as the file write's would: a missing device is `ENOENT`, so optional
    /// keys and error messages behave the same either way.
    async fn set_inet_conf(
        &self,
        ns: Ns,
        key: &str,
        dev: &str,
        conf: InetDevConf,
    ) -> Result<(), NetError> {
        let as_write = |e: NetError| match e.errno() {
            Some(libc::ENODEV) => NetError::Sysctl {
                key: key.to_string(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            },
            Some(errno) => NetError::Sysctl {
                key: key.to_string(),
                source: io::Error::from_raw_os_error(errno),
            },
            None => e,
        };
        let link = self.require(ns, dev).await.map_err(as_write)?;
        let msg = LinkUnspec::new_with_index(link.index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
                AfSpecInet::DevConfRequest(conf),
            ])]))
            .build();
        self.handle(ns)?
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| as_write(NetError::netlink(format!("set {key}{}", ns_suffix(ns)), e)))
    }
}

/// `net/ipv4/conf/<dev>/<name>` for the devconf entries set through netlink, with the
/// value to set. Only non-zero values: the request carries just the non-zero fields, so
/// a zero would not be sent at all.
fn inet_devconf<'k>(key: &'k str, value: &str) -> Option<(&'k str, InetDevConf)> {
    let rest = key.strip_prefix("net/ipv4/conf/")?;
    let (dev, name) = rest.split_once('/')?;
    let v: i32 = value.trim().parse().ok().filter(|v| *v != 0)?;
    if matches!(dev, "all" | "default") {
        return None;
    }
    let mut conf = InetDevConf::default();
    match name {
        "arp_notify" => conf.arp_notify = v,
        _ => return None,
    }
    Some((dev, conf))
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

/// A sysctl value is one short line; more than a page is not one.
fn read_small(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(4096)
        .read_to_string(&mut text)?;
    Ok(text.trim_end().to_string())
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

    #[test]
    fn only_ipv4_device_keys_with_a_value_go_through_netlink() {
        let (dev, conf) = inet_devconf("net/ipv4/conf/eth0/arp_notify", "1").unwrap();
        assert_eq!((dev, conf.arp_notify), ("eth0", 1));
        assert_eq!(conf.forwarding, 0, "nothing else is set");
        assert!(inet_devconf("net/ipv4/conf/eth0/arp_notify", "0").is_none());
        assert!(inet_devconf("net/ipv4/conf/all/arp_notify", "1").is_none());
        assert!(inet_devconf("net/ipv4/conf/eth0/rp_filter", "1").is_none());
        assert!(inet_devconf("net/ipv6/conf/eth0/accept_ra", "1").is_none());
        assert!(inet_devconf("net/ipv4/ip_forward", "1").is_none());
    }
}
