//! The cluster around a node: the node → pod subnet table, splitting a cluster range
//! among nodes, and keeping the node's routes to the other nodes' pod subnets in sync.
//!
//! Everything but `sync.rs` is pure (values in, values out); `sync.rs` reads the
//! kernel through `net` and applies the difference as a `plan`.

mod conf;
mod error;
mod kubectl;
mod nodeconf;
mod routes;
mod split;
mod sync;
mod table;

pub use conf::{load_any, ClusterConf};
pub use error::ClusterError;
pub use kubectl::from_kubectl;
pub use nodeconf::{node_conf, NodeConfOptions};
pub use routes::{desired_routes, diff, RouteDiff, Skipped};
pub use split::{parse_nodes_arg, split_equal, split_per_node, NodeSpec, Split};
pub use sync::{find_self, sync_routes, Sync};
pub use table::{NodeEntry, NodeTable};
