//! Test helpers: a throwaway directory and a parsed config.
use super::IpamConf;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("vnet-ipam-{tag}-{}-{n}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config with `ranges` (JSON list of range sets) and `dataDir` set to `dir`.
pub(crate) fn conf(dir: &Path, ranges: serde_json::Value) -> IpamConf {
    let v = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "mynet",
        "ipam": {"type": "host-local", "dataDir": dir, "ranges": ranges},
    });
    IpamConf::parse(&v, &[]).unwrap()
}
