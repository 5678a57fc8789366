//! A test hook: with `VNET_CRASH_AT=<point>` in its environment, vnet sends itself SIGKILL
//! when a store operation reaches that point. The crash tests use it to stop the plugin
//! at each step of a write (on top of killing it at random times), then check that the
//! store is still consistent. Points: `tmp-partial`, `tmp-written`, `linked`,
//! `tmp-removed`, `indexed`, `unlinked`, `before-seal`, `rebuild-scanned`,
//! `rebuild-written`.
use nix::sys::signal::{raise, Signal};

pub(crate) fn point(name: &str) {
    if std::env::var_os("VNET_CRASH_AT").is_some_and(|v| v == name) {
        let _ = raise(Signal::SIGKILL);
    }
}
