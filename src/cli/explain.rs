//! `vnet explain [add|del]`: print what the plugin would do, change nothing.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::cni::{args, config, env, NetConf};
use crate::explain::{explain, Ask, What};

#[derive(Clone, Copy, ValueEnum)]
pub enum Verb {
    Add,
    Del,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// ADD (default) or DEL.
    #[arg(value_enum, default_value = "add")]
    verb: Verb,
    /// Network config file; `-` or absent reads stdin.
    #[arg(long, short)]
    conf: Option<PathBuf>,
    /// Container ID (CNI_CONTAINERID).
    #[arg(long, env = "CNI_CONTAINERID", default_value = "example")]
    container: String,
    /// Pod network namespace (CNI_NETNS).
    #[arg(long, env = "CNI_NETNS", default_value = "/run/netns/pod1")]
    netns: String,
    /// Interface name inside the pod (CNI_IFNAME).
    #[arg(long, env = "CNI_IFNAME", default_value = "eth0")]
    ifname: String,
    /// CNI_ARGS, e.g. "IP=10.244.1.9".
    #[arg(long = "cni-args", env = "CNI_ARGS", default_value = "")]
    cni_args: String,
    /// Host-side veth name (ADD picks a random `vethXXXXXXXX`).
    #[arg(long)]
    veth: Option<String>,
    /// Assume a fresh node instead of reading which bridge and addresses exist.
    #[arg(long)]
    fresh: bool,
}

fn read_conf(path: &Option<PathBuf>) -> Result<Vec<u8>, String> {
    match path {
        Some(p) if p.as_os_str() != "-" => {
            std::fs::read(p).map_err(|e| format!("read {}: {e}", p.display()))
        }
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| format!("read config from stdin: {e}"))?;
            Ok(buf)
        }
    }
}

fn run(a: &ExplainArgs) -> Result<String, String> {
    let bytes = read_conf(&a.conf)?;
    env::validate_container_id(&a.container).map_err(|e| e.msg)?;
    env::validate_ifname(&a.ifname).map_err(|e| e.msg)?;
    let cni_args = args::parse(&a.cni_args).map_err(|e| e.msg)?;
    let raw = config::decode(&bytes).map_err(|e| e.msg)?;
    let conf = NetConf::parse(raw, &cni_args).map_err(|e| format!("{e}"))?;
    let ask = Ask {
        what: match a.verb {
            Verb::Add => What::Add,
            Verb::Del => What::Del,
        },
        conf: &conf,
        args: &cni_args,
        container_id: &a.container,
        netns: &a.netns,
        ifname: &a.ifname,
        veth: a.veth.clone().unwrap_or_else(crate::net::random_veth_name),
        look: !a.fresh,
    };
    explain(&ask).map_err(|e| e.to_string())
}

pub fn main(a: &ExplainArgs) -> i32 {
    match run(a) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("vnet explain: {e}");
            2
        }
    }
}
