//! Cleanup when a signal stops a command.
//!
//! SIGINT (Ctrl-C), SIGTERM, SIGHUP and the other signals that end a process by default
//! (SIGQUIT, SIGXFSZ, SIGALRM, SIGUSR1/2) during a one-shot command: files and directories
//! being built that must not outlive the process (half a decrypted file, a backup in the
//! making) are removed before it exits with 128 + the signal's number, since no destructor
//! runs then. Database changes need nothing here: they are transactions, and a stop at any
//! point leaves each one whole or absent. The shell ignores Ctrl-C (its prompts turn it
//! into "cancel") but stops on SIGTERM and SIGHUP after the same cleanup.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Once};

use signal_hook::consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGXFSZ};
use signal_hook::iterator::Signals;

/// What is removed if a signal stops the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partial {
    /// A file being written.
    File,
    /// A directory being built, removed with everything in it.
    Dir,
    /// A private directory of plaintext: its files are overwritten with zeros, then it is
    /// removed.
    WipeDir,
}

/// Paths being written right now that must not outlive an interruption.
static PARTIAL: Mutex<Vec<(PathBuf, Partial)>> = Mutex::new(Vec::new());

/// Set once the signal handler is installed, by a one-shot command or by the shell.
static HANDLER: Once = Once::new();

fn partial() -> MutexGuard<'static, Vec<(PathBuf, Partial)>> {
    PARTIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Installs the shell's handler: Ctrl-C and Ctrl-\ are ignored, SIGTERM and SIGHUP clean up
/// and exit.
pub fn install_for_shell() {
    install(false);
}

/// Installs the handler once. With `stop_on_sigint`, Ctrl-C stops the process like the
/// other two; otherwise it is ignored.
fn install(stop_on_sigint: bool) {
    HANDLER.call_once(|| {
        // Every signal whose default action ends the process without a chance to clean
        // up (SIGXFSZ: a file size limit; SIGQUIT: Ctrl-\), besides SIGKILL.
        let stopping = [
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGXFSZ, SIGALRM, SIGUSR1, SIGUSR2,
        ];
        let Ok(mut signals) = Signals::new(stopping) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    // Ctrl-C and Ctrl-\ are the terminal's: where they do not stop this
                    // process, they reach the editor or the prompt instead.
                    if (sig == SIGINT || sig == SIGQUIT) && !stop_on_sigint {
                        continue;
                    }
                    clean_up();
                    std::process::exit(128 + sig);
                }
            });
        drop(spawned);
    });
}

fn clean_up() {
    for (p, kind) in partial().drain(..) {
        let _ = match kind {
            Partial::File => std::fs::remove_file(p),
            // Moved aside first: the command's own thread may still be creating files in
            // it (SQLite's side files, say), which it can no longer do by the old path,
            // so the removal cannot race with it and leave the directory behind.
            Partial::Dir => {
                let mut aside = p.clone().into_os_string();
                aside.push(".removing");
                let aside = PathBuf::from(aside);
                match std::fs::rename(&p, &aside) {
                    Ok(()) => std::fs::remove_dir_all(&aside),
                    Err(_) => std::fs::remove_dir_all(&p),
                }
            }
            // An editor may still be writing into it: try again once.
            Partial::WipeDir => crate::fsutil::wipe_dir(&p).or_else(|_| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                crate::fsutil::wipe_dir(&p)
            }),
        };
    }
}

/// Registers a file being written, to be removed if a signal stops the process. The
/// first call installs the handler, so commands that write no such file start no extra
/// thread; a handler the shell installed first stays as it is.
pub fn track(path: &Path) {
    install(true);
    partial().push((path.to_path_buf(), Partial::File));
}

/// Registers a directory being built, to be removed with its contents if a signal stops
/// the process.
pub fn track_dir(path: &Path) {
    install(true);
    partial().push((path.to_path_buf(), Partial::Dir));
}

/// Registers a private directory of plaintext that a child program (an editor) works in:
/// a signal that stops the process wipes and removes it. Ctrl-C does not stop this
/// process meanwhile: it reaches the editor from the terminal, and the editor decides.
pub fn track_wiped_dir(path: &Path) {
    install(false);
    partial().push((path.to_path_buf(), Partial::WipeDir));
}

/// The file or directory is finished (or already removed): nothing to clean up any more.
pub fn untrack(path: &Path) {
    partial().retain(|(q, _)| q != path);
}
