//! One plugin invocation: the environment, the raw stdin and the parsed config.

use std::io::Read;
use std::path::{Component, Path};

use serde_json::Value;

use crate::cluster::ClusterConf;
use crate::cni::args::{self, CniArgs};
use crate::cni::config::{self, MAX_CONFIG_BYTES};
use crate::cni::{code, CniError, Command, Env, NetConf};
use crate::ipam::IpamConf;

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
            Some(_) if conf.builtin_ipam() => {
                check_data_dir(&conf.raw)?;
                Ipam::BuiltIn(IpamConf::parse(&conf.raw, &args.ips)?)
            }
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

/// Longest `ipam.dataDir` accepted (the kernel's PATH_MAX, less room for the network
/// directory and file name that get appended).
const MAX_DATA_DIR: usize = 4096 - 256 - 64;

/// `ipam.dataDir` must name a plain absolute directory: no `..` to climb out of where the
/// operator pointed it, no NUL, not overlong. Checked here, before the netns or the disk
/// is touched (the IPAM parser reads the key later, after the node is opened).
fn check_data_dir(raw: &Value) -> Result<(), CniError> {
    let Some(dir) = raw.get("ipam").and_then(|i| i.get("dataDir")) else {
        return Ok(());
    };
    let Some(dir) = dir.as_str() else {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            format!("\"ipam.dataDir\" must be a string, got {dir}"),
        ));
    };
    let path = Path::new(dir);
    let why = if dir.contains('\0') {
        Some("contains NUL")
    } else if dir.len() > MAX_DATA_DIR {
        Some("is too long")
    } else if !path.is_absolute() {
        Some("is not an absolute path")
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("contains \"..\"")
    } else {
        None
    };
    match why {
        Some(why) => Err(CniError::new(
            code::INVALID_CONFIG,
            format!(
                "\"ipam.dataDir\" {:?} {why}",
                dir.chars().take(200).collect::<String>()
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_data_dir;
    use serde_json::json;

    #[test]
    fn data_dir_must_stay_where_it_points() {
        let ok = |d: &str| check_data_dir(&json!({"ipam": {"dataDir": d}})).is_ok();
        assert!(ok("/var/lib/cni/networks"));
        assert!(ok("/run/vnet/./ipam"));
        assert!(check_data_dir(&json!({"ipam": {}})).is_ok());
        let long = format!("/{}", "d".repeat(5000));
        for bad in [
            "",
            "networks",
            "../x",
            "/var/lib/../../etc",
            "/a/..",
            "/a\0b",
            &long,
        ] {
            let e = check_data_dir(&json!({"ipam": {"dataDir": bad}})).unwrap_err();
            assert_eq!(e.code, 7, "{bad:?}");
            assert!(e.msg.contains("ipam.dataDir"), "{}", e.msg);
        }
        assert_eq!(
            check_data_dir(&json!({"ipam": {"dataDir": 5}}))
                .unwrap_err()
                .code,
            7
        );
    }
}
