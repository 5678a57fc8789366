//! A conflist run the way a runtime runs it through libcni (`AddNetworkList`,
//! `CheckNetworkList`, `DelNetworkList`), each plugin a real binary inside the test's node
//! namespace:
//!
//! - ADD runs the plugins in list order; each one after the first gets the previous
//!   plugin's printed result as `prevResult`, and the last result is the attachment's.
//! - CHECK runs them in list order, DEL in reverse order, every one with that final result
//!   as `prevResult` (libcni's cached result; DEL below 0.4.0 gets none).
//! - Every plugin gets the list's `name` and `cniVersion`, and a `runtimeConfig` holding
//!   the runtime's capability arguments the entry declares in `capabilities` (libcni's
//!   `buildOneConfig` and `injectRuntimeConfig`; like libcni it leaves `capabilities` in).
//!
//! One difference: libcni decodes each result into its Go types and encodes it again
//! before passing it on; here it is passed on as printed, so a plugin sees exactly what
//! the one before it wrote.

use std::fmt;
use std::path::PathBuf;

use serde_json::{json, Value};

use super::{sh_ok, Call, Cni, Netns};

/// One entry of the list: the binary to run for its `type`, the entry as written in the
/// conflist, and environment only this plugin gets.
pub struct Plugin {
    pub bin: PathBuf,
    pub conf: Value,
    pub env: Vec<(String, String)>,
}

impl Plugin {
    pub fn new(bin: impl Into<PathBuf>, conf: Value) -> Plugin {
        Plugin {
            bin: bin.into(),
            conf,
            env: Vec::new(),
        }
    }

    /// A variable for this plugin only. A `PATH` set here is also where the harness looks
    /// up `ip` to start the plugin inside the node namespace.
    pub fn env(mut self, k: &str, v: &str) -> Plugin {
        self.env.push((k.into(), v.into()));
        self
    }

    fn kind(&self) -> String {
        self.conf["type"].as_str().unwrap_or("?").to_string()
    }
}

pub struct Conflist {
    pub name: String,
    pub cni_version: String,
    pub plugins: Vec<Plugin>,
}

/// What the runtime knows about one attachment (libcni's `RuntimeConf`).
pub struct Attachment<'a> {
    pub node: &'a Netns,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// The runtime's capability arguments, e.g. `{"portMappings": [...]}`.
    pub capability_args: Value,
}

impl<'a> Attachment<'a> {
    pub fn new(node: &'a Netns, container_id: &str, pod: &Netns) -> Attachment<'a> {
        Attachment {
            node,
            container_id: container_id.into(),
            netns: pod.path(),
            ifname: "eth0".into(),
            capability_args: json!({}),
        }
    }

    pub fn capability(mut self, key: &str, value: Value) -> Attachment<'a> {
        self.capability_args[key] = value;
        self
    }
}

/// A plugin of the list failed: which one, for which command, with what it was given.
pub struct Failed {
    pub plugin: String,
    pub command: &'static str,
    pub stdin: Value,
    pub call: Call,
}

impl fmt::Debug for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin type={:?} failed ({}), exit {}\nstdout: {}\nstderr: {}\nstdin: {}",
            self.plugin,
            self.command,
            self.call.code,
            self.call.stdout,
            self.call.stderr,
            self.stdin
        )
    }
}

/// What ADD printed: every plugin's result in list order, and the last one, which the
/// runtime keeps for CHECK and DEL.
#[derive(Debug)]
pub struct Added {
    pub results: Vec<Value>,
    pub result: Value,
}

impl Conflist {
    pub fn new(name: &str, cni_version: &str, plugins: Vec<Plugin>) -> Conflist {
        Conflist {
            name: name.into(),
            cni_version: cni_version.into(),
            plugins,
        }
    }

    /// The stdin of plugin `i` (libcni's `buildOneConfig`).
    pub fn config(&self, i: usize, prev: Option<&Value>, att: &Attachment) -> Value {
        let mut conf = self.plugins[i].conf.clone();
        conf["name"] = json!(self.name);
        conf["cniVersion"] = json!(self.cni_version);
        if let Some(prev) = prev {
            conf["prevResult"] = prev.clone();
        }
        let mut rc = serde_json::Map::new();
        if let Some(caps) = conf["capabilities"].as_object() {
            for (cap, on) in caps {
                if let (Some(true), Some(arg)) = (on.as_bool(), att.capability_args.get(cap)) {
                    rc.insert(cap.clone(), arg.clone());
                }
            }
        }
        if !rc.is_empty() {
            conf["runtimeConfig"] = Value::Object(rc);
        }
        conf
    }

