//! The CNI error object and the codes vnet uses.
//!
//! Codes 1–99 are the spec's and are used only with the spec's meaning; vnet's own
//! codes start at 100 and are listed in the README.

use serde::Serialize;

/// A failure and its causes in one line, `what failed: why: why`, as a CNI `msg` or a
/// command's message wants it. Every error type of vnet keeps its cause in `source()`
/// and out of its own message; this is the one place they are joined. A cause that
/// starts upper-case (`io::Error` says "No such file or directory") is lowered.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&lower_first(&c.to_string()));
        cause = c.source();
    }
    out
}

/// `No such device` → `no such device`.
pub fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;

    /// No free address left in a range set.
    pub const ADDRESS_EXHAUSTED: u32 = 100;
    /// A requested address (CNI_ARGS IP=, args, runtimeConfig) cannot be given out.
    pub const ADDRESS_UNAVAILABLE: u32 = 101;
    /// The (container ID, ifname) already holds an address: ADD twice without DEL.
    pub const DUPLICATE_ALLOCATION: u32 = 102;
    /// `CNI_NETNS` does not exist or cannot be opened.
    pub const NETNS_MISSING: u32 = 103;
    /// `CNI_IFNAME` already exists in the pod namespace.
    pub const IFNAME_EXISTS: u32 = 104;
    /// A link named like the bridge exists and is not a bridge.
    pub const NOT_A_BRIDGE: u32 = 105;
    /// The bridge holds another address and `forceAddress` is false.
    pub const BRIDGE_ADDRESS_CONFLICT: u32 = 106;
    /// The kernel refused a change (netlink or sysctl).
    pub const KERNEL: u32 = 107;
    /// The delegated IPAM plugin failed to run or printed something unreadable.
    pub const DELEGATE: u32 = 108;
    /// CHECK found the kernel or the store different from `prevResult`.
    pub const CHECK_MISMATCH: u32 = 109;
    /// vnet's own internal failure during ADD (a link it had just made vanished).
    pub const INTERNAL: u32 = 110;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> Self {
        CniError {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The error object as printed on stdout, stamped with the caller's version.
    pub fn to_json(&self, cni_version: &str) -> serde_json::Value {
        let mut v =
            serde_json::json!({ "cniVersion": cni_version, "code": self.code, "msg": self.msg });
        if let Some(d) = &self.details {
            v["details"] = d.clone().into();
        }
        v
    }
}

impl std::fmt::Display for CniError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.msg)?;
        if let Some(d) = &self.details {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}
