//! `vnet doctor`: judge the node against the plan; exit 0 healthy, 1 broken, 2 error.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Args;

use crate::cni::{config, NetConf};
use crate::doctor::{diagnose, Ask, Report};

#[derive(Args)]
pub struct DoctorArgs {
    /// Network config file (the 10-bridge.conf the runtime reads).
    #[arg(long, short)]
    conf: PathBuf,
    /// The pod's network namespace: a name under /run/netns, or a path.
    #[arg(long)]
    pod: Option<String>,
    /// The pod by the container ID its address is reserved for.
    #[arg(long)]
    container: Option<String>,
    /// The pod's interface.
    #[arg(long, default_value = "eth0")]
    ifname: String,
    /// Only the facts on the way from the pod to this address, in order.
    #[arg(long)]
    to: Option<IpAddr>,
    /// Also send one ping from the pod to --to and say whether it agrees with the verdict.
    #[arg(long, requires_all = ["to", "pod"])]
    probe: bool,
    /// Print the report as JSON (docs/doctor.md describes it).
    #[arg(long)]
    json: bool,
}

/// A network config is a few hundred bytes; a megabyte is not one.
const CONF_CAP: usize = 1 << 20;

fn load(a: &DoctorArgs) -> Result<NetConf, String> {
    let bytes = crate::files::read_path(&a.conf, CONF_CAP)
        .map_err(|e| format!("read {}: {e}", a.conf.display()))?;
    let raw = config::decode(&bytes).map_err(|e| e.msg)?;
    NetConf::parse(raw, &Default::default()).map_err(|e| e.to_string())
}

/// One ping from the pod's namespace: whether it was answered.
fn ping(pod: &str, to: IpAddr) -> Result<bool, String> {
    let path = if pod.contains('/') {
        pod.to_string()
    } else {
        format!("/run/netns/{pod}")
    };
    Command::new("nsenter")
        .arg(format!("--net={path}"))
        .args(["ping", "-c", "1", "-W", "1", &to.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .map_err(|e| format!("run nsenter ping: {e}"))
}

/// A fix for hundreds of reservations is one long loop: the start of it, for a person.
fn shorten(fix: &str) -> String {
    const MAX: usize = 400;
    match fix.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… (the whole command: --json)", &fix[..at]),
        None => fix.to_string(),
    }
}

fn print_human(r: &Report) {
    let mut head = format!("vnet doctor: network {:?}, bridge {}", r.network, r.bridge);
    if let Some(p) = &r.pod {
        let addrs: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
        head += &format!(
            "; pod {} ({}{}: {})",
            p.netns.as_deref().unwrap_or("not found"),
            p.container
                .as_ref()
                .map_or(String::new(), |c| format!("container {c}, ")),
            p.ifname,
            if addrs.is_empty() {
                "no address".into()
            } else {
                addrs.join(", ")
            }
        );
    }
    println!("{head}");
    if let Some(d) = &r.to {
        println!("to {}: {}", d.address, d.describe());
    }
    let width = r
        .checks
        .iter()
        .map(|c| c.fact.chars().count())
        .max()
        .unwrap_or(0)
        .min(70);
    for c in &r.checks {
        let mark = if c.ok { "✓" } else { "✗" };
        let hop = format!("{:?}", c.hop).to_lowercase();
        println!("{mark} {hop:<6} {:<width$}  {}", c.fact, c.show);
        if let Some(p) = &c.problem {
            println!("           wrong: {p}");
        }
        if let Some(f) = &c.fix {
            println!("           fix:   {}", shorten(f));
        }
    }
    let bad = r.checks.iter().filter(|c| !c.ok).count();
    match r.first_broken() {
        None => println!("all {} facts hold", r.checks.len()),
        Some(first) => println!(
            "{bad} of {} facts do not hold; start with the first: {}",
            r.checks.len(),
            first.id
        ),
    }
}

pub fn main(a: &DoctorArgs) -> i32 {
    let conf = match load(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vnet doctor: {e}");
            return 2;
        }
    };
    let ask = Ask {
        conf: &conf,
        conf_path: a.conf.display().to_string(),
        // As it was called: the fix commands then read the same on every machine.
        plugin: std::env::args().next().unwrap_or_else(|| "vnet".into()),
        pod: a.pod.clone(),
        container: a.container.clone(),
        ifname: a.ifname.clone(),
        to: a.to,
    };
    let report = match diagnose(&ask) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vnet doctor: {}", e.describe());
            return 2;
        }
    };
    let probe = match (a.probe, &a.pod, a.to) {
        (true, Some(pod), Some(to)) => match ping(pod, to) {
            Ok(answered) => Some(answered),
            Err(e) => {
                eprintln!("vnet doctor: {e}");
                return 2;
            }
        },
        _ => None,
    };
    // A ping that fails where every fact holds means doctor missed something: broken too.
    let healthy = report.ok && probe != Some(false);
    if a.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        if let (Some(answered), Some(o)) = (probe, v.as_object_mut()) {
            o.insert(
                "probe".into(),
                serde_json::json!({"answered": answered, "agrees": answered == report.ok}),
            );
            o.insert("ok".into(), healthy.into());
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print_human(&report);
        if let Some(answered) = probe {
            let said = if report.ok {
                "every fact holds"
            } else {
                "a fact does not hold"
            };
            let got = if answered {
                "answered"
            } else {
                "got no answer"
            };
            let agree = if answered == report.ok {
                "agrees with"
            } else {
                "DISAGREES with"
            };
            println!(
                "probe: one ping to {} {got}, which {agree} the verdict ({said})",
                a.to.map_or(String::new(), |t| t.to_string())
            );
        }
    }
    if healthy {
        0
    } else {
        1
    }
}
