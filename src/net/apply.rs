//! Executing a plan: each `Op` mapped to kernel calls, with rollback on failure.

use crate::plan::Op;

use super::addr::Dad;
use super::node_routes::RouteWrite;
use super::{NetError, Node};

impl Node {
    /// Apply `ops` in order. On the first failure, apply `op.undo()` of the already
    /// applied ops in reverse (best effort: errors of the undo are ignored) and return the
    /// failing op's error.
    pub fn apply(&self, ops: &[Op]) -> Result<(), NetError> {
        for (done, op) in ops.iter().enumerate() {
            if let Err(err) = self.apply_one(op) {
                self.roll_back(&ops[..done]);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Undo `applied` (a plan that succeeded) in reverse, best effort: for a step after
    /// `apply` that failed and must take the plan's changes back with it.
    pub fn undo(&self, applied: &[Op]) {
        self.roll_back(applied);
    }

    fn roll_back(&self, applied: &[Op]) {
        for undo in applied.iter().rev().filter_map(Op::undo) {
            // Best effort by design: the original error is what the caller needs to see.
            let _ = self.apply_one(&undo);
        }
    }

    fn apply_one(&self, op: &Op) -> Result<(), NetError> {
        match op {
            Op::EnsureBridge { name, mtu, promisc } => {
                self.block_on(self.ensure_bridge(name, *mtu, *promisc))
            }
            Op::AddVeth {
                host,
                peer,
                mtu,
                peer_mac,
            } => self.block_on(self.add_veth(host, peer, *mtu, *peer_mac)),
            Op::SetMaster { dev, master } => self.block_on(self.set_master(dev, master)),
            Op::SetHairpin { dev } => self.block_on(self.set_hairpin(dev)),
            Op::NoLinkLocal { dev } => self.block_on(self.no_link_local(dev)),
            Op::LinkUp { ns, dev } => self.block_on(self.set_up(*ns, dev)),
            Op::Sysctl {
                ns,
                key,
                value,
                optional,
            } => match self.write_sysctl(*ns, key, value) {
                Err(NetError::Sysctl { .. }) if *optional => Ok(()),
                other => other,
            },
            Op::AddAddr { ns, dev, addr } => {
                self.block_on(self.add_addr(*ns, dev, *addr, Dad::AsConfigured))
            }
            Op::EnsureBridgeAddr { dev, addr, force } => {
                self.block_on(self.ensure_bridge_addr(dev, *addr, *force))
            }
            Op::PinMac { dev } => self.block_on(self.pin_mac(dev)),
            Op::AddRoute { ns, dst, gw, dev } => self.block_on(self.add_route(*ns, *dst, *gw, dev)),
            Op::DelLink { ns, dev } => self.block_on(self.delete_link(*ns, dev)).map(drop),
            Op::AddNodeRoute { dst, gw } => {
                self.block_on(self.set_node_route(*dst, *gw, RouteWrite::Add))
            }
            Op::ReplaceNodeRoute { dst, gw, .. } => {
                self.block_on(self.set_node_route(*dst, *gw, RouteWrite::Replace))
            }
            Op::DelNodeRoute { dst, gw } => self.block_on(self.del_node_route(*dst, *gw)),
            Op::AddMasquerade {
                network,
                srcs,
                exclude,
                tag,
            } => self.add_masquerade(network, srcs, exclude, tag),
            Op::DelMasquerade {
                network,
                addrs,
                tag,
            } => self.del_masquerade(network, addrs, tag).map(drop),
        }
    }
}
