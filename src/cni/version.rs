//! CNI spec versions this plugin speaks, and what each one allows.

use std::fmt;

/// Every version we accept on stdin and print results in.
pub const SUPPORTED: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest version, answered by VERSION when the caller gave none.
pub const CURRENT: &str = "1.1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u8, pub u8, pub u8);

impl Version {
    /// Parses a dotted triple; `None` for anything else.
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.').map(|p| {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse::<u8>().ok()
            }
        });
        let v = Version(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(v)
    }

    pub fn is_supported(self) -> bool {
        SUPPORTED.iter().any(|s| Version::parse(s) == Some(self))
    }

    /// CHECK and `prevResult` on DEL arrived in 0.4.0.
    pub fn has_check(self) -> bool {
        self >= Version(0, 4, 0)
    }

    /// GC and STATUS arrived in 1.1.0.
    pub fn has_gc_and_status(self) -> bool {
        self >= Version(1, 1, 0)
    }

    /// Results before 1.0.0 carry `ips[].version`.
    pub fn ips_carry_version(self) -> bool {
        self < Version(1, 0, 0)
    }

    /// Route `mtu`/`advmss`/`priority`/`table`/`scope` and interface `mtu` exist from 1.1.0.
    pub fn has_route_extras(self) -> bool {
        self >= Version(1, 1, 0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        assert_eq!(Version::parse("1.1.0"), Some(Version(1, 1, 0)));
        assert_eq!(Version::parse("0.3.1"), Some(Version(0, 3, 1)));
        for bad in [
            "", "1", "1.0", "1.0.0.0", "a.b.c", "1.0.-1", "1..0", "1.0.0 ", "999.0.0",
        ] {
            assert_eq!(Version::parse(bad), None, "{bad:?}");
        }
        assert!(Version(0, 4, 0) > Version(0, 3, 1));
    }

    #[test]
    fn supported_range_is_0_3_0_to_1_1_0() {
        assert!(Version(0, 3, 0).is_supported());
        assert!(Version(1, 1, 0).is_supported());
        assert!(!Version(0, 2, 0).is_supported());
        assert!(!Version(1, 2, 0).is_supported());
        assert!(!Version(0, 3, 1).has_check());
        assert!(Version(0, 4, 0).has_check());
        assert!(!Version(1, 0, 0).has_gc_and_status());
        assert!(Version(0, 4, 0).ips_carry_version());
        assert!(!Version(1, 0, 0).ips_carry_version());
    }
}
