//! What route sync should change: the routes a node wants (every other node's pod
//! subnet via that node's IP) against the routes it has, as plan ops.
//!
//! Only routes of vnet's protocol are ever replaced or removed. A route to a wanted
//! subnet that somebody else installed is left alone and reported.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::net::MainRoute;
use crate::plan::Op;

use super::table::NodeTable;

/// A wanted route that sync leaves alone because a foreign route holds its subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub dst: IpNet,
    pub want: IpAddr,
    pub found: MainRoute,
}

impl Skipped {
    /// Whether the foreign route sends the subnet where the table says (a hand-made
    /// route to the right node): left alone, and the node is in sync.
    pub fn agrees(&self) -> bool {
        self.found.gw == Some(self.want)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDiff {
    /// Changes to apply, in order (removals last so a moved subnet never has no route).
    pub ops: Vec<Op>,
    /// Wanted routes already in place.
    pub in_sync: Vec<(IpNet, IpAddr)>,
    pub skipped: Vec<Skipped>,
}

/// Every other node's pod subnet via its node IP.
pub fn desired_routes(table: &NodeTable, me: &str) -> Vec<(IpNet, IpAddr)> {
    table
        .nodes
        .iter()
        .filter(|n| n.name != me)
        .map(|n| (n.pod_cidr, n.ip))
        .collect()
}

impl RouteDiff {
    /// Nothing to change and no foreign route sending a subnet to the wrong place.
    pub fn in_sync(&self) -> bool {
        self.ops.is_empty() && self.skipped.iter().all(Skipped::agrees)
    }

    /// Turns every foreign route that disagrees with the table into a replacement by
    /// vnet's own (explicitly asked for: `vnet routes sync --replace-foreign`).
    pub fn replace_foreign(&mut self) {
        let (wrong, kept): (Vec<Skipped>, Vec<Skipped>) =
            self.skipped.drain(..).partition(|s| !s.agrees());
        self.skipped = kept;
        let replace = wrong.into_iter().map(|s| Op::ReplaceNodeRoute {
            dst: s.dst,
            gw: s.want,
            previous: s.found.gw.unwrap_or(s.want),
        });
        // Replacements go before the removals, like vnet's own moved routes.
        let at = self
            .ops
            .iter()
            .position(|o| matches!(o, Op::DelNodeRoute { .. }))
            .unwrap_or(self.ops.len());
        self.ops.splice(at..at, replace);
    }
}

pub fn diff(desired: &[(IpNet, IpAddr)], current: &[MainRoute]) -> RouteDiff {
    let mut d = RouteDiff::default();
    let mut removals = Vec::new();
    let del = |r: &&MainRoute| Op::DelNodeRoute {
        dst: r.dst,
        gw: r.gw,
    };
    for &(dst, gw) in desired {
        let ours: Vec<&MainRoute> = current
            .iter()
            .filter(|r| r.dst == dst && r.is_vnet())
            .collect();
        if ours.iter().any(|r| r.gw == Some(gw)) {
            d.in_sync.push((dst, gw));
            removals.extend(ours.iter().filter(|r| r.gw != Some(gw)).map(del));
        } else if let Some(previous) = ours.iter().find_map(|r| r.gw) {
            d.ops.push(Op::ReplaceNodeRoute { dst, gw, previous });
            removals.extend(ours.iter().filter(|r| r.gw != Some(previous)).map(del));
        } else if !ours.is_empty() {
            // Only gateway-less routes of ours (made by hand): clear them first, or the
            // add would find the subnet taken.
            d.ops.extend(ours.iter().map(del));
            d.ops.push(Op::AddNodeRoute { dst, gw });
        } else if let Some(found) = current.iter().find(|r| r.dst == dst) {
            d.skipped.push(Skipped {
                dst,
                want: gw,
                found: found.clone(),
            });
        } else {
            d.ops.push(Op::AddNodeRoute { dst, gw });
        }
    }
    let stale = current
        .iter()
        .filter(|r| r.is_vnet() && !desired.iter().any(|(dst, _)| *dst == r.dst));
    removals.extend(stale.collect::<Vec<_>>().iter().map(del));
    d.ops.extend(removals);
    d
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
