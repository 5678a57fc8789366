//! `vnet doctor`: the node against the plan, one fact at a time.
//!
//! vnet knows what a node should look like for a pod: the ops ADD would apply for it
//! (`plan::build::add_ops`, from the config and the pod's reservation in the store). Doctor
//! reads the kernel and the store and judges each of those facts in the order a packet
//! leaving the pod meets them (pod, the veth "cable", the bridge, the node, the store),
//! with the command that shows the fact and, when it does not hold, the one that fixes
//! it (the plan's own rendering of the op). It only reads: no lock is taken for writing,
//! nothing is sent.

mod kernel;
mod path;
mod store;
mod target;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

use crate::cluster::ClusterConf;
use crate::cni::error::with_causes;
use crate::cni::NetConf;
use crate::ipam::{self, IpamConf};
use crate::net::Node;

pub use path::Dest;

/// Where on the path from the pod outwards a fact sits; checks print in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hop {
    Pod,
    Cable,
    Bridge,
    Node,
    Store,
}

/// One fact: what should hold, the command that shows it, and for a fact that does not
/// hold what is wrong and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name, e.g. `bridge.up` (docs/doctor.md lists them).
    pub id: &'static str,
    pub hop: Hop,
    pub ok: bool,
    pub fact: String,
    pub show: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The subnet a route check is about (`--to` keeps only the one on the path).
    #[serde(skip)]
    pub about: Option<IpNet>,
}

impl Check {
    fn new(id: &'static str, hop: Hop, fact: impl Into<String>, show: impl Into<String>) -> Check {
        Check {
            id,
            hop,
            ok: true,
            fact: fact.into(),
            show: show.into(),
            problem: None,
            fix: None,
            about: None,
        }
    }

    fn about(mut self, net: IpNet) -> Check {
        self.about = Some(net);
        self
    }

    /// The fact does not hold: what is wrong, and the command(s) that put it right.
    fn broken(mut self, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        self.ok = false;
        self.problem = Some(problem.into());
        let fix = fix.into();
        self.fix = (!fix.is_empty()).then_some(fix);
        self
    }
}

/// The pod a report is about.
#[derive(Debug, Clone, Serialize)]
pub struct PodInfo {
    pub netns: Option<String>,
    pub container: Option<String>,
    pub ifname: String,
    /// The addresses its interface holds.
    pub addresses: Vec<IpNet>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub network: String,
    pub bridge: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Dest>,
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    /// The first fact that does not hold: where to look first.
    pub fn first_broken(&self) -> Option<&Check> {
        self.checks.iter().find(|c| !c.ok)
    }
}

/// What to diagnose.
pub struct Ask<'a> {
    pub conf: &'a NetConf,
    /// The config file as the fix commands name it.
    pub conf_path: String,
    /// The plugin binary, for the DEL a fix command runs.
    pub plugin: String,
    /// The pod's namespace: a path, or a name under /run/netns.
    pub pod: Option<String>,
    pub container: Option<String>,
    pub ifname: String,
    pub to: Option<IpAddr>,
}

/// Why doctor could not judge (exit 2), as opposed to a fact that does not hold (exit 1).
#[derive(Debug)]
pub enum Error {
    Config(crate::cni::CniError),
    Ipam(crate::ipam::IpamError),
    Cluster(crate::cluster::ClusterError),
    Net(crate::net::NetError),
    /// The pod asked about cannot be read (its namespace is not there).
    Pod {
        what: String,
        source: crate::net::NetError,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            // Transparent: the lower layer's message, its causes as the causes.
            Error::Ipam(e) => write!(f, "{e}"),
            Error::Cluster(e) => write!(f, "{e}"),
            Error::Net(e) => write!(f, "{e}"),
            Error::Pod { what, .. } => write!(f, "open pod {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(_) => None,
            Error::Ipam(e) => e.source(),
            Error::Cluster(e) => e.source(),
            Error::Net(e) => e.source(),
            Error::Pod { source, .. } => Some(source),
        }
    }
}

impl From<crate::cni::CniError> for Error {
    fn from(e: crate::cni::CniError) -> Self {
        Error::Config(e)
    }
}
impl From<crate::ipam::IpamError> for Error {
    fn from(e: crate::ipam::IpamError) -> Self {
        Error::Ipam(e)
    }
}
impl From<crate::cluster::ClusterError> for Error {
    fn from(e: crate::cluster::ClusterError) -> Self {
        Error::Cluster(e)
    }
}
impl From<crate::net::NetError> for Error {
    fn from(e: crate::net::NetError) -> Self {
        Error::Net(e)
    }
}

impl Error {
    /// The message with its causes, for a person.
    pub fn describe(&self) -> String {
        with_causes(self)
    }
}

/// Everything doctor reads once and the checks share.
struct Seen<'a> {
    conf: &'a NetConf,
    conf_path: String,
    plugin: String,
    ipam: Option<IpamConf>,
    status: Option<ipam::NetworkStatus>,
    cluster: Option<ClusterConf>,
    pods: Vec<crate::net::live::BridgePod>,
    node: Node,
}

pub fn diagnose(ask: &Ask) -> Result<Report, Error> {
    let conf = ask.conf;
    let ipam = match conf.builtin_ipam() {
        true => Some(IpamConf::parse(&conf.raw, &[])?),
        false => None,
    };
    let status = match &ipam {
        Some(c) => Some(ipam::status(
            &c.data_dir,
            &conf.name,
            Some(&c.range_sets),
            100.0,
        )?),
        None => None,
    };
    let node = Node::open(None)?;
    let seen = Seen {
        conf,
        conf_path: ask.conf_path.clone(),
        plugin: ask.plugin.clone(),
        cluster: ClusterConf::from_config(&conf.raw)?,
        pods: node.bridge_pods(&conf.bridge)?,
        ipam,
        status,
        node,
    };
    let target = target::resolve(ask, &seen)?;
    let mut checks = kernel::checks(&seen, target.as_ref())?;
    checks.extend(store::checks(&seen, target.as_ref()));
    let dest = match ask.to {
        Some(to) => Some(path::classify(&seen, to)?),
        None => None,
    };
    match &dest {
        Some(d) => checks = path::on_path(&seen, d, target.as_ref(), checks)?,
        // Stable: within a hop, the plan's order.
        None => checks.sort_by_key(|c| c.hop),
    }
    Ok(Report {
        network: conf.name.clone(),
        bridge: conf.bridge.clone(),
        pod: target.map(|t| t.info()),
        to: dest,
        ok: checks.iter().all(|c| c.ok),
        checks,
    })
}

impl Seen<'_> {
    fn conf_path(&self) -> &str {
        &self.conf_path
    }
}

/// `ip -n NAME` for a namespace under /run/netns, else through nsenter.
fn ip_in(netns: &std::path::Path) -> String {
    let name = netns
        .strip_prefix("/run/netns")
        .or_else(|_| netns.strip_prefix("/var/run/netns"))
        .ok()
        .and_then(|n| n.to_str())
        .filter(|n| !n.contains('/'));
    match name {
        Some(n) => format!("ip -n {n}"),
        None => format!("nsenter --net={} ip", netns.display()),
    }
}

/// The namespace file a `--pod` argument names.
fn pod_path(arg: &str) -> PathBuf {
    if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        PathBuf::from("/run/netns").join(arg)
    }
}
