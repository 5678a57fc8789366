//! The network configuration on stdin: the reference `bridge` plugin's keys, checked.
//!
//! Bytes that are not JSON are code 6; JSON with a wrong type or value is code 7 naming
//! the key; a key vnet knows but does not implement yet is code 2 naming key and value,
//! never a silent ignore. Keys nobody knows are passed over, as the spec asks.

use serde_json::Value;

use super::args::CniArgs;
use super::error::{code, CniError};
use super::json::{self, Obj};
use super::mac::parse_mac;
use super::result::{CniResult, Dns};
use super::version::{Version, CURRENT, SUPPORTED};

/// Bigger than any real config; refusing more keeps a runaway writer from eating memory.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Network names become directory names under `dataDir`.
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub struct NetConf {
    pub version: Version,
    pub name: String,
    pub plugin_type: String,
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub mtu: Option<u32>,
    pub hairpin: bool,
    pub promisc: bool,
    pub enable_dad: bool,
    /// `ipMasq`: masquerade pod traffic leaving the pod network (nftables only).
    pub ip_masq: bool,
    /// `dns` from the config: when any field is set it replaces what IPAM returned.
    pub dns: Option<Dns>,
    /// `None` = no `ipam.type`: layer 2 only.
    pub ipam_type: Option<String>,
    /// `runtimeConfig.mac` > `args.cni.mac` > `CNI_ARGS MAC=`.
    pub mac: Option<[u8; 6]>,
    pub prev_result: Option<CniResult>,
    /// The whole config, for IPAM parsing and for delegation.
    pub raw: Value,
}

/// Keys of the reference bridge that vnet does not implement: present with anything but
/// their "off" value, they are refused with code 2.
type IsActive = fn(&Value) -> bool;

const UNSUPPORTED: &[(&str, IsActive)] = &[
    ("vlan", is_nonzero),
    ("vlanTrunk", is_nonempty),
    ("preserveDefaultVlan", is_true),
    ("macspoofchk", is_true),
    ("disableContainerInterface", is_true),
    ("portIsolation", is_true),
];

fn is_true(v: &Value) -> bool {
    !matches!(v, Value::Bool(false) | Value::Null) && v.as_str() != Some("false")
}
fn is_nonzero(v: &Value) -> bool {
    !(v.is_null() || v.as_u64() == Some(0))
}
fn is_nonempty(v: &Value) -> bool {
    !(v.is_null() || v.as_array().is_some_and(Vec::is_empty))
}

/// Decodes stdin into JSON: size, UTF-8 and syntax, each its own message.
pub fn decode(bytes: &[u8]) -> Result<Value, CniError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            format!(
                "network config is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| CniError::new(code::DECODE, format!("network config is not UTF-8: {e}")))?;
    let v: Value = serde_json::from_str(text)
        .map_err(|e| CniError::new(code::DECODE, format!("error decoding network config: {e}")))?;
    if !v.is_object() {
        return Err(CniError::new(
            code::DECODE,
            "network config must be a JSON object",
        ));
    }
    Ok(v)
}

/// The spec version the caller speaks: `cniVersion`, or (if absent) the highest supported
/// entry of `cniVersions`. Unsupported or missing is code 1.
pub fn version_of(v: &Value) -> Result<Version, CniError> {
    let obj = v
        .as_object()
        .ok_or_else(|| CniError::new(code::DECODE, "network config must be a JSON object"))?;
    let incompatible = |got: &str| {
        CniError::new(code::INCOMPATIBLE_VERSION, "incompatible CNI versions")
            .with_details(format!("config is {got:?}, plugin supports {SUPPORTED:?}"))
    };
    if let Some(s) = json::opt_str(obj, "cniVersion")? {
        return Version::parse(s)
            .filter(|v| v.is_supported())
            .ok_or_else(|| incompatible(s));
    }
    let listed = json::str_list(obj, "cniVersions")?;
    listed
        .iter()
        .filter_map(|s| Version::parse(s))
        .filter(|v| v.is_supported())
        .max()
        .ok_or_else(|| incompatible(""))
}

/// The version to stamp on an error before the config could be read.
pub fn version_for_errors(v: Option<&Value>) -> String {
    v.and_then(|v| v.get("cniVersion"))
        .and_then(Value::as_str)
        .filter(|s| Version::parse(s).is_some_and(|v| v.is_supported()))
        .unwrap_or(CURRENT)
        .to_string()
}

