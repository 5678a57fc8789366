//! The human CLI: what `vnet` does when no `CNI_COMMAND` is set.

mod explain;
mod ipam;
mod ipam_gc;
mod ipam_netns;
mod ipam_release;
mod ipam_status;

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
    /// See and repair the host-local address store: status, gc, release.
    Ipam(ipam::IpamArgs),
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Explain(a)) => explain::main(&a),
        Some(Cmd::Ipam(a)) => ipam::main(&a),
        Some(Cmd::Version) | None => {
            // Like the reference plugins, which print this to stderr when run by hand.
            eprintln!("vnet CNI plugin {}", env!("CARGO_PKG_VERSION"));
            eprintln!("CNI protocol versions supported: {}", SUPPORTED.join(", "));
            0
        }
    }
}
