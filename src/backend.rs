//! Which storage backend a database location names, and opening it.

use secrecy::SecretString;
use zeroize::Zeroizing;

use zencrypt_core::config::{Config, DbLocation};
use zencrypt_core::dburl::{DbUrl, pgpass_lookup};
use zencrypt_core::error::{Error, Result};
use zencrypt_core::fsutil;
use zencrypt_core::storage::{Storage, StoreError};
use zencrypt_postgres::{PgOptions, PgStore};
use zencrypt_sqlite::SqliteStore;

/// Opens the database the configuration names. Only with `create` (sign-up) is a missing
/// database created; otherwise it is an error and nothing is created.
pub fn open(cfg: &Config, create: bool) -> Result<Box<dyn Storage>> {
    open_location(cfg, &cfg.db, create)
}

/// Opens the database at `location` (with `create`, making it when missing: a new file,
/// or the schema in an empty PostgreSQL database).
pub fn open_location(
    cfg: &Config,
    location: &DbLocation,
    create: bool,
) -> Result<Box<dyn Storage>> {
    match location {
        DbLocation::File(path) => Ok(Box::new(SqliteStore::open_with(path, create)?)),
        DbLocation::Postgres(url) => Ok(Box::new(open_postgres(cfg, url, create)?)),
    }
}

/// Connects to PostgreSQL with the password from `ZENCRYPT_DB_PASSWORD_FILE` or
/// `.pgpass`, or, when the server asks for one and none was found, from a prompt on a
/// terminal.
fn open_postgres(cfg: &Config, url: &str, create: bool) -> Result<PgStore> {
    let mut opts = PgOptions::new(url);
    opts.password = db_password(cfg, url)?;
    match PgStore::open(&opts, create) {
        Err(StoreError::Unopenable { reason, .. })
            if opts.password.is_none()
                && reason.contains("the server asks for a password")
                && crate::ui::input::is_interactive(cfg) =>
        {
            let mut p = crate::ui::prompt::TermPrompter::new();
            let password = crate::ui::input::prompt_new_or_existing(
                &mut p,
                "Password of the database user",
                false,
            )
            .map_err(crate::ui::input::prompt_error)?;
            opts.password = Some(password);
            Ok(PgStore::open(&opts, create)?)
        }
        other => Ok(other?),
    }
}

/// The database password: the file `ZENCRYPT_DB_PASSWORD_FILE` names (private to the
/// user, like every secret file), else the first matching line of `.pgpass` (ignored,
/// as libpq does, when others may read it), else none.
fn db_password(cfg: &Config, url: &str) -> Result<Option<SecretString>> {
    if let Some(file) = &cfg.db_password_file {
        if let Some(why) = fsutil::untrusted_secret_file(file) {
            return Err(Error::Config(why));
        }
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| {
            Error::Config(format!(
                "ZENCRYPT_DB_PASSWORD_FILE: cannot read {}: {e}",
                file.display()
            ))
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Config(format!(
                "ZENCRYPT_DB_PASSWORD_FILE: {} is not UTF-8 text",
                file.display()
            ))
        })?;
        return Ok(Some(SecretString::from(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )));
    }
    let Some(pgpass) = &cfg.pgpass else {
        return Ok(None);
    };
    if fsutil::untrusted_secret_file(pgpass).is_some() {
        return Ok(None);
    }
    let Ok(contents) = std::fs::read_to_string(pgpass) else {
        return Ok(None);
    };
    let contents = Zeroizing::new(contents);
    let u = DbUrl::parse(url).map_err(|why| Error::Config(format!("{url}: {why}")))?;
    let user = u.user().unwrap_or("");
    let dbname = u.dbname().unwrap_or(user);
    Ok(pgpass_lookup(&contents, u.host(), u.port(), dbname, user).map(SecretString::from))
}

/// Creates a new SQLite database file at `path`: what `db backup` writes, whichever
/// backend the vault is on.
pub fn create_file(path: &std::path::Path) -> Result<Box<dyn Storage>> {
    Ok(Box::new(SqliteStore::open_with(path, true)?))
}
