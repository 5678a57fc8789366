//! One address range inside a subnet, and the u128 address arithmetic behind it.
use super::IpamError;
use ipnet::IpNet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A range as written in the config, before defaults are filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSpec {
    pub subnet: IpNet,
    pub start: Option<IpAddr>,
    pub end: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
}

/// A canonical range: subnet without host bits, inclusive `start..=end`, and a gateway
/// that the allocator never hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    subnet: IpNet,
    start: IpAddr,
    end: IpAddr,
    gateway: IpAddr,
}

/// Both families as one integer, so the same arithmetic serves IPv4 and IPv6.
pub(crate) fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Inverse of [`to_u128`] in the family of `like`; IPv4 keeps the low 32 bits.
pub(crate) fn from_u128(value: u128, like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// The address after `ip`, wrapping at the top of its family.
pub(crate) fn next_ip(ip: IpAddr) -> IpAddr {
    from_u128(to_u128(ip).wrapping_add(1), ip)
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// In `subnet` and, where given, not below `lo` nor above `hi`.
fn within(subnet: &IpNet, ip: IpAddr, lo: Option<IpAddr>, hi: Option<IpAddr>) -> bool {
    let v = to_u128(ip);
    subnet.contains(&ip)
        && lo.is_none_or(|lo| same_family(lo, ip) && to_u128(lo) <= v)
        && hi.is_none_or(|hi| same_family(hi, ip) && v <= to_u128(hi))
}

impl Range {
    /// Checks a spec and fills in the reference defaults: gateway = network+1,
    /// start = network+1 (the iterator skips the gateway), end = broadcast-1 for IPv4 and
    /// the last address of the prefix for IPv6.
    pub fn canonicalize(spec: &RangeSpec) -> Result<Range, IpamError> {
        let subnet = spec.subnet;
        if subnet.prefix_len() + 2 > subnet.max_prefix_len() {
            return Err(IpamError::Config(format!(
                "network {subnet} too small to allocate from"
            )));
        }
        let network = subnet.network();
        if subnet.addr() != network {
            return Err(IpamError::Config(format!(
                "network has host bits set. For a subnet mask of length {} the network address is {network}",
                subnet.prefix_len()
            )));
        }
        // Accepted here as the reference accepts it (DEL, GC and CHECK of pods made with
        // such a config must keep working); ADD refuses it, see `check_gateway`.
        let gateway = spec.gateway.unwrap_or_else(|| next_ip(network));
        // Like the reference, start is checked against an explicit end and vice versa, so
        // start > end is reported as a start outside the network.
        let start = match spec.start {
            Some(s) if !within(&subnet, s, None, spec.end) => {
                return Err(IpamError::Config(format!(
                    "rangeStart {s} not in network {subnet}"
                )))
            }
            Some(s) => s,
            None => next_ip(network),
        };
        let end = match spec.end {
            Some(e) if !within(&subnet, e, Some(start), None) => {
                return Err(IpamError::Config(format!(
                    "rangeEnd {e} not in network {subnet}"
                )))
            }
            Some(e) => e,
            None => default_end(&subnet),
        };
        Ok(Range {
            subnet,
            start,
            end,
            gateway,
        })
    }

    /// The reference takes any address as the gateway; one the pods cannot reach on their
    /// link (another family, another subnet, 0.0.0.0, the network or broadcast address)
    /// gives them a default route that goes nowhere, so ADD refuses it.
    pub fn check_gateway(&self) -> Result<(), IpamError> {
        let (g, subnet) = (self.gateway, self.subnet);
        let network = subnet.network();
        if !subnet.contains(&g) || g == network || g == subnet.broadcast() && g.is_ipv4() {
            return Err(IpamError::Config(format!(
                "gateway {g} is not a host address of network {subnet}"
            )));
        }
        Ok(())
    }

    pub fn subnet(&self) -> IpNet {
        self.subnet
    }
    pub fn start(&self) -> IpAddr {
        self.start
    }
    pub fn end(&self) -> IpAddr {
        self.end
    }
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }
    pub fn is_ipv6(&self) -> bool {
        self.subnet.addr().is_ipv6()
    }

    /// In the subnet and inside `start..=end`. Network and broadcast addresses are only
    /// excluded by the defaults: an explicit start/end that includes them is honoured.
    pub fn contains(&self, ip: IpAddr) -> bool {
        within(&self.subnet, ip, Some(self.start), Some(self.end))
    }

    /// True if the two ranges share an address (never across families).
    pub fn overlaps(&self, other: &Range) -> bool {
        self.contains(other.start)
            || self.contains(other.end)
            || other.contains(self.start)
            || other.contains(self.end)
    }
}

fn default_end(subnet: &IpNet) -> IpAddr {
    match subnet {
        IpNet::V4(n) => next_ip_back(IpAddr::V4(n.broadcast())),
        IpNet::V6(n) => IpAddr::V6(n.broadcast()),
    }
}

fn next_ip_back(ip: IpAddr) -> IpAddr {
    from_u128(to_u128(ip).wrapping_sub(1), ip)
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn spec(subnet: &str) -> RangeSpec {
        RangeSpec {
            subnet: subnet.parse().unwrap(),
            start: None,
            end: None,
            gateway: None,
        }
    }

    fn err(s: RangeSpec) -> String {
        Range::canonicalize(&s).unwrap_err().to_string()
    }

    #[test]
    fn u128_round_trips_both_families() {
        for s in [
            "0.0.0.0",
            "10.1.2.3",
            "255.255.255.255",
            "::",
            "2001:db8::1",
        ] {
            assert_eq!(from_u128(to_u128(ip(s)), ip(s)), ip(s));
        }
        assert_eq!(next_ip(ip("10.0.0.255")), ip("10.0.1.0"));
        assert_eq!(next_ip(ip("2001:db8::ffff")), ip("2001:db8::1:0"));
    }

    #[test]
    fn v4_defaults() {
        let r = Range::canonicalize(&spec("10.1.2.0/24")).unwrap();
        assert_eq!(r.gateway(), ip("10.1.2.1"));
        assert_eq!(r.start(), ip("10.1.2.1"));
        assert_eq!(r.end(), ip("10.1.2.254"));
        let r = Range::canonicalize(&spec("10.1.2.0/25")).unwrap();
        assert_eq!(r.end(), ip("10.1.2.126"));
        assert_eq!(r.to_string(), "10.1.2.1-10.1.2.126");
    }

    #[test]
    fn v6_end_defaults_to_last_address() {
        let r = Range::canonicalize(&spec("2001:db8:1::/64")).unwrap();
        assert_eq!(r.gateway(), ip("2001:db8:1::1"));
        assert_eq!(r.start(), ip("2001:db8:1::1"));
        assert_eq!(r.end(), ip("2001:db8:1::ffff:ffff:ffff:ffff"));
    }

    #[test]
    fn too_small_networks() {
        for s in [
            "10.0.0.0/31",
            "10.0.0.0/32",
            "2001:db8::/127",
            "2001:db8::/128",
        ] {
            assert_eq!(
                err(spec(s)),
                format!("network {s} too small to allocate from")
            );
        }
        assert!(Range::canonicalize(&spec("10.0.0.0/30")).is_ok());
    }

    #[test]
    fn host_bits_set() {
        assert_eq!(
            err(spec("10.1.2.3/24")),
            "network has host bits set. For a subnet mask of length 24 the network address is 10.1.2.0"
        );
    }

    #[test]
    fn explicit_values_are_kept() {
        let mut s = spec("10.1.2.0/24");
        s.start = Some(ip("10.1.2.0"));
        s.end = Some(ip("10.1.2.255"));
        s.gateway = Some(ip("10.1.2.254"));
        let r = Range::canonicalize(&s).unwrap();
        assert_eq!((r.start(), r.end()), (ip("10.1.2.0"), ip("10.1.2.255")));
        assert_eq!(r.gateway(), ip("10.1.2.254"));
        assert!(r.contains(ip("10.1.2.255")));
    }

    #[test]
    fn start_and_end_outside_subnet() {
        let mut s = spec("10.1.2.0/24");
        s.start = Some(ip("10.1.3.5"));
        assert_eq!(err(s), "rangeStart 10.1.3.5 not in network 10.1.2.0/24");
        let mut s = spec("10.1.2.0/24");
        s.end = Some(ip("10.1.3.5"));
        assert_eq!(err(s), "rangeEnd 10.1.3.5 not in network 10.1.2.0/24");
        let mut s = spec("10.1.2.0/24");
        s.start = Some(ip("2001:db8::5"));
        assert!(err(s).starts_with("rangeStart 2001:db8::5 not in network"));
    }

    #[test]
    fn start_after_end_is_reported_on_start() {
        let mut s = spec("10.1.2.0/24");
        s.start = Some(ip("10.1.2.50"));
        s.end = Some(ip("10.1.2.40"));
        assert_eq!(err(s), "rangeStart 10.1.2.50 not in network 10.1.2.0/24");
    }

    #[test]
    fn contains_and_overlaps() {
        let mut s = spec("10.1.2.0/24");
        s.start = Some(ip("10.1.2.10"));
        s.end = Some(ip("10.1.2.20"));
        let a = Range::canonicalize(&s).unwrap();
        assert!(a.contains(ip("10.1.2.10")) && a.contains(ip("10.1.2.20")));
        assert!(!a.contains(ip("10.1.2.9")) && !a.contains(ip("10.1.2.21")));
        assert!(!a.contains(ip("2001:db8::1")));
        s.start = Some(ip("10.1.2.21"));
        s.end = Some(ip("10.1.2.30"));
        let b = Range::canonicalize(&s).unwrap();
        assert!(!a.overlaps(&b));
        let whole = Range::canonicalize(&spec("10.1.2.0/24")).unwrap();
        assert!(whole.overlaps(&a) && a.overlaps(&whole));
        let v6 = Range::canonicalize(&spec("2001:db8::/64")).unwrap();
        assert!(!v6.overlaps(&whole));
    }
}
