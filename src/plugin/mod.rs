//! Orchestration: reads the call, runs one command, prints the answer.

mod add;
mod attachment_lock;
mod check;
mod del;
pub mod delegate;
pub mod error;
mod gc_status;
mod ipam;
pub mod masq;
mod request;
mod trace;

use std::io::Write;

use serde_json::{json, Value};

use crate::cni::config::{self, version_for_errors};
use crate::cni::result::to_pretty;
use crate::cni::version::{CURRENT, SUPPORTED};
use crate::cni::{code, CniError, Command, Env};

pub use error::{to_cni, Error};
pub use request::Request;

/// One CNI call as a process: reads stdin, runs the command, prints the answer.
pub fn main() -> i32 {
    let ipam_only = invoked_as_host_local();
    let stdin = match request::read_stdin() {
        Ok(b) => b,
        Err(e) => return fail(&e, CURRENT),
    };
    let version = version_for_errors(config::decode(&stdin).ok().as_ref());
    match run(stdin, ipam_only) {
        Ok(Some(out)) => print(&to_pretty(&out)),
        Ok(None) => 0,
        Err(e) => fail(&to_cni(&e), &version),
    }
}

/// Installed as (or linked to) `host-local`, vnet is the IPAM plugin alone.
fn invoked_as_host_local() -> bool {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n == "host-local"))
        .unwrap_or(false)
}

/// One CNI call: `Some(json)` to print on success, `None` for commands that print nothing.
pub fn run(stdin: Vec<u8>, ipam_only: bool) -> Result<Option<Value>, Error> {
    let env = Env::parse(|k| std::env::var(k).ok())?;
    if env.command == Command::Version {
        return Ok(Some(version_answer(&stdin)));
    }
    if !ipam_only {
        delegate::refuse_nested_plugin()?;
    }
    let req = if ipam_only {
        Request::parse_ipam_only(env, stdin)?
    } else {
        Request::parse(env, stdin)?
    };
    let v = req.conf.version;
    let needs = |ok: bool, what: &str| -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("config version {v} does not allow {what}"),
            )
            .into())
        }
    };
    match req.env.command {
        Command::Add if ipam_only => Ok(ipam::add(&req)?.map(|r| r.to_json(v))),
        Command::Add => {
            let lock = lock_attachment(&req)?;
            match add::add(&req) {
                Ok(r) => Ok(Some(r.to_json(v))),
                Err(e) => {
                    // Nothing of the attachment is left, so neither is its lock file.
                    if let Some(lock) = lock {
                        lock.remove();
                    }
                    Err(e)
                }
            }
        }
        Command::Del if ipam_only => ipam::del(&req).map(|_| None),
        Command::Del => {
            let lock = lock_attachment(&req)?;
            del::del(&req)?;
            if let Some(lock) = lock {
                lock.remove();
            }
            Ok(None)
        }
        Command::Check => {
            needs(v.has_check(), "CHECK")?;
            if ipam_only {
                let prev = req.conf.prev_result.clone().unwrap_or_default();
                ipam::check(&req, &prev).map(|_| None)
            } else {
                check::check(&req).map(|_| None)
            }
        }
        Command::Gc => {
            needs(v.has_gc_and_status(), "GC")?;
            gc_status::gc(&req).map(|_| None)
        }
        Command::Status => {
            needs(v.has_gc_and_status(), "STATUS")?;
            gc_status::status(&req).map(|_| None)
        }
        Command::Version => Ok(Some(version_answer(&req.stdin))),
    }
}

/// ADD and DEL of one attachment never overlap (see `attachment_lock.rs`). A call that
/// another vnet delegated to runs under that vnet's lock already.
fn lock_attachment(req: &Request) -> Result<Option<attachment_lock::AttachmentLock>, Error> {
    if delegate::is_delegated() {
        return Ok(None);
    }
    let env = &req.env;
    Ok(Some(attachment_lock::AttachmentLock::take(
        &req.conf.name,
        &env.container_id,
        &env.ifname,
    )?))
}

/// VERSION echoes the caller's version when it is one we speak, else our newest.
fn version_answer(stdin: &[u8]) -> Value {
    let v = version_for_errors(config::decode(stdin).ok().as_ref());
    json!({ "cniVersion": v, "supportedVersions": SUPPORTED })
}

fn print(text: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

fn fail(e: &CniError, version: &str) -> i32 {
    print(&to_pretty(&e.to_json(version)));
    1
}
