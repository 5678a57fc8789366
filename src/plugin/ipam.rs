//! IPAM for one request: the built-in host-local store, or a delegated plugin.

use serde_json::Value;

use crate::cni::CniResult;
use crate::ipam::{self, IpamConf};
use crate::plan::build::ipam_result;

use super::delegate;
use super::error::Error;
use super::request::{Ipam, Request};
use super::trace;

/// Reserves the pod's addresses. `None` for a layer-2-only network (no `ipam.type`).
pub fn add(req: &Request) -> Result<Option<CniResult>, Error> {
    let conf = match &req.ipam {
        Ipam::BuiltIn(conf) => conf,
        Ipam::Delegate(kind) => return delegated_add(req, kind).map(Some),
        Ipam::None => return Ok(None),
    };
    conf.check_gateways()?;
    // Read resolv.conf before reserving, so its failure leaves nothing to undo.
    let dns = match &conf.resolv_conf {
        Some(p) => {
            let d = ipam::read_dns(p)?;
            crate::cni::result::Dns {
                nameservers: d.nameservers,
                domain: d.domain,
                search: d.search,
                options: d.options,
            }
        }
        None => Default::default(),
    };
    let (name, id, ifname) = (&req.conf.name, &req.env.container_id, &req.env.ifname);
    // Tracing shows where round robin stood before this reservation.
    let last_before = trace::enabled().map(|_| {
        ipam::preview_add(conf, name, id, ifname)
            .map(|p| p.last_before)
            .unwrap_or_default()
    });
    let allocs = ipam::allocate(conf, name, id, ifname)?;
    if let Some(before) = last_before {
        trace::ipam_add(conf.data_dir.join(name), before, &allocs, id, ifname);
    }
    Ok(Some(ipam_result(conf, allocs, dns)))
}

/// Fails unless a delegated plugin can run (on `CNI_PATH`, not vnet itself): ADD asks
/// before its first change when the plugin runs after the link phase.
pub fn check_delegate(req: &Request) -> Result<(), Error> {
    if let Ipam::Delegate(kind) = &req.ipam {
        delegate::resolve(kind, &req.env.path)?;
    }
    Ok(())
}

/// Runs the delegated plugin with `command`, traced as the command a person would type.
fn run_delegate(req: &Request, kind: &str, command: &str) -> Result<Option<Value>, Error> {
    let plugin = delegate::resolve(kind, &req.env.path)?;
    trace::delegate(command, &req.env.container_id, &plugin.path);
    Ok(plugin.run(command, &req.stdin)?)
}

fn delegated_add(req: &Request, kind: &str) -> Result<CniResult, Error> {
    let out = run_delegate(req, kind, "ADD")?;
    let parsed = out
        .as_ref()
        .ok_or_else(|| "no output".to_string())
        .and_then(CniResult::from_json)
        .and_then(|r| {
            if r.ips.is_empty() {
                Err("IPAM plugin returned missing IP config".to_string())
            } else {
                Ok(r)
            }
        });
    // It may have reserved something before printing garbage: ADD's failure path sends
    // it DEL, as after any failure past this call.
    parsed.map_err(|detail| {
        delegate::DelegateError::BadOutput {
            plugin: kind.to_string(),
            detail,
        }
        .into()
    })
}

/// Releases the pod's addresses; unknown IDs are fine.
pub fn del(req: &Request) -> Result<(), Error> {
    match &req.ipam {
        Ipam::None => Ok(()),
        Ipam::BuiltIn(conf) => {
            let (name, id, ifname) = (&req.conf.name, &req.env.container_id, &req.env.ifname);
            if trace::enabled().is_some() {
                let held = ipam::preview_del(&conf.data_dir, name, id, ifname);
                trace::ipam_del(&conf.data_dir.join(name), &held, id, ifname);
            }
            ipam::release(&conf.data_dir, name, id, ifname)?;
            Ok(())
        }
        Ipam::Delegate(kind) => delegated(req, kind, "DEL"),
    }
}

fn delegated(req: &Request, kind: &str, command: &str) -> Result<(), Error> {
    run_delegate(req, kind, command).map(drop)
}

/// CHECK: the store still holds exactly the addresses `prevResult` lists for this pod.
pub fn check(req: &Request, prev: &CniResult) -> Result<(), Error> {
    match &req.ipam {
        Ipam::None => Ok(()),
        Ipam::BuiltIn(conf) => {
            let held = ipam::find(
                &conf.data_dir,
                &req.conf.name,
                &req.env.container_id,
                &req.env.ifname,
            )?;
            if held.is_empty() {
                return Err(Error::Check(format!(
                    "no address is reserved for container {:?} ifname {:?}",
                    req.env.container_id, req.env.ifname
                )));
            }
            for ip in &prev.ips {
                if !held.contains(&ip.address.addr()) {
                    return Err(Error::Check(format!(
                        "address {} is not reserved for container {:?} (store holds {:?})",
                        ip.address.addr(),
                        req.env.container_id,
                        held
                    )));
                }
            }
            Ok(())
        }
        Ipam::Delegate(kind) => delegated(req, kind, "CHECK"),
    }
}

pub fn gc(req: &Request, valid: &[(String, String)]) -> Result<(), Error> {
    match &req.ipam {
        Ipam::None => Ok(()),
        Ipam::BuiltIn(conf) => {
            ipam::gc(&conf.data_dir, &req.conf.name, valid)?;
            Ok(())
        }
        Ipam::Delegate(kind) => delegated(req, kind, "GC"),
    }
}

/// STATUS: code 50 when a range set has no free address.
pub fn status(req: &Request) -> Result<(), Error> {
    match &req.ipam {
        Ipam::None => Ok(()),
        Ipam::BuiltIn(conf) => {
            let full = ipam::exhausted_sets(conf, &req.conf.name)?;
            if full.is_empty() {
                return Ok(());
            }
            Err(crate::cni::CniError::new(
                crate::cni::code::NOT_AVAILABLE,
                format!(
                    "no free address in range set(s) {full:?} of network {:?}",
                    req.conf.name
                ),
            )
            .into())
        }
        Ipam::Delegate(kind) => delegated(req, kind, "STATUS"),
    }
}

/// The addresses the built-in store holds for this attachment (none for a delegated or
/// no IPAM): DEL reads them before releasing, to find the pod's masquerade elements.
pub fn held(req: &Request) -> Result<Vec<std::net::IpAddr>, Error> {
    match req.ipam.builtin() {
        Some(conf) => Ok(ipam::find(
            &conf.data_dir,
            &req.conf.name,
            &req.env.container_id,
            &req.env.ifname,
        )?),
        None => Ok(Vec::new()),
    }
}

/// The subnets of the built-in IPAM's ranges (none for a delegated or no IPAM).
pub fn subnets(req: &Request) -> Vec<ipnet::IpNet> {
    req.ipam
        .builtin()
        .map(IpamConf::subnets)
        .unwrap_or_default()
}
