//! Parsing the `ipam` part of the network config (plus `runtimeConfig` and `args`) into an
//! [`IpamConf`], with the reference's range canonicalisation and checks.
use super::json::{self, as_array, as_object, as_str, Object};
use super::names::check_component;
use super::range::RangeSpec;
use super::range_set::RangeSet;
use super::{IpamConf, IpamError, Route};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

impl IpamConf {
    /// Parses the whole stdin network config. `args_ips` come from CNI_ARGS `IP=`; they are
    /// requested first, then `args.cni.ips`, then `runtimeConfig.ips`.
    pub fn parse(netconf: &Value, args_ips: &[IpAddr]) -> Result<IpamConf, IpamError> {
        let top = as_object(netconf, "network config")?;
        // The caller checks the name too; it becomes a directory, so check it here as well.
        if let Some(name) = json::field(top, "name") {
            check_component("network name", as_str(name, "name")?)?;
        }
        let ipam = json::object(top, "", "ipam")?
            .ok_or_else(|| IpamError::Config("IPAM config missing 'ipam' key".into()))?;
        let data_dir = data_dir(ipam)?;
        let runtime = json::object(top, "", "runtimeConfig")?;
        let range_sets = range_sets(ipam, runtime)?;
        check_version_limit(top, &range_sets)?;
        Ok(IpamConf {
            range_sets,
            routes: routes(ipam)?,
            data_dir,
            resolv_conf: json::string(ipam, "ipam", "resolvConf")?.map(PathBuf::from),
            requested: requested(top, runtime, args_ips)?,
        })
    }

    /// ADD's extra check on the ranges (see `Range::check_gateway`).
    pub fn check_gateways(&self) -> Result<(), IpamError> {
        self.range_sets
            .iter()
            .flat_map(|s| s.ranges())
            .try_for_each(|r| r.check_gateway())
    }

    /// The subnet of every range, each once.
    pub fn subnets(&self) -> Vec<ipnet::IpNet> {
        let mut out: Vec<ipnet::IpNet> = Vec::new();
        for r in self.range_sets.iter().flat_map(|s| s.ranges()) {
            if !out.contains(&r.subnet()) {
                out.push(r.subnet());
            }
        }
        out
    }
}

