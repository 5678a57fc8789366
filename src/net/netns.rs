//! Running a closure inside another network namespace.
//!
//! `setns(CLONE_NEWNET)` switches only the calling thread. [`run_in`] switches the calling
//! thread into the target namespace, runs the closure and switches it back before
//! returning (also when the closure panics). It used to run the closure on a fresh
//! thread instead; on a 2-vCPU VM every such thread cost about 0.45 ms (clone plus the
//! cross-CPU wake-ups of start and join), five of them per ADD, which was half of the
//! plugin's own time (see docs/performance.md). Switching the caller is safe here because
//! the only tokio runtime is a current-thread one that runs solely inside `block_on`, and
//! `run_in` is never called from inside `block_on`: no task can observe the switch, and
//! sockets keep the namespace they were created in.

use std::{fs::File, io, os::fd::AsFd, path::Path};

use nix::{errno::Errno, fcntl::OFlag, sched::CloneFlags, sys::stat, sys::statfs};

/// Why [`run_in`] could not run (or finish) the closure.
#[derive(Debug)]
pub(crate) enum RunError {
    /// `setns` refused the descriptor (not a network namespace, or no permission).
    Setns(Errno),
    /// The calling thread's own namespace could not be opened (to return to it).
    Home(io::Error),
}

impl RunError {
    /// Describe the failure for [`super::NetError::Namespace`].
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            RunError::Setns(e) => format!("enter {what} namespace: {}", e.desc().to_lowercase()),
            RunError::Home(e) => format!("open the current namespace before entering {what}: {e}"),
        }
    }
}

/// The network namespace of the calling thread (not of the process).
pub(crate) fn current() -> io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

/// The message of the error [`open`] gives for a file that is not a namespace.
const NOT_A_NAMESPACE: &str = "not a namespace file";

/// Open a namespace file such as `/var/run/netns/<name>` or `/proc/<pid>/ns/net`, and
/// check that it is a namespace file (nsfs), so a typo'd path fails here and not later.
/// The path is opened once: every later check and `setns` use this descriptor, so the
/// path cannot be swapped (a symlink flipped to the node's own namespace) in between.
/// `O_NONBLOCK`: a FIFO at the path would otherwise block the open forever.
pub(crate) fn open(path: &Path) -> io::Result<File> {
    let fd = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        stat::Mode::empty(),
    )?;
    let file = File::from(fd);
    let fs = statfs::fstatfs(&file)?;
    if fs.filesystem_type() != statfs::NSFS_MAGIC {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, NOT_A_NAMESPACE));
    }
    Ok(file)
}

/// Whether an [`open`] error means there is no namespace at the path: nothing there, or
/// a file that is not (any longer) a namespace, such as the empty file a runtime's netns
/// mount point is once the namespace was unmounted.
pub(crate) fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || (e.kind() == io::ErrorKind::InvalidInput && e.to_string() == NOT_A_NAMESPACE)
}

/// Two namespace files name the same namespace when their nsfs inodes are equal.
pub(crate) fn same_namespace(a: &File, b: &File) -> bool {
    match (stat::fstat(a.as_fd()), stat::fstat(b.as_fd())) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Puts the calling thread back into its namespace when dropped (also during a panic).
struct GoHome(File);

impl Drop for GoHome {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.0, CloneFlags::CLONE_NEWNET) {
            // Returning to a namespace this thread was just in, through a descriptor we
            // hold, does not fail in practice. If it ever did, every later host-side step
            // would hit the pod: stopping is the only safe answer.
            eprintln!("vnet: cannot return to the node's network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Run `f` with the calling thread inside the network namespace `ns`, then return the
/// thread to the namespace it was in. Already there: `f` just runs. A panic in `f` (test
/// builds unwind; the shipped build aborts the process) still brings the thread back, as
/// the guard's drop runs during the unwinding.
pub(crate) fn run_in<T, F>(ns: &File, f: F) -> Result<T, RunError>
where
    F: FnOnce() -> T,
{
    let home = current().map_err(RunError::Home)?;
    if same_namespace(&home, ns) {
        return Ok(f());
    }
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(RunError::Setns)?;
    let _back = GoHome(home);
    Ok(f())
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
        assert!(is_gone(&err), "{err}");
        let err = open(Path::new("/nonexistent/vnet/netns")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        assert!(is_gone(&err));
        assert!(!is_gone(&io::Error::from_raw_os_error(libc::EMFILE)));
    }

    /// The inode of the calling thread's network namespace.
    fn here() -> u64 {
        stat::fstat(current().unwrap().as_fd()).unwrap().st_ino
    }

    #[test]
    fn the_thread_comes_back_home_also_after_a_panic() {
        let Some(lab) = crate::net::tests::Lab::new("comes_back_home", 1) else {
            return;
        };
        let pod = open(&lab.pod_path(0)).unwrap();
        let pod_ino = stat::fstat(pod.as_fd()).unwrap().st_ino;
        // On a thread of its own, so a failure cannot leave the test runner's thread moved.
        std::thread::spawn(move || {
            let home = here();
            assert_ne!(home, pod_ino);
            assert_eq!(run_in(&pod, here).unwrap(), pod_ino);
            assert_eq!(here(), home);
            let r = std::panic::catch_unwind(|| run_in(&pod, || panic!("boom")));
            assert!(r.is_err(), "the panic unwinds out of run_in");
            assert_eq!(here(), home);
        })
        .join()
        .unwrap();
    }
}