/// Spec: starts alphanumeric, then alphanumerics, `_`, `.`, `-`; it names a directory,
/// so this also rules out `/`, `..` and NUL.
pub fn validate_name(name: &str) -> Result<(), CniError> {
    let mut b = name.bytes();
    let ok = b.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && b.all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c))
        && name.len() <= MAX_NAME;
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_CONFIG,
            format!("invalid network name {name:?}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most {MAX_NAME} bytes"),
        ))
    }
}

/// What every command needs from any config: the version, the object, a valid name.
fn header(raw: &Value) -> Result<(Version, &Obj, String), CniError> {
    let version = version_of(raw)?;
    let o = raw
        .as_object()
        .ok_or_else(|| CniError::new(code::DECODE, "network config must be a JSON object"))?;
    let name = json::opt_str(o, "name")?
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, "missing network name"))?
        .to_string();
    validate_name(&name)?;
    Ok((version, o, name))
}

impl NetConf {
    /// Reads a decoded config. `args` are the parsed `CNI_ARGS`, for the MAC precedence.
    pub fn parse(raw: Value, args: &CniArgs) -> Result<NetConf, CniError> {
        let (version, o, name) = header(&raw)?;
        let plugin_type = json::opt_str(o, "type")?
            .ok_or_else(|| CniError::new(code::INVALID_CONFIG, "missing plugin \"type\""))?
            .to_string();
        refuse_unsupported(o)?;
        // An empty name means the default, as in the reference.
        let bridge = match json::opt_str(o, "bridge")? {
            None | Some("") => "cni0",
            Some(b) => b,
        }
        .to_string();
        super::env::validate_ifname(&bridge).map_err(|e| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("\"bridge\": {}", e.msg.replace("CNI_IFNAME ", "")),
            )
        })?;
        let is_default_gateway = json::bool_or_false(o, "isDefaultGateway")?;
        let hairpin = json::bool_or_false(o, "hairpinMode")?;
        let promisc = json::bool_or_false(o, "promiscMode")?;
        if hairpin && promisc {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "cannot set hairpin mode and promiscuous mode at the same time",
            ));
        }
        Ok(NetConf {
            version,
            name,
            plugin_type,
            bridge,
            is_gateway: json::bool_or_false(o, "isGateway")? || is_default_gateway,
            is_default_gateway,
            force_address: json::bool_or_false(o, "forceAddress")?,
            mtu: parse_mtu(o)?,
            hairpin,
            promisc,
            enable_dad: json::bool_or_false(o, "enabledad")?,
            ip_masq: parse_ip_masq(o)?,
            dns: parse_dns(o)?,
            ipam_type: parse_ipam_type(o)?,
            mac: parse_macs(o, args)?,
            prev_result: parse_prev_result(o)?,
            raw,
        })
    }

    /// For vnet running as `host-local`: stdin is the main plugin's config, whose keys are
    /// none of our business; only the version, the name and `ipam` matter. The bridge
    /// fields are left off and empty rather than split into a type of their own: on this
    /// path `plugin::run` calls nothing but the IPAM entry points, which read the
    /// version, the name, `prevResult` and `ipam`, never the bridge fields.
    pub fn parse_ipam_only(raw: Value) -> Result<NetConf, CniError> {
        let (version, o, name) = header(&raw)?;
        if json::opt_obj(o, "ipam")?.is_none() {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                "IPAM config missing 'ipam' key",
            ));
        }
        Ok(NetConf {
            version,
            name,
            plugin_type: json::opt_str(o, "type")?.unwrap_or_default().to_string(),
            bridge: String::new(),
            is_gateway: false,
            is_default_gateway: false,
            force_address: false,
            mtu: None,
            hairpin: false,
            promisc: false,
            enable_dad: false,
            ip_masq: false,
            dns: None,
            ipam_type: Some("host-local".into()),
            mac: None,
            prev_result: parse_prev_result(o)?,
            raw,
        })
    }

    /// Whether the built-in host-local IPAM serves this network.
    pub fn builtin_ipam(&self) -> bool {
        self.ipam_type.as_deref() == Some("host-local")
    }
}

fn refuse_unsupported(o: &Obj) -> Result<(), CniError> {
    for (key, active) in UNSUPPORTED {
        if let Some(v) = o.get(*key) {
            if active(v) {
                return Err(CniError::new(
                    code::UNSUPPORTED_FIELD,
                    format!("unsupported field {key:?} = {v}: vnet does not implement it"),
                ));
            }
        }
    }
    Ok(())
}