/// `runtimeConfig.ipRanges`, then the legacy top-level range, then `ipam.ranges`.
fn range_sets(ipam: &Object, runtime: Option<&Object>) -> Result<Vec<RangeSet>, IpamError> {
    let mut specs: Vec<Vec<RangeSpec>> = Vec::new();
    if let Some(rt) = runtime {
        specs.extend(set_list(rt, "runtimeConfig", "ipRanges")?);
    }
    // The legacy keys are read even without a subnet, but only a subnet makes them a range.
    if let Some(legacy) = range_spec(ipam, "ipam")? {
        specs.push(vec![legacy]);
    }
    specs.extend(set_list(ipam, "ipam", "ranges")?);
    if specs.is_empty() {
        return Err(IpamError::Config("no IP ranges specified".into()));
    }
    let sets = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            RangeSet::canonicalize(s).map_err(|e| e.context(&format!("invalid range set {i}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, a) in sets.iter().enumerate() {
        if let Some(j) = (i + 1..sets.len()).find(|&j| a.overlaps(&sets[j])) {
            return Err(IpamError::Config(format!(
                "range set {i} overlaps with {j}"
            )));
        }
    }
    Ok(sets)
}

/// A list of range sets, each a list of range objects.
fn set_list(obj: &Object, base: &str, key: &str) -> Result<Vec<Vec<RangeSpec>>, IpamError> {
    let path = json::join(base, key);
    let mut out = Vec::new();
    for (i, set) in json::array(obj, base, key)?.iter().enumerate() {
        let set_path = format!("{path}[{i}]");
        let mut specs = Vec::new();
        for (j, range) in as_array(set, &set_path)?.iter().enumerate() {
            let range_path = format!("{set_path}[{j}]");
            let spec = range_spec(as_object(range, &range_path)?, &range_path)?
                .ok_or_else(|| IpamError::Config(format!("{range_path}: missing subnet")))?;
            specs.push(spec);
        }
        out.push(specs);
    }
    Ok(out)
}

/// `{subnet, rangeStart?, rangeEnd?, gateway?}`; `None` when there is no subnet.
fn range_spec(obj: &Object, base: &str) -> Result<Option<RangeSpec>, IpamError> {
    let start = json::ip_field(obj, base, "rangeStart")?;
    let end = json::ip_field(obj, base, "rangeEnd")?;
    let gateway = json::ip_field(obj, base, "gateway")?;
    let Some(subnet) = json::string(obj, base, "subnet")? else {
        return Ok(None);
    };
    Ok(Some(RangeSpec {
        subnet: json::parse_cidr(subnet, &json::join(base, "subnet"))?,
        start,
        end,
        gateway,
    }))
}

/// CNI 0.1.0 and 0.2.0 results carry one IPv4 and one IPv6 address at most.
fn check_version_limit(top: &Object, sets: &[RangeSet]) -> Result<(), IpamError> {
    let v6 = sets.iter().filter(|s| s.is_ipv6()).count();
    if v6 <= 1 && sets.len() - v6 <= 1 {
        return Ok(());
    }
    let version = json::string(top, "", "cniVersion")?.unwrap_or("");
    // An unparseable or missing version fails the check, as with the reference's semver test.
    let parts: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
    let modern = parts.is_some_and(|p| p.len() == 3 && p.as_slice() >= [0, 3, 0].as_slice());
    if modern {
        return Ok(());
    }
    Err(IpamError::Config(format!(
        "CNI version {version} does not support more than 1 address per family"
    )))
}

/// Longest `ipam.dataDir` accepted (the kernel's PATH_MAX, less room for the network
/// directory and file name that get appended).
const MAX_DATA_DIR: usize = 4096 - 256 - 64;

/// `ipam.dataDir` must name a plain absolute directory: no `..` to climb out of where the
/// operator pointed it, no NUL, not overlong.
fn data_dir(ipam: &Object) -> Result<PathBuf, IpamError> {
    let Some(dir) = json::string(ipam, "ipam", "dataDir")? else {
        return Ok(DEFAULT_DATA_DIR.into());
    };
    let path = Path::new(dir);
    let why = if dir.contains('\0') {
        "contains NUL"
    } else if dir.len() > MAX_DATA_DIR {
        "is too long"
    } else if !path.is_absolute() {
        "is not an absolute path"
    } else if path.components().any(|c| c == Component::ParentDir) {
        "contains \"..\""
    } else {
        return Ok(path.to_path_buf());
    };
    Err(IpamError::Config(format!(
        "\"ipam.dataDir\" {:?} {why}",
        dir.chars().take(200).collect::<String>()
    )))
}

fn routes(ipam: &Object) -> Result<Vec<Route>, IpamError> {
    let mut out = Vec::new();
    for (i, r) in json::array(ipam, "ipam", "routes")?.iter().enumerate() {
        let path = format!("ipam.routes[{i}]");
        let obj = as_object(r, &path)?;
        let dst = json::string(obj, &path, "dst")?
            .ok_or_else(|| IpamError::Config(format!("{path}: missing dst")))?;
        out.push(Route::new(
            json::parse_cidr(dst, &json::join(&path, "dst"))?,
            json::ip_field(obj, &path, "gw")?,
        ));
    }
    Ok(out)
}

/// CNI_ARGS `IP`, then `args.cni.ips`, then `runtimeConfig.ips`, all kept (the reference
/// appends them rather than letting `args` override CNI_ARGS).
fn requested(
    top: &Object,
    runtime: Option<&Object>,
    args_ips: &[IpAddr],
) -> Result<Vec<IpAddr>, IpamError> {
    let mut out: Vec<IpAddr> = args_ips.iter().map(|ip| ip.to_canonical()).collect();
    let cni_args = match json::object(top, "", "args")? {
        Some(args) => json::object(args, "args", "cni")?,
        None => None,
    };
    let sources = [(cni_args, "args.cni"), (runtime, "runtimeConfig")];
    for (obj, base) in sources {
        let Some(obj) = obj else { continue };
        for (i, v) in json::array(obj, base, "ips")?.iter().enumerate() {
            let path = format!("{base}.ips[{i}]");
            out.push(json::parse_requested(as_str(v, &path)?, &path)?);
        }
    }
    Ok(out)
}
