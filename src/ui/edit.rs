//! Editing a value in the user's editor: a private temp file (0600, in a 0700 directory
//! of its own, on a tmpfs when there is one), wiped and removed on every way out.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use secrecy::SecretString;
use zencrypt_core::config::Config;
use zencrypt_core::error::{Error, Result, exit};
use zencrypt_core::records::{self, RecordInfo};
use zencrypt_core::vault::{Session, Vault};
use zencrypt_core::{fsutil, interrupt};

/// The editor run when neither `$VISUAL` nor `$EDITOR` is set.
const DEFAULT_EDITOR: &str = "vi";

/// Options for vi-like editors: no swap file (`-n`), no viminfo or ShaDa (`-i NONE`), and
/// no backup or undo file.
const VIM_PRIVATE: &str = " -n -i NONE --cmd 'set nobackup nowritebackup noundofile'";

/// Which editor to run, and where a private tmpfs is.
#[derive(Debug, Clone, Default)]
pub struct Editor {
    /// `$VISUAL`, else `$EDITOR`.
    pub command: Option<OsString>,
    /// `$XDG_RUNTIME_DIR`.
    pub runtime_dir: Option<PathBuf>,
}

impl Editor {
    /// The editor settings of a configuration.
    pub fn from_config(cfg: &Config) -> Editor {
        Editor {
            command: cfg.editor.clone(),
            runtime_dir: cfg.runtime_dir.clone(),
        }
    }
}

/// A directory only this process uses, wiped and removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fsutil::wipe_dir(&self.dir);
        interrupt::untrack(&self.dir);
    }
}

/// Whether `dir` is a directory of this user's that nobody else can enter (what
/// `$XDG_RUNTIME_DIR` promises).
fn private_to_me(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| {
        m.is_dir()
            && m.uid() == rustix::process::geteuid().as_raw()
            && m.permissions().mode() & 0o077 == 0
    })
}

/// Where the scratch directory goes: `$XDG_RUNTIME_DIR` (a per-user tmpfs), else
/// `/dev/shm` (a tmpfs), else the temp directory (a disk, which is said).
fn scratch_base(runtime_dir: Option<&Path>) -> (PathBuf, bool) {
    if let Some(dir) = runtime_dir.filter(|d| private_to_me(d)) {
        return (dir.to_path_buf(), true);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        return (shm.to_path_buf(), true);
    }
    (std::env::temp_dir(), false)
}

/// A file name for the temp file: the record name's last part, so that an editor can
/// pick a mode from it, else "value".
fn file_name(name: Option<&str>) -> String {
    name.and_then(|n| n.rsplit('/').next())
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .unwrap_or("value")
        .to_string()
}

/// Opens `value` in the editor and returns what was saved, or `None` when nothing
/// changed. A trailing newline the editor added to a value that had none is dropped.
pub fn edit_value(
    editor: &Editor,
    value: &[u8],
    name: Option<&str>,
    max: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let (base, tmpfs) = scratch_base(editor.runtime_dir.as_deref());
    fsutil::sweep_edit_leftovers(&base);
    let dir = base.join(fsutil::edit_dir_name());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    interrupt::track_wiped_dir(&dir);
    let scratch = Scratch { dir };
    if !tmpfs {
        crate::ui::output::notice(&format!(
            "note: no tmpfs found; the value is written to {} while you edit, and wiped afterwards",
            scratch.dir.display()
        ));
    }
    let file = scratch.dir.join(file_name(name));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| Error::io(format!("creating {}", file.display()), e))?;
        f.write_all(value)
            .map_err(|e| Error::io(format!("writing {}", file.display()), e))?;
    }
    run_editor(editor.command.clone(), &file)?;
    let mut edited = Zeroizing::new(Vec::new());
    std::fs::File::open(&file)
        .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut edited))
        .map_err(|e| Error::io(format!("reading {} back", file.display()), e))?;
    drop(scratch);
    if edited.len() > max {
        return Err(Error::Usage(format!(
            "values are limited to {} MiB; nothing was saved",
            max >> 20
        )));
    }
    if !value.ends_with(b"\n") && edited.ends_with(b"\n") {
        edited.pop();
    }
    Ok((edited[..] != *value).then_some(edited))
}

