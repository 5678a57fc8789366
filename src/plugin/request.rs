//! One plugin invocation: the environment, the raw stdin and the parsed config.

use std::io::Read;

use crate::cni::args::{self, CniArgs};
use crate::cni::config::{self, MAX_CONFIG_BYTES};
use crate::cni::{code, CniError, Env, NetConf};

pub struct Request {
    pub env: Env,
    pub args: CniArgs,
    pub conf: NetConf,
    /// The exact bytes we were given, passed unchanged to a delegated IPAM plugin.
    pub stdin: Vec<u8>,
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
    pub fn parse(env: Env, stdin: Vec<u8>) -> Result<Request, CniError> {
        let raw = config::decode(&stdin)?;
        let args = args::parse(&env.args)?;
        let conf = NetConf::parse(raw, &args)?;
        Ok(Request {
            env,
            args,
            conf,
            stdin,
        })
    }

    pub fn parse_ipam_only(env: Env, stdin: Vec<u8>) -> Result<Request, CniError> {
        let raw = config::decode(&stdin)?;
        let args = args::parse(&env.args)?;
        let conf = NetConf::parse_ipam_only(raw)?;
        Ok(Request {
            env,
            args,
            conf,
            stdin,
        })
    }
}
