//! `data get --clip`: a value on the clipboard for a while. A detached helper process
//! (`zencrypt __clip-hold`) owns the clipboard, as X11 and Wayland want an owner that stays
//! to serve it, and clears it when the time is up if it still holds the value; the command
//! itself returns at once.

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use zencrypt_core::error::{Error, Result};

/// How long the command waits for the helper to say that the value is on the clipboard.
const READY_WITHIN: Duration = Duration::from_secs(10);

fn no_clipboard(e: impl std::fmt::Display) -> Error {
    Error::Child {
        message: format!(
            "no clipboard to copy to ({e}); on a machine without a display, use `data get` to a pipe or -o FILE"
        ),
        code: zencrypt_core::error::exit::RUNTIME,
    }
}

/// Whether there is a clipboard to copy to: checked before a secret is read, so that a
/// machine without a display reads nothing.
pub fn available() -> Result<()> {
    drop(arboard::Clipboard::new().map_err(no_clipboard)?);
    Ok(())
}

/// Puts `text` on the clipboard and returns once it is there; it is cleared after
/// `seconds` if it still holds it.
pub fn copy(text: &[u8], seconds: u64) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding zencrypt's own path", e))?;
    let mut helper = Command::new(exe);
    crate::ui::scrub_child_env(&mut helper)
        .args(["__clip-hold", &seconds.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // Its own process group: Ctrl-C at the terminal does not end it.
    std::os::unix::process::CommandExt::process_group(&mut helper, 0);
    let mut child = helper
        .spawn()
        .map_err(|e| Error::io("starting the clipboard helper", e))?;
    {
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(text)
            .map_err(|e| Error::io("handing the value to the clipboard helper", e))?;
    }
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(READY_WITHIN) {
        Ok(line) if line.trim() == "ok" => Ok(()),
        Ok(line) if !line.trim().is_empty() => Err(no_clipboard(line.trim())),
        _ => {
            let _ = child.kill();
            Err(no_clipboard("the clipboard helper did not answer"))
        }
    }
}

/// The helper: reads the value from stdin, puts it on the clipboard, says `ok`, keeps
/// serving it until `seconds` have passed or something else was copied, then clears it
/// if it still holds the value.
pub fn hold(seconds: u64) -> Result<()> {
    let mut value = Zeroizing::new(Vec::new());
    std::io::stdin()
        .read_to_end(&mut value)
        .map_err(|e| Error::io("reading the value", e))?;
    let text = Zeroizing::new(
        String::from_utf8(value.to_vec()).map_err(|_| Error::Usage("not text".into()))?,
    );
    let mut out = std::io::stdout();
    let mut clipboard = match arboard::Clipboard::new() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(out, "{e}");
            return Ok(());
        }
    };
    if let Err(e) = clipboard.set_text(text.as_str()) {
        let _ = writeln!(out, "{e}");
        return Ok(());
    }
    let _ = writeln!(out, "ok");
    let _ = out.flush();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    #[cfg(target_os = "linux")]
    {
        use arboard::SetExtLinux;
        let _ = clipboard
            .set()
            .exclude_from_history()
            .wait_until(deadline)
            .text(text.as_str());
    }
    #[cfg(not(target_os = "linux"))]
    std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    if clipboard
        .get_text()
        .is_ok_and(|now| now.as_bytes() == text.as_bytes())
    {
        let _ = clipboard.clear();
    }
    Ok(())
}
