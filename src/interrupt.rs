//! Ctrl-C during a one-shot command: files being written that must not outlive the
//! process (half a decrypted file, a backup in the making) are removed before it exits
//! with 130, since no destructor runs then. Database changes need nothing here: they are
//! transactions, and a stop at any point leaves each one whole or absent.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

/// Files being written right now that must not outlive an interruption.
static PARTIAL: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn partial() -> MutexGuard<'static, Vec<PathBuf>> {
    PARTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers a file being written, to be removed if Ctrl-C interrupts the process. The
/// first call installs the handler, so commands that write no such file start no extra
/// thread; the shell installs its own handler first, which this one never replaces.
pub fn track(path: &Path) {
    static HANDLER: Once = Once::new();
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            for p in partial().drain(..) {
                let _ = std::fs::remove_file(p);
            }
            std::process::exit(crate::error::exit::INTERRUPTED);
        });
    });
    partial().push(path.to_path_buf());
}

/// The file is finished (or already removed): nothing to clean up any more.
pub fn untrack(path: &Path) {
    partial().retain(|q| q != path);
}