    /// One plugin of the list, `command` with `prev` as `prevResult`: what the list
    /// methods do for each entry, for a test that needs a single step.
    pub fn call(
        &self,
        i: usize,
        command: &'static str,
        prev: Option<&Value>,
        att: &Attachment,
    ) -> Result<Call, Box<Failed>> {
        let plugin = &self.plugins[i];
        let stdin = self.config(i, prev, att);
        let mut cni = Cni::new(Some(att.node)).bin(&plugin.bin).pod(
            command,
            &att.container_id,
            &att.netns,
            &att.ifname,
        );
        for (k, v) in &plugin.env {
            cni = cni.env(k, v);
        }
        let call = cni.run_json(&stdin);
        if call.code != 0 {
            return Err(Box::new(Failed {
                plugin: plugin.kind(),
                command,
                stdin,
                call,
            }));
        }
        Ok(call)
    }

    /// ADD through the whole list. Each result must be JSON in the list's version: libcni
    /// decodes it as that version before handing it to the next plugin.
    pub fn add(&self, att: &Attachment) -> Result<Added, Box<Failed>> {
        let mut results: Vec<Value> = Vec::new();
        for i in 0..self.plugins.len() {
            let call = self.call(i, "ADD", results.last(), att)?;
            let result = call.json();
            assert_eq!(
                result["cniVersion"],
                json!(self.cni_version),
                "{} printed a result in another version: {result}",
                self.plugins[i].kind()
            );
            results.push(result);
        }
        let result = results.last().cloned().unwrap_or(Value::Null);
        Ok(Added { results, result })
    }

    /// CHECK through the whole list with the cached result. Below 0.4.0 libcni refuses
    /// CHECK itself, so asking for it is the test's mistake.
    pub fn check(&self, att: &Attachment, cached: &Value) -> Result<(), Box<Failed>> {
        assert!(
            self.version_has_prev_result(),
            "CHECK needs cniVersion 0.4.0 or later, the list has {}",
            self.cni_version
        );
        for i in 0..self.plugins.len() {
            let call = self.call(i, "CHECK", Some(cached), att)?;
            assert!(
                call.stdout.trim().is_empty(),
                "{} printed on CHECK: {}",
                self.plugins[i].kind(),
                call.stdout
            );
        }
        Ok(())
    }

    /// DEL through the list in reverse order, with the cached result from 0.4.0 on.
    pub fn del(&self, att: &Attachment, cached: Option<&Value>) -> Result<(), Box<Failed>> {
        let prev = cached.filter(|_| self.version_has_prev_result());
        for i in (0..self.plugins.len()).rev() {
            self.call(i, "DEL", prev, att)?;
        }
        Ok(())
    }

    fn version_has_prev_result(&self) -> bool {
        !matches!(
            self.cni_version.as_str(),
            "0.1.0" | "0.2.0" | "0.3.0" | "0.3.1"
        )
    }
}

/// What the plugins of a list can leave on a node, as plain JSON for before/after
/// comparisons: links (name, kind, master, MTU), global addresses, routes of every table,
/// the nftables ruleset (iptables-nft's rules included) and the qdiscs.
///
/// Left out is what the kernel changes on its own timers: carrier flags (`linkdown`; a
/// bridge's carrier follows its ports) and IPv6 link-local addresses and their routes
/// (a bridge's appears once DAD completes, which may be before or after a snapshot).
pub fn node_state(node: &Netns) -> Value {
    let list = |args: &[&str]| node.ip_json(args).as_array().cloned().unwrap_or_default();
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|x| x.to_string());
        v
    };
    let links = list(&["-d", "link", "show"])
        .iter()
        .map(|l| {
            json!({"name": l["ifname"], "kind": l["linkinfo"]["info_kind"],
                   "master": l["master"], "mtu": l["mtu"]})
        })
        .collect();
    let addrs = list(&["addr", "show"])
        .iter()
        .flat_map(|l| {
            let name = l["ifname"].clone();
            l["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["scope"] != "link")
                .map(move |a| json!({"name": name, "local": a["local"], "prefixlen": a["prefixlen"]}))
        })
        .collect();
    let routes = ["-4", "-6"]
        .iter()
        .flat_map(|fam| list(&[fam, "route", "show", "table", "all"]))
        .filter(|r| !r["dst"].as_str().unwrap_or_default().starts_with("fe80:"))
        .map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.remove("flags");
            }
            r
        })
        .collect();
    let qdiscs = node.exec(&["tc", "-j", "qdisc", "show"]);
    let qdiscs: Value = serde_json::from_slice(&qdiscs.stdout).unwrap_or(Value::Null);
    json!({
        "links": sorted(links),
        "addrs": sorted(addrs),
        "routes": sorted(routes),
        "nft": sh_ok(&["ip", "netns", "exec", &node.name, "nft", "-s", "list", "ruleset"]),
        "qdiscs": sorted(qdiscs.as_array().cloned().unwrap_or_default()),
    })
}
