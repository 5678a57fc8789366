//! vnet: a CNI bridge plugin with built-in host-local IPAM.
//!
//! Layers, each pointing only down (`tests/layers.rs` fails on an import that points up):
//!
//! ```text
//! cli       the human commands          plugin    one CNI call: orchestration
//! explain   what an ADD or DEL would do, as commands (reads, never changes)
//! doctor    the node against the plan for a pod, fact by fact (reads, never changes)
//! cluster   node table, subnet split, host route sync
//! net       the only code that talks to the kernel (rtnetlink, nf_tables, /proc/sys)
//! plan      pure: typed config + allocation → ops, and ops → iproute2/nft text
//! ipam      host-local: ranges, allocator, the on-disk store
//! cni       the protocol: env, config types, results, error codes
//! files     opening files vnet did not make, safely
//! hash      the one persisted hash (FNV-1a)
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod cluster;
pub mod cni;
pub mod doctor;
pub mod explain;
pub mod files;
pub mod hash;
pub mod ipam;
pub mod net;
pub mod plan;
pub mod plugin;

/// The module layers, lowest first: a module may use only modules before it. Checked by
/// `tests/layers.rs`. (The allocator, `arena.rs`, belongs to the binary alone.)
pub const LAYERS: &[&[&str]] = &[
    &["files", "hash"],
    &["cni"],
    &["ipam"],
    &["plan"],
    &["net"],
    &["cluster"],
    &["explain", "doctor"],
    &["plugin", "cli"],
];

/// Entry point for the binary: a CNI plugin when `CNI_COMMAND` is set, the human CLI
/// otherwise. Returns the process exit code.
pub fn run() -> i32 {
    if std::env::var_os("CNI_COMMAND").is_none() {
        return cli::main();
    }
    plugin::main()
}
