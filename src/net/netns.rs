//! Running a closure inside another network namespace.
//!
//! `setns(CLONE_NEWNET)` switches only the calling thread, so the closure runs on a
//! short-lived scoped thread that enters the namespace and then ends. The caller's thread
//! (which drives the tokio runtime) never changes namespace. A thread that entered a
//! namespace is never reused: it exits as soon as the closure returns.

use std::{fs::File, io, path::Path, thread};

use nix::{errno::Errno, sched::CloneFlags, sys::statfs};

/// Why [`run_in`] could not run (or finish) the closure.
#[derive(Debug)]
pub(crate) enum RunError {
    /// `setns` refused the descriptor (not a network namespace, or no permission).
    Setns(Errno),
    /// The helper thread could not be started.
    Spawn(io::Error),
    /// The closure panicked.
    Panicked,
}

impl RunError {
    /// Describe the failure for [`super::NetError::Namespace`].
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            RunError::Setns(e) => format!("enter {what} namespace: {}", e.desc().to_lowercase()),
            RunError::Spawn(e) => format!("start a thread for the {what} namespace: {e}"),
            RunError::Panicked => format!("the thread in the {what} namespace panicked"),
        }
    }
}

/// The network namespace of the calling thread (not of the process).
pub(crate) fn current() -> io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

/// Open a namespace file such as `/var/run/netns/<name>` or `/proc/<pid>/ns/net`, and
/// check that it is a namespace file (nsfs), so a typo'd path fails here and not later.
pub(crate) fn open(path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    let fs = statfs::fstatfs(&file)?;
    if fs.filesystem_type() != statfs::NSFS_MAGIC {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(file)
}

/// Run `f` on a fresh thread that first joined the network namespace `ns`.
pub(crate) fn run_in<T, F>(ns: &File, f: F) -> Result<T, RunError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("vnet-netns".into())
            .spawn_scoped(scope, move || {
                nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(RunError::Setns)?;
                Ok(f())
            })
            .map_err(RunError::Spawn)?;
        worker.join().unwrap_or(Err(RunError::Panicked))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_in_own_namespace_and_returns_value() {
        if !crate::net::tests::root_or_skip("runs_in_own_namespace_and_returns_value") {
            return;
        }
        let ns = current().unwrap();
        assert_eq!(run_in(&ns, || 41 + 1).unwrap(), 42);
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let err = open(Path::new("/proc/self/status")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        let err = open(Path::new("/nonexistent/vnet/netns")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn a_panic_is_reported_not_propagated() {
        if !crate::net::tests::root_or_skip("a_panic_is_reported_not_propagated") {
            return;
        }
        let ns = current().unwrap();
        let r: Result<(), _> = run_in(&ns, || panic!("boom"));
        assert!(matches!(r, Err(RunError::Panicked)));
    }
}
