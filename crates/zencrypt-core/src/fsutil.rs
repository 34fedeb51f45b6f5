//! Private files and directories: directories 0700, files 0600, created that way before
//! anything is written into them; whole-file writes that are atomic; and the check that
//! a file holding a secret is private.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::interrupt;

/// Creates `dir` and any missing parents with mode 0700. Existing directories are left as
/// they are.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Creates an empty file with mode 0600 if it does not exist yet.
pub fn touch_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` atomically with mode 0600: a temp file beside it, fsync,
/// rename. A reader sees the old file or the new one, never a partial one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `contents` to `path` only if no file is there yet (0600, atomic), and returns
/// whatever the file holds afterwards: ours, or the one another process created first.
pub fn create_once(path: &Path, contents: &[u8]) -> io::Result<Vec<u8>> {
    if let Ok(existing) = fs::read(path) {
        return Ok(existing);
    }
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result?;
    fs::read(path)
}

/// Why a file holding a secret (a signing or audit key, a session token) cannot be
/// trusted, if it cannot: it must be a regular file (not a link), owned by the user
/// running zencrypt, that no one else may read or write. Anyone who could have written
/// it could have chosen the secret; anyone who could read it knows it.
pub fn untrusted_secret_file(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).ok()?;
    let shown = path.display();
    if !meta.file_type().is_file() {
        return Some(format!(
            "{shown} is not a regular file (a link or a directory?)"
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Some(format!(
            "{shown} belongs to another user (uid {}), who could have chosen its secret",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Some(format!(
            "{shown} can be read or written by other users (mode {mode:04o}); run `chmod 600 {shown}`"
        ));
    }
    None
}

/// A private directory (0700, random name) beside a destination, to build a file in where
/// no one else can swap it for a link or another file, before it is published. Removed,
/// with whatever is left in it, when dropped.
pub struct Staging {
    dir: PathBuf,
    /// Where to build the file.
    pub file: PathBuf,
}

impl Staging {
    /// A staging directory in `dest`'s directory (created 0700 if missing).
    pub fn beside(dest: &Path) -> io::Result<Staging> {
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(parent)?;
        sweep_leftovers(parent);
        let dir = parent.join(staging_name());
        // Tracked before it exists, so a signal that arrives as it is made still removes
        // it; not recursive: fails if the name exists, whatever it is (a link included).
        interrupt::track_dir(&dir);
        if let Err(e) = DirBuilder::new().mode(0o700).create(&dir) {
            interrupt::untrack(&dir);
            return Err(e);
        }
        let name = dest.file_name().unwrap_or("file".as_ref());
        let file = dir.join(name);
        Ok(Staging { file, dir })
    }

    /// Publishes the built file at `dest` without ever replacing or following anything
    /// already there (`AlreadyExists` instead): a hard link, or where the filesystem has
    /// none (vfat, some network mounts), a rename that refuses to replace.
    pub fn publish(&self, dest: &Path) -> io::Result<()> {
        match fs::hard_link(&self.file, dest) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => rustix::fs::renameat_with(
                rustix::fs::CWD,
                &self.file,
                rustix::fs::CWD,
                dest,
                rustix::fs::RenameFlags::NOREPLACE,
            )
            .map_err(io::Error::from),
            r => r,
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        interrupt::untrack(&self.dir);
    }
}

fn temp_sibling(path: &Path) -> PathBuf {
    path.with_file_name(temp_name())
}

/// Names of files and directories being built, which a killed process may leave behind:
/// the prefix, then the creating process's id, a dash and a random part.
const TEMP_PREFIX: &str = ".zencrypt-tmp-";
const STAGING_PREFIX: &str = ".zencrypt-staging-";

/// A fresh name for a temp file: `.zencrypt-tmp-PID-RANDOM`.
pub fn temp_name() -> String {
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        crate::crypto::random_id(6)
    )
}

fn staging_name() -> String {
    format!(
        "{STAGING_PREFIX}{}-{}",
        std::process::id(),
        crate::crypto::random_id(6)
    )
}

/// The process id in a leftover's name, if the name is one of ours.
fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(TEMP_PREFIX)
        .or_else(|| name.strip_prefix(STAGING_PREFIX))?;
    let (pid, random) = rest.split_once('-')?;
    // A staging directory a signal moved aside before removing it (`interrupt`).
    let random = random.strip_suffix(".removing").unwrap_or(random);
    if random.len() != 12 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes what killed zencrypt processes of this user left in `dir`: temp files and
/// staging directories (named as above) whose creating process is gone. One whose process
/// still runs (another zencrypt writing beside us), or another user's, is left alone. Best effort: errors are
/// ignored, since this only tidies up.
pub fn sweep_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        // Only our own leftovers: in a shared directory, another user's are theirs.
        let ours = entry.metadata().is_ok_and(|m| {
            std::os::unix::fs::MetadataExt::uid(&m) == rustix::process::geteuid().as_raw()
        });
        if !ours || process_alive(pid) {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let _ = fs::remove_dir_all(&path);
            }
            Ok(t) if t.is_file() => {
                let _ = fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// Whether a process with this id exists (in this pid namespace).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The prefix of a `data edit` scratch directory: `zencrypt-edit-PID-RANDOM`.
const EDIT_PREFIX: &str = "zencrypt-edit-";

/// A fresh name for an edit's scratch directory.
pub fn edit_dir_name() -> String {
    format!(
        "{EDIT_PREFIX}{}-{}",
        std::process::id(),
        crate::crypto::random_id(8)
    )
}

/// Wipes the edit scratch directories in `dir` that a process of this user left when it
/// was killed outright (SIGKILL, a power cut on a disk-backed temp dir).
pub fn sweep_edit_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(EDIT_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry.metadata().is_ok_and(|m| {
            m.is_dir()
                && std::os::unix::fs::MetadataExt::uid(&m) == rustix::process::geteuid().as_raw()
        });
        if ours && !process_alive(pid) {
            let _ = wipe_dir(&entry.path());
        }
    }
}

/// Overwrites every regular file in `dir` (and below) with zeros, syncs it, and removes
/// the directory with everything in it. Used for plaintext that had to touch a disk (an
/// edit's temp file and whatever the editor left beside it).
pub fn wipe_dir(dir: &Path) -> io::Result<()> {
    fn overwrite(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                overwrite(&entry.path());
            } else if kind.is_file() {
                let path = entry.path();
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path)
                    && let Ok(meta) = f.metadata()
                {
                    let zeros = [0u8; 8192];
                    let mut left = meta.len();
                    while left > 0 {
                        let n = left.min(zeros.len() as u64) as usize;
                        if f.write_all(&zeros[..n]).is_err() {
                            break;
                        }
                        left -= n as u64;
                    }
                    let _ = f.sync_data();
                }
            }
        }
    }
    overwrite(dir);
    std::fs::remove_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_our_own_dead_leftovers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        // pid 2^22 + 1 is above Linux's largest pid: no such process.
        let dead = |n: u32| {
            dir.path()
                .join(format!("{TEMP_PREFIX}{}-00000000000{n}", (1u32 << 22) + 1))
        };
        let (mine, theirs) = (dead(1), dead(2));
        fs::write(&mine, b"x").unwrap();
        fs::write(&theirs, b"x").unwrap();
        let live = dir
            .path()
            .join(format!("{TEMP_PREFIX}{}-000000000003", std::process::id()));
        fs::write(&live, b"x").unwrap();
        let chowned = std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_ok();
        sweep_leftovers(dir.path());
        assert!(!mine.exists());
        assert!(live.exists());
        if chowned {
            assert!(theirs.exists(), "another user's leftover was removed");
        }
    }

    #[test]
    fn a_staging_directory_moved_aside_is_a_leftover_too() {
        let dir = tempfile::tempdir().unwrap();
        let aside = dir.path().join(format!(
            "{STAGING_PREFIX}{}-0123456789ab.removing",
            (1u32 << 22) + 1
        ));
        fs::create_dir(&aside).unwrap();
        fs::write(aside.join("copy.db-journal"), b"x").unwrap();
        sweep_leftovers(dir.path());
        assert!(!aside.exists());
        assert_eq!(
            leftover_pid(&format!("{STAGING_PREFIX}7-0123456789ab.other")),
            None
        );
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secret_files_must_be_private_regular_files() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("audit.key");
        write_private_file(&f, b"secret").unwrap();
        assert_eq!(untrusted_secret_file(&f), None);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(
            untrusted_secret_file(&f).unwrap(),
            format!(
                "{} can be read or written by other users (mode 0640); run `chmod 600 {}`",
                f.display(),
                f.display()
            )
        );
        let link = t.path().join("link.key");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(
            untrusted_secret_file(&link).unwrap(),
            format!(
                "{} is not a regular file (a link or a directory?)",
                link.display()
            )
        );
        assert_eq!(untrusted_secret_file(&t.path().join("missing")), None);
    }

    #[test]
    fn staging_publishes_without_replacing_and_cleans_up() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("out/copy.db");
        let staging = Staging::beside(&dest).unwrap();
        fs::write(&staging.file, b"built").unwrap();
        let dir = staging.file.parent().unwrap().to_path_buf();
        assert_eq!(mode(&dir), 0o700);
        staging.publish(&dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"built");
        assert_eq!(
            staging.publish(&dest).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        drop(staging);
        assert!(!dir.exists());
        let names: Vec<_> = fs::read_dir(t.path().join("out")).unwrap().collect();
        assert_eq!(names.len(), 1, "only the published file is left");
    }

    #[test]
    fn dirs_and_files_are_private() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        create_private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        let f = d.join("f");
        write_private_file(&f, b"one").unwrap();
        assert_eq!(mode(&f), 0o600);
        write_private_file(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn create_once_keeps_the_first() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("k");
        assert_eq!(create_once(&f, b"first").unwrap(), b"first");
        assert_eq!(create_once(&f, b"second").unwrap(), b"first");
        assert_eq!(mode(&f), 0o600);
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn wipe_dir_zeroes_and_removes_everything() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("scratch");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("value"), b"secret").unwrap();
        std::fs::write(dir.join("sub/.value.swp"), b"secret too").unwrap();
        // Keep a second name for one file, to see that its bytes were overwritten.
        std::fs::hard_link(dir.join("value"), base.path().join("seen")).unwrap();
        wipe_dir(&dir).unwrap();
        assert!(!dir.exists());
        assert_eq!(
            std::fs::read(base.path().join("seen")).unwrap(),
            vec![0u8; 6]
        );
    }
}
