//! The plugin calls containerd makes, recorded by a wrapper that stands in containerd's
//! `bin_dir` for each plugin: it saves the call's environment and stdin, then runs the
//! real plugin on them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

/// One plugin call, as the wrapper recorded it.
#[derive(Debug)]
pub struct CniCall {
    pub plugin: String,
    pub env: BTreeMap<String, String>,
    pub stdin: Value,
}

impl CniCall {
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or("<unset>")
    }
    pub fn command(&self) -> &str {
        self.var("CNI_COMMAND")
    }
}

/// The wrapper for plugin `name` (the program `real`), recording into `dir`. Each call's
/// files are named by the time in ns, so that sorting the names gives the call order.
pub fn wrapper(dir: &Path, name: &str, real: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         call={dir}/$(date +%s%N)-{name}-$$\n\
         env > \"$call.env\"\n\
         cat > \"$call.stdin\"\n\
         exec {real} < \"$call.stdin\"\n",
        dir = dir.display(),
        real = real.display(),
    )
}

/// Every call recorded in `dir`, in call order. Never panics: the cleanup reads it too.
pub fn read(dir: &Path) -> Vec<CniCall> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".env").map(str::to_string))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let env = fs::read_to_string(dir.join(format!("{n}.env"))).unwrap_or_default();
            let stdin = fs::read_to_string(dir.join(format!("{n}.stdin"))).unwrap_or_default();
            CniCall {
                plugin: n.split('-').nth(1).unwrap_or_default().to_string(),
                env: env
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                stdin: serde_json::from_str(&stdin).unwrap_or(Value::Null),
            }
        })
        .collect()
}
