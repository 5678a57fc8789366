//! The order in which a range set's addresses are tried: round robin after the last
//! reserved address, across the set's ranges, skipping gateways, one full cycle.
use super::range::{from_u128, to_u128, Range};
use super::range_set::RangeSet;
use std::net::IpAddr;

/// Position in the cyclic sequence range0.start..=range0.end, range1.start..=…, back to range0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    range: usize,
    ip: u128,
}

/// Yields each candidate address once, with the range it belongs to.
pub(crate) struct Candidates<'a> {
    set: &'a RangeSet,
    next: Cursor,
    first: Cursor,
    started: bool,
}

impl<'a> Candidates<'a> {
    /// Starts right after `last` if it lies in the set, else at the first range's start.
    /// The last reserved address itself therefore comes last.
    pub(crate) fn new(set: &'a RangeSet, last: Option<IpAddr>) -> Candidates<'a> {
        let after_last = last.and_then(|ip| {
            let range = set.iter().position(|r| r.contains(ip))?;
            Some(successor(
                set,
                Cursor {
                    range,
                    ip: to_u128(ip),
                },
            ))
        });
        let first = after_last.unwrap_or_else(|| Cursor {
            range: 0,
            ip: set.first().map_or(0, |r| to_u128(r.start())),
        });
        Candidates {
            set,
            next: first,
            first,
            started: false,
        }
    }
}

fn successor(set: &RangeSet, c: Cursor) -> Cursor {
    let r = &set[c.range];
    if c.ip == to_u128(r.end()) {
        let range = (c.range + 1) % set.len();
        Cursor {
            range,
            ip: to_u128(set[range].start()),
        }
    } else {
        Cursor {
            range: c.range,
            ip: c.ip.wrapping_add(1),
        }
    }
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        // Ranges in a set never overlap, so coming back to the first cursor means every
        // address has been visited exactly once. An empty set yields nothing.
        if self.set.is_empty() {
            return None;
        }
        loop {
            if self.started && self.next == self.first {
                return None;
            }
            self.started = true;
            let c = self.next;
            self.next = successor(self.set, c);
            let range = &self.set[c.range];
            let ip = from_u128(c.ip, range.start());
            if ip != range.gateway() {
                return Some((ip, range));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::range_set::set_of;

    fn order(subnets: &[&str], last: Option<&str>) -> Vec<String> {
        let set = set_of(subnets);
        Candidates::new(&set, last.map(|l| l.parse().unwrap()))
            .map(|(ip, _)| ip.to_string())
            .collect()
    }

    #[test]
    fn fresh_slash_29_starts_at_2_and_never_yields_broadcast() {
        let all = order(&["10.1.2.0/29"], None);
        assert_eq!(
            all,
            ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
        );
    }

    #[test]
    fn starts_after_last_and_tries_last_at_the_end() {
        let all = order(&["10.1.2.0/29"], Some("10.1.2.5"));
        assert_eq!(
            all,
            ["10.1.2.6", "10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5"]
        );
    }

    #[test]
    fn last_outside_the_set_is_ignored() {
        let all = order(&["10.1.2.0/29"], Some("10.1.3.5"));
        assert_eq!(all[0], "10.1.2.2");
        let all = order(&["10.1.2.0/29"], Some("2001:db8::5"));
        assert_eq!(all[0], "10.1.2.2");
    }

    #[test]
    fn wraps_from_one_range_to_the_next() {
        let all = order(&["10.0.0.0/30", "10.0.1.0/30"], Some("10.0.0.2"));
        assert_eq!(all, ["10.0.1.2", "10.0.0.2"]);
        let all = order(&["10.0.0.0/30", "10.0.1.0/30"], Some("10.0.1.2"));
        assert_eq!(all, ["10.0.0.2", "10.0.1.2"]);
    }

    #[test]
    fn last_equal_to_gateway_starts_after_it() {
        let all = order(&["10.1.2.0/29"], Some("10.1.2.1"));
        assert_eq!(all.first().unwrap(), "10.1.2.2");
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn v6_counts_with_128_bits() {
        let set = set_of(&["2001:db8:1::/64"]);
        let last = "2001:db8:1::ffff:ffff:ffff:fffe".parse().unwrap();
        let first: Vec<String> = Candidates::new(&set, Some(last))
            .take(2)
            .map(|(ip, _)| ip.to_string())
            .collect();
        assert_eq!(first, ["2001:db8:1:0:ffff:ffff:ffff:ffff", "2001:db8:1::2"]);
    }
}
