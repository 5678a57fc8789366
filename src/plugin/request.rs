//! One plugin invocation: the environment, the raw stdin and the parsed config.

use crate::cluster::ClusterConf;
use crate::cni::args::{self, CniArgs};
use crate::cni::config::{self, MAX_CONFIG_BYTES};
use crate::cni::{code, CniError, Command, Env, NetConf};
use crate::ipam::IpamConf;
use std::io::Read;

use super::error::Error;

pub struct Request {
    pub env: Env,
    pub args: CniArgs,
    pub conf: NetConf,
    /// Who keeps the addresses, with the built-in IPAM's config parsed with everything
    /// else, before any change.
    pub ipam: Ipam,
    /// The node table (`vnet` key), for the commands that use it (ADD, CHECK): read and
    /// validated here, before any change.
    pub cluster: Option<ClusterConf>,
    /// The exact bytes we were given, passed unchanged to a delegated IPAM plugin.
    pub stdin: Vec<u8>,
}

/// Where a network's addresses come from.
pub enum Ipam {
    /// No `ipam.type`: layer 2 only.
    None,
    /// `host-local`, built in.
    BuiltIn(IpamConf),
    /// Any other type: the plugin of that name in `CNI_PATH`.
    Delegate(String),
}

impl Ipam {
    pub fn builtin(&self) -> Option<&IpamConf> {
        match self {
            Ipam::BuiltIn(c) => Some(c),
            _ => None,
        }
    }
}

/// Reads at most one byte more than the limit, so an oversize config is detected
/// without reading all of it.
pub fn read_stdin() -> Result<Vec<u8>, CniError> {
    let mut buf = Vec::new();
    std::io::stdin()
        .take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CniError::new(code::IO, format!("read network config from stdin: {e}")))?;
    Ok(buf)
}

impl Request {
    pub fn parse(env: Env, stdin: Vec<u8>) -> Result<Request, Error> {
        let raw = config::decode(&stdin)?;
        let args = args::parse(&env.args)?;
        let conf = NetConf::parse(raw, &args)?;
        let mut req = Self::with_ipam(env, args, conf, stdin)?;
        if matches!(req.env.command, Command::Add | Command::Check) {
            req.cluster = ClusterConf::from_config(&req.conf.raw)?;
        }
        Ok(req)
    }

    pub fn parse_ipam_only(env: Env, stdin: Vec<u8>) -> Result<Request, Error> {
        let raw = config::decode(&stdin)?;
        let args = args::parse(&env.args)?;
        let conf = NetConf::parse_ipam_only(raw)?;
        Self::with_ipam(env, args, conf, stdin)
    }

    fn with_ipam(env: Env, args: CniArgs, conf: NetConf, stdin: Vec<u8>) -> Result<Request, Error> {
        let ipam = match &conf.ipam_type {
            None => Ipam::None,
            Some(_) if conf.builtin_ipam() => Ipam::BuiltIn(IpamConf::parse(&conf.raw, &args.ips)?),
            Some(kind) => Ipam::Delegate(kind.clone()),
        };
        Ok(Request {
            env,
            args,
            conf,
            ipam,
            cluster: None,
            stdin,
        })
    }
}
