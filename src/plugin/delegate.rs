//! Running another CNI plugin (an IPAM plugin named by `ipam.type`) from `CNI_PATH`,
//! with the same stdin and environment, as the spec's delegation section describes.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cni::CniError;

#[derive(Debug)]
pub enum DelegateError {
    NoCniPath {
        plugin: String,
    },
    NotFound {
        plugin: String,
        searched: Vec<PathBuf>,
    },
    Exec {
        plugin: PathBuf,
        source: std::io::Error,
    },
    /// The plugin answered with a CNI error: passed through with its own code.
    Failed {
        plugin: String,
        error: CniError,
    },
    BadOutput {
        plugin: String,
        detail: String,
    },
    /// Delegating would run vnet itself again, or go deeper than [`MAX_DEPTH`].
    Loop {
        plugin: String,
        why: String,
    },
}

/// How many delegations deep a call may be: a plugin that delegates to one that
/// delegates back (through a wrapper, a symlink under another name) would otherwise fork
/// until the node runs out of processes. Real chains are one deep.
pub const MAX_DEPTH: u32 = 3;

/// Carries the depth to the delegated plugin (and, through its environment, to whatever
/// it runs).
const DEPTH_VAR: &str = "VNET_DELEGATION_DEPTH";

impl fmt::Display for DelegateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelegateError::NoCniPath { plugin } => {
                write!(f, "CNI_PATH is required to find ipam plugin {plugin:?}")
            }
            DelegateError::NotFound { plugin, searched } => {
                let dirs: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                write!(
                    f,
                    "ipam plugin {plugin:?} not found in CNI_PATH [{}]",
                    dirs.join(":")
                )
            }
            DelegateError::Exec { plugin, .. } => {
                write!(f, "run ipam plugin {}", plugin.display())
            }
            DelegateError::Failed { plugin, error } => write!(f, "ipam plugin {plugin:?}: {error}"),
            DelegateError::Loop { plugin, why } => {
                write!(f, "ipam plugin {plugin:?} refused: {why}")
            }
            DelegateError::BadOutput { plugin, detail } => {
                write!(
                    f,
                    "ipam plugin {plugin:?} printed something unreadable: {detail}"
                )
            }
        }
    }
}

impl std::error::Error for DelegateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DelegateError::Exec { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub fn find(plugin: &str, cni_path: &[PathBuf]) -> Result<PathBuf, DelegateError> {
    if cni_path.is_empty() {
        return Err(DelegateError::NoCniPath {
            plugin: plugin.into(),
        });
    }
    cni_path
        .iter()
        .map(|dir| dir.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| DelegateError::NotFound {
            plugin: plugin.into(),
            searched: cni_path.to_vec(),
        })
}

/// A delegated plugin found on `CNI_PATH` and allowed to run (not vnet itself, not too
/// deep): resolved before ADD's first change, run after it.
pub struct Plugin {
    name: String,
    pub path: PathBuf,
    depth: u32,
}

pub fn resolve(plugin: &str, cni_path: &[PathBuf]) -> Result<Plugin, DelegateError> {
    let path = find(plugin, cni_path)?;
    let depth = refuse_loop(plugin, &path)?;
    Ok(Plugin {
        name: plugin.into(),
        path,
        depth,
    })
}

impl Plugin {
    /// Runs it with `CNI_COMMAND=command`, the rest of our environment unchanged and
    /// `stdin` as its stdin. Returns its stdout JSON, or `None` when it printed nothing
    /// (DEL, CHECK, GC and STATUS print nothing on success).
    pub fn run(&self, command: &str, stdin: &[u8]) -> Result<Option<Value>, DelegateError> {
        let plugin = self.name.as_str();
        let out = spawn(&self.path, command, stdin, self.depth).map_err(|source| {
            DelegateError::Exec {
                plugin: self.path.clone(),
                source,
            }
        })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let parsed = if text.trim().is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Value>(&text).map_err(|e| DelegateError::BadOutput {
                    plugin: plugin.into(),
                    detail: format!("{e}: {}", text.chars().take(200).collect::<String>()),
                })?,
            )
        };
        if out.status.success() {
            return Ok(parsed);
        }
        let error =
            parsed
                .as_ref()
                .and_then(error_from_json)
                .ok_or_else(|| DelegateError::BadOutput {
                    plugin: plugin.into(),
                    detail: format!("exited with {} without a CNI error object", out.status),
                })?;
        Err(DelegateError::Failed {
            plugin: plugin.into(),
            error,
        })
    }
}

/// Refuses to run vnet itself (by name, or the same binary under another name) and to
/// go deeper than [`MAX_DEPTH`]; returns the depth the delegated plugin runs at.
fn refuse_loop(plugin: &str, path: &Path) -> Result<u32, DelegateError> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: String| DelegateError::Loop {
        plugin: plugin.into(),
        why,
    };
    if plugin == "vnet" {
        return Err(refuse(
            "it is vnet itself; leave \"ipam.type\" out or use \"host-local\" (built in)".into(),
        ));
    }
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    if same(path, Path::new("/proc/self/exe")) {
        return Err(refuse(format!("{} is vnet itself", path.display())));
    }
    let depth = depth_from(std::env::var(DEPTH_VAR).ok().as_deref());
    if depth >= MAX_DEPTH {
        return Err(refuse(format!(
            "{depth} delegations deep already (a plugin that delegates back?)"
        )));
    }
    Ok(depth + 1)
}

/// A vnet that a vnet delegated to runs only as its IPAM (`host-local`). Run as the whole
/// plugin it is a loop (a wrapper on `CNI_PATH` that runs vnet again), refused before it
/// changes anything: the delegating vnet made the pod's link already, so going on would
/// only fail later on "interface exists", which hides the loop.
pub fn refuse_nested_plugin() -> Result<(), DelegateError> {
    match std::env::var(DEPTH_VAR) {
        Ok(depth) => Err(DelegateError::Loop {
            plugin: "vnet".into(),
            why: format!(
                "a vnet delegated to it ({DEPTH_VAR}={depth}), yet it runs as the whole plugin, not as host-local: a wrapper that runs vnet again?"
            ),
        }),
        Err(_) => Ok(()),
    }
}

/// Whether this call was delegated to by a vnet (which then holds the attachment's
/// lock: taking it again here would wait for ever).
pub fn is_delegated() -> bool {
    std::env::var_os(DEPTH_VAR).is_some()
}

/// The depth this call runs at: 0 unless a delegating vnet set it.
fn depth_from(var: Option<&str>) -> u32 {
    // Unreadable counts as the deepest: refusing is the safe side of a garbled value.
    var.map_or(0, |v| v.parse().unwrap_or(MAX_DEPTH))
}

fn spawn(
    path: &Path,
    command: &str,
    stdin: &[u8],
    depth: u32,
) -> std::io::Result<std::process::Output> {
    let mut child = Command::new(path)
        .env("CNI_COMMAND", command)
        .env(DEPTH_VAR, depth.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        // A plugin that exits without reading stdin closes the pipe: not our failure.
        match input.write_all(stdin) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
            _ => {}
        }
    }
    child.wait_with_output()
}

fn error_from_json(v: &Value) -> Option<CniError> {
    let code = u32::try_from(v.get("code")?.as_u64()?).ok()?;
    let msg = v.get("msg").and_then(Value::as_str).unwrap_or_default();
    let mut e = CniError::new(code, msg);
    if let Some(d) = v.get("details").and_then(Value::as_str) {
        e = e.with_details(d);
    }
    Some(e)
}