/// Opens a record's text value in the editor: the edited text, or `None` when nothing
/// changed. A binary value is refused (a text editor would damage it).
pub fn edit_record(
    editor: &Editor,
    info: &RecordInfo,
    value: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if std::str::from_utf8(value).is_err() {
        let shown = info.name.as_deref().unwrap_or(&info.token);
        return Err(Error::Usage(format!(
            "record '{shown}' holds binary data, which a text editor would damage; use `zencrypt data get {shown} -o FILE` and `zencrypt data update {shown} --file FILE`"
        )));
    }
    edit_value(editor, value, info.name.as_deref(), records::MAX_VALUE)
}

/// Asks a yes/no question on a terminal.
pub type Confirm<'a> = dyn FnMut(&str) -> Result<bool> + 'a;

/// Saves an edit as a new version, only if the record is still at the version that was
/// edited. If it changed meanwhile, `confirm` (a terminal's question) decides whether the
/// edit goes over it; without one, the edit is refused (exit 6) and nothing is saved.
pub fn save_edit(
    vault: &mut Vault,
    session: &Session,
    info: &RecordInfo,
    edited: &[u8],
    password: Option<&SecretString>,
    confirm: Option<&mut Confirm<'_>>,
) -> Result<RecordInfo> {
    let shown = info.name.as_deref().unwrap_or(&info.token);
    match vault.data_update(session, &info.token, edited, Some(info.version), password) {
        Err(Error::Conflict(_)) => match confirm {
            Some(confirm) => {
                if confirm(&format!(
                    "'{shown}' changed while you edited. Save your edit over it?"
                ))? {
                    vault.data_update(session, &info.token, edited, None, password)
                } else {
                    Err(Error::Cancelled)
                }
            }
            None => Err(Error::Conflict(format!(
                "'{shown}' changed while you edited (it is no longer at version {}); your edit was not saved",
                info.version
            ))),
        },
        other => other,
    }
}

/// Runs the editor on `file` through `sh`, so that `EDITOR="code --wait"` works, and
/// waits for it. Anything but a clean exit saves nothing.
fn run_editor(editor: Option<OsString>, file: &Path) -> Result<()> {
    let editor = editor.unwrap_or_else(|| DEFAULT_EDITOR.into());
    let mut script = OsString::from(&editor);
    // vim and neovim keep undo, backup and viminfo/ShaDa files outside the scratch
    // directory: they are told not to. (A plain `vi` may be another vi that does not take
    // these options, so it gets none.)
    let program = editor
        .to_string_lossy()
        .split_whitespace()
        .next()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_string())
        .unwrap_or_default();
    if matches!(
        program.as_str(),
        "vim" | "nvim" | "gvim" | "vim.basic" | "vim.tiny"
    ) {
        script.push(VIM_PRIVATE);
    }
    script.push(" \"$1\"");
    let status = crate::ui::scrub_child_env(&mut std::process::Command::new("/bin/sh"))
        .arg("-c")
        .arg(&script)
        .arg("zencrypt-edit")
        .arg(file)
        .status()
        .map_err(|e| Error::io("starting the editor through sh", e))?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => "was stopped by a signal".to_string(),
    };
    Err(Error::Child {
        message: format!(
            "the editor ({}) {how}; nothing was saved",
            zencrypt_core::text::printable(&editor.to_string_lossy(), 60)
        ),
        code: exit::RUNTIME,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(file_name(Some("prod/db/config.yml")), "config.yml");
        assert_eq!(file_name(Some("token")), "token");
        assert_eq!(file_name(Some(".hidden")), "value");
        assert_eq!(file_name(None), "value");
    }
}
