//! The only layer that talks to the kernel: netlink (rtnetlink) and `/proc/sys` writes.
//!
//! A [`Node`] holds one netlink connection in the node ("host") namespace, the one of the
//! thread that opened it, and optionally one inside the pod namespace. It executes
//! [`crate::plan::Op`]s (`Node::apply`, with rollback) and answers the few queries CHECK
//! and the result need (`link`, `addrs`, `routes`). Nothing here runs a program (`ip`,
//! `sysctl`, `nft`: the masquerade rules go through nf_tables netlink, `nft_wire.rs`), and
//! nothing here knows about CNI.

mod addr;
mod apply;
mod bridge;
mod conn;
mod error;
mod link;
pub mod live;
mod masq;
mod names;
mod netns;
mod nft;
mod nft_wire;
mod node_routes;
mod route;
mod sysctl;
mod veth;

#[cfg(test)]
mod tests;

pub use crate::plan::Ns;
pub use conn::Node;
pub use error::NetError;
pub use link::Link;
pub use names::random_veth_name;
pub use nft_wire::RuleInfo as MasqRule;
pub use node_routes::MainRoute;
pub use route::Route;

/// Suffix for error contexts: pod-side operations say so, host-side ones are the default.
fn ns_suffix(ns: Ns) -> &'static str {
    match ns {
        Ns::Host => "",
        Ns::Pod => " in pod",
    }
}
