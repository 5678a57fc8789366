//! vnet: a CNI bridge plugin with built-in host-local IPAM.
//!
//! Layers, each arrow pointing down: `plugin` (orchestration) uses `cni` (protocol),
//! `ipam` (addresses), `plan` (kernel changes as values) and `net` (netlink).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod arena;
pub mod cli;
pub mod cluster;
pub mod cni;
pub mod explain;
pub mod files;
pub mod ipam;
pub mod net;
pub mod plan;
pub mod plugin;

/// Entry point for the binary; returns the process exit code.
pub fn run() -> i32 {
    plugin::main()
}
