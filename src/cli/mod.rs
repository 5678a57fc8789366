//! The human CLI: what `vnet` does when no `CNI_COMMAND` is set.

mod cluster;
mod doctor;
mod explain;
mod ipam;
mod ipam_gc;
mod ipam_netns;
mod ipam_release;
mod ipam_status;
mod routes;

use clap::{Parser, Subcommand};

use crate::cni::version::SUPPORTED;

#[derive(Parser)]
#[command(
    name = "vnet",
    version,
    about = "A CNI bridge plugin with built-in host-local IPAM"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the plugin version and the CNI spec versions it speaks.
    Version,
    /// Print the iproute2 commands and file operations ADD or DEL would perform; change nothing.
    Explain(explain::ExplainArgs),
    /// The cluster around the node: split a cluster range among nodes.
    #[command(subcommand)]
    Cluster(cluster::ClusterCmd),
    /// This node's routes to the other nodes' pod subnets.
    #[command(subcommand)]
    Routes(routes::RoutesCmd),
    /// See and repair the host-local address store: status, gc, release.
    Ipam(ipam::IpamArgs),
    /// Judge the node against what the plan says it should be for a pod: each fact on its
    /// path, the command that shows it and the fix. Changes nothing. Exit 0 healthy, 1 broken.
    Doctor(doctor::DoctorArgs),
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Explain(a)) => explain::main(&a),
        Some(Cmd::Ipam(a)) => ipam::main(&a),
        Some(Cmd::Doctor(a)) => doctor::main(&a),
        Some(Cmd::Version) | None => {
            // Like the reference plugins, which print this to stderr when run by hand.
            eprintln!("vnet CNI plugin {}", env!("CARGO_PKG_VERSION"));
            eprintln!("CNI protocol versions supported: {}", SUPPORTED.join(", "));
            0
        }
        Some(Cmd::Cluster(c)) => exit_code(cluster::run(c)),
        Some(Cmd::Routes(r)) => exit_code(routes::run(r)),
    }
}

/// Errors of the cluster and routes commands exit 2 (1 means "differs" for `diff`).
fn exit_code(r: Result<i32, crate::cluster::ClusterError>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("vnet: {}", crate::cni::error::with_causes(&e));
        2
    })
}
