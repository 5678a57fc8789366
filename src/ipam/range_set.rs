//! A range set: ranges of one family that together yield one address per ADD.
use super::range::{Range, RangeSpec};
use super::IpamError;
use std::fmt;
use std::net::IpAddr;
use std::ops::Deref;

/// A non-empty list of non-overlapping ranges, all of one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<Range>,
}

impl RangeSet {
    /// Canonicalises each range and checks the set: non-empty, one family, no overlap.
    pub fn canonicalize(specs: &[RangeSpec]) -> Result<RangeSet, IpamError> {
        let ranges = specs
            .iter()
            .map(Range::canonicalize)
            .collect::<Result<Vec<_>, _>>()?;
        RangeSet::new(ranges)
    }

    /// Checks already canonical ranges.
    pub fn new(ranges: Vec<Range>) -> Result<RangeSet, IpamError> {
        let Some(first) = ranges.first() else {
            return Err(IpamError::Config("empty range set".into()));
        };
        if ranges.iter().any(|r| r.is_ipv6() != first.is_ipv6()) {
            return Err(IpamError::Config("mixed address families".into()));
        }
        for (i, a) in ranges.iter().enumerate() {
            if let Some(b) = ranges[i + 1..].iter().find(|b| a.overlaps(b)) {
                return Err(IpamError::Config(format!("subnets {a} and {b} overlap")));
            }
        }
        Ok(RangeSet { ranges })
    }

    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    pub fn is_ipv6(&self) -> bool {
        self.ranges.first().is_some_and(Range::is_ipv6)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.range_for(ip).is_some()
    }

    /// The range holding `ip`, if any.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges.iter().find(|r| r.contains(ip))
    }

    /// True if any range of one set overlaps any range of the other.
    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.ranges
            .iter()
            .any(|a| other.ranges.iter().any(|b| a.overlaps(b)))
    }
}

impl Deref for RangeSet {
    type Target = [Range];
    fn deref(&self) -> &[Range] {
        &self.ranges
    }
}

/// `start-end,start-end`, as in the reference's error messages.
impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) fn set_of(subnets: &[&str]) -> RangeSet {
    let specs: Vec<RangeSpec> = subnets
        .iter()
        .map(|s| RangeSpec {
            subnet: s.parse().unwrap(),
            start: None,
            end: None,
            gateway: None,
        })
        .collect();
    RangeSet::canonicalize(&specs).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(subnets: &[&str]) -> Vec<RangeSpec> {
        subnets
            .iter()
            .map(|s| RangeSpec {
                subnet: s.parse().unwrap(),
                start: None,
                end: None,
                gateway: None,
            })
            .collect()
    }

    fn err(subnets: &[&str]) -> String {
        RangeSet::canonicalize(&specs(subnets))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_set() {
        assert_eq!(err(&[]), "empty range set");
    }

    #[test]
    fn mixed_families() {
        assert_eq!(
            err(&["10.1.2.0/24", "2001:db8::/64"]),
            "mixed address families"
        );
    }

    #[test]
    fn overlap_within_a_set() {
        assert_eq!(
            err(&["10.1.2.0/24", "10.1.2.0/25"]),
            "subnets 10.1.2.1-10.1.2.254 and 10.1.2.1-10.1.2.126 overlap"
        );
    }

    #[test]
    fn range_error_passes_through() {
        assert!(err(&["10.1.2.0/24", "10.1.3.0/31"]).contains("too small"));
    }

    #[test]
    fn lookups_and_display() {
        let s = set_of(&["10.0.0.0/30", "10.0.1.0/30"]);
        assert_eq!(s.to_string(), "10.0.0.1-10.0.0.2,10.0.1.1-10.0.1.2");
        assert_eq!(s.len(), 2);
        assert!(!s.is_ipv6());
        assert!(s.contains("10.0.1.2".parse().unwrap()));
        assert!(!s.contains("10.0.1.3".parse().unwrap()));
        let r = s.range_for("10.0.1.1".parse().unwrap()).unwrap();
        assert_eq!(r.subnet().to_string(), "10.0.1.0/30");
        assert!(s.overlaps(&set_of(&["10.0.1.0/24"])));
        assert!(!s.overlaps(&set_of(&["10.0.2.0/24"])));
    }
}