/// `ipMasq` (bool) and `ipMasqBackend`: vnet masquerades with nftables only, so any
/// other backend is refused with code 2 rather than silently using nftables.
fn parse_ip_masq(o: &Obj) -> Result<bool, CniError> {
    let on = json::bool_or_false(o, "ipMasq")?;
    match json::opt_str(o, "ipMasqBackend")? {
        None | Some("nftables") => Ok(on),
        Some(other) => Err(CniError::new(
            code::UNSUPPORTED_FIELD,
            format!(
                "unsupported field \"ipMasqBackend\" = {other:?}: vnet masquerades with nftables only"
            ),
        )),
    }
}

fn parse_mtu(o: &Obj) -> Result<Option<u32>, CniError> {
    match json::opt_u64(o, "mtu")? {
        None | Some(0) => Ok(None),
        Some(m) if (68..=65535).contains(&m) => Ok(Some(m as u32)),
        Some(m) => Err(CniError::new(
            code::INVALID_CONFIG,
            format!("\"mtu\" {m} out of range: 68..65535, or 0 for the kernel default"),
        )),
    }
}

fn parse_dns(o: &Obj) -> Result<Option<Dns>, CniError> {
    let Some(d) = json::opt_obj(o, "dns")? else {
        return Ok(None);
    };
    let dns = Dns {
        nameservers: json::str_list(d, "nameservers")?,
        domain: json::opt_str(d, "domain")?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        search: json::str_list(d, "search")?,
        options: json::str_list(d, "options")?,
    };
    Ok((!dns.is_empty()).then_some(dns))
}

fn parse_ipam_type(o: &Obj) -> Result<Option<String>, CniError> {
    let Some(ipam) = json::opt_obj(o, "ipam")? else {
        return Ok(None);
    };
    match json::opt_str(ipam, "type")? {
        None | Some("") => Ok(None),
        Some(t) if t.contains('/') || t == "." || t == ".." => Err(CniError::new(
            code::INVALID_CONFIG,
            format!("ipam \"type\" {t:?} must be a plugin name, not a path"),
        )),
        // vnet would run itself, which would run itself again: the built-in host-local
        // is what a vnet network wants (delegate.rs also refuses vnet under other names).
        Some("vnet") => Err(CniError::new(
            code::INVALID_CONFIG,
            "ipam \"type\" \"vnet\" would delegate to vnet itself; use \"host-local\" (built in)",
        )),
        Some(t) => Ok(Some(t.to_string())),
    }
}

fn parse_macs(o: &Obj, args: &CniArgs) -> Result<Option<[u8; 6]>, CniError> {
    let mut mac = args.mac;
    let from = |obj: Option<&Obj>, what: &str| -> Result<Option<[u8; 6]>, CniError> {
        let Some(s) = obj.map(|m| json::opt_str(m, "mac")).transpose()?.flatten() else {
            return Ok(None);
        };
        parse_mac(s).map(Some).ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("{what}.mac {s:?} is not a MAC address"),
            )
        })
    };
    let args_cni = json::opt_obj(o, "args")?
        .map(|a| json::opt_obj(a, "cni"))
        .transpose()?
        .flatten();
    if let Some(m) = from(args_cni, "args.cni")? {
        mac = Some(m);
    }
    if let Some(m) = from(json::opt_obj(o, "runtimeConfig")?, "runtimeConfig")? {
        mac = Some(m);
    }
    Ok(mac)
}

fn parse_prev_result(o: &Obj) -> Result<Option<CniResult>, CniError> {
    match o.get("prevResult") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => CniResult::from_json(v).map(Some).map_err(|e| {
            CniError::new(code::INVALID_CONFIG, format!("invalid \"prevResult\": {e}"))
        }),
    }
}

/// `cni.dev/valid-attachments` (or the older `cni.dev/attachments`) from a GC request.
pub fn valid_attachments(raw: &Value) -> Result<Vec<(String, String)>, CniError> {
    let o = raw
        .as_object()
        .ok_or_else(|| CniError::new(code::DECODE, "network config must be a JSON object"))?;
    let list = match json::opt_array(o, "cni.dev/valid-attachments")? {
        Some(l) => l,
        None => json::opt_array(o, "cni.dev/attachments")?.ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                "GC needs \"cni.dev/valid-attachments\": without it every reservation would look stale",
            )
        })?,
    };
    list.iter()
        .map(|item| {
            let m = item.as_object();
            let get = |k: &str| m.and_then(|m| m.get(k)).and_then(Value::as_str);
            match (get("containerID"), get("ifname")) {
                (Some(id), Some(ifname)) => Ok((id.to_string(), ifname.to_string())),
                _ => Err(CniError::new(
                    code::INVALID_CONFIG,
                    format!("valid attachment {item} needs string \"containerID\" and \"ifname\""),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
