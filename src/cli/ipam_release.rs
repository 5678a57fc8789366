//! `vnet ipam release`: a manual fix under the same flock as the plugin.

use std::net::IpAddr;

use clap::{ArgGroup, Args};
use serde_json::json;

use crate::ipam::{self, Held, Owner};

use super::ipam::{describe, emit, resolve, Target};

#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["address", "container"])))]
pub struct ReleaseArgs {
    #[command(flatten)]
    target: Target,
    /// The address to release, whoever holds it (also a malformed file's address).
    address: Option<IpAddr>,
    /// Release what this container (CNI_CONTAINERID) holds.
    #[arg(long)]
    container: Option<String>,
    /// Only this interface of the container, as DEL would.
    #[arg(long, requires = "container")]
    ifname: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn owner_json(h: &Held) -> serde_json::Value {
    let (id, ifname) = match &h.owner {
        Owner::Attachment { id, ifname } => (Some(id.as_str()), Some(ifname.as_str())),
        Owner::Legacy { id } => (Some(id.as_str()), None),
        Owner::Unknown => (None, None),
    };
    json!({"address": h.ip.to_string(), "container_id": id, "ifname": ifname})
}

fn owner_text(h: &Held) -> String {
    match &h.owner {
        Owner::Attachment { id, ifname } => format!("held by {id}/{ifname}"),
        Owner::Legacy { id } => format!("held by {id}, legacy file"),
        Owner::Unknown => "owner unreadable".into(),
    }
}

pub fn run(a: &ReleaseArgs) -> Result<i32, String> {
    let r = resolve(&a.target, true)?;
    let net = &r.networks[0].name;
    let released: Vec<Held> = match (a.address, &a.container) {
        (Some(ip), _) => ipam::release_address(&r.data_dir, net, ip.to_canonical())
            .map_err(|e| describe(&e))?
            .into_iter()
            .collect(),
        (None, Some(id)) => ipam::release_container(&r.data_dir, net, id, a.ifname.as_deref())
            .map_err(|e| describe(&e))?,
        (None, None) => return Err("give an ADDRESS or --container ID".into()),
    };
    if a.json {
        let list: Vec<_> = released.iter().map(owner_json).collect();
        emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json!({"network": net, "released": list}))
                .unwrap_or_default()
        ));
    } else if released.is_empty() {
        emit(&format!("network {net}: nothing to release\n"));
    } else {
        for h in &released {
            emit(&format!(
                "network {net}: released {} ({})\n",
                h.ip,
                owner_text(h)
            ));
        }
    }
    Ok(i32::from(released.is_empty()))
}
