//! The saved session token: one file per database in the state directory (0600, in a
//! 0700 directory), so one-shot commands can follow a login.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use zencrypt_core::crypto;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::fsutil;

/// The session file for the database with this id: one per database, in the state dir,
/// whatever path or URL reaches it.
pub fn session_file(state_dir: &Path, database_id: &[u8]) -> PathBuf {
    state_dir
        .join("sessions")
        .join(format!("{}.token", crypto::hex(database_id)))
}

/// Saves a token to `path` (0600, in a 0700 directory).
pub fn save(path: &Path, token: &SecretString) -> Result<()> {
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    fsutil::write_private_file(path, token.expose_secret().as_bytes())
        .map_err(|e| Error::io(format!("writing the session file {}", path.display()), e))
}

/// Reads a saved token, if there is one.
pub fn load(path: &Path) -> Result<Option<SecretString>> {
    if let Some(why) = fsutil::untrusted_secret_file(path) {
        return Err(Error::Config(why));
    }
    load_for_replacement(path)
}

/// Reads a saved token without the ownership and mode checks: only to end the session it
/// belongs to before the file is replaced (a token others could read is one to revoke).
pub fn load_for_replacement(path: &Path) -> Result<Option<SecretString>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let text = std::str::from_utf8(&bytes).map_err(|_| Error::InvalidToken)?;
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            Ok(Some(SecretString::from(text.to_string())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(
            format!("reading the session file {}", path.display()),
            e,
        )),
    }
}

/// Removes a saved token; a missing file is fine.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!("removing the session file {}", path.display()),
            e,
        )),
    }
}
