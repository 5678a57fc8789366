//! `VNET_TRACE=1`: the plan each call applies, on stderr, for people watching what a
//! runtime's call did. stdout stays reserved for the CNI result.

use crate::plan::Op;

pub fn plan(command: &str, ops: &[Op]) {
    if std::env::var_os("VNET_TRACE").is_none_or(|v| v.is_empty() || v == "0") {
        return;
    }
    eprintln!("vnet {command}: {} operations", ops.len());
    for (i, op) in ops.iter().enumerate() {
        eprintln!("  {:>2}. {op:?}", i + 1);
    }
}
