//! Which storage backend a database location names, and opening it.

use secrecy::SecretString;
use zeroize::Zeroizing;

use zencrypt_core::config::{Config, DbLocation};
use zencrypt_core::dburl::{DbUrl, pgpass_lookup};
use zencrypt_core::error::{Error, Result};
use zencrypt_core::fsutil;
use zencrypt_core::storage::migrations::LATEST;
use zencrypt_core::storage::schema::blank_session_key_in;
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
    Ok(connect_postgres(cfg, url, |opts| PgStore::open(opts, create))?.0)
}

/// Runs `connect` with the database password found for `url`, asking for one on a
/// terminal when the server wants one and none was found; returns what it made and the
/// options that worked.
fn connect_postgres<T>(
    cfg: &Config,
    url: &str,
    connect: impl Fn(&PgOptions) -> std::result::Result<T, StoreError>,
) -> Result<(T, PgOptions)> {
    let mut opts = PgOptions::new(url);
    opts.password = db_password(cfg, url)?;
    match connect(&opts) {
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
            let made = connect(&opts)?;
            Ok((made, opts))
        }
        Ok(made) => Ok((made, opts)),
        Err(e) => Err(e.into()),
    }
}

/// What `db migrate` did: the schema versions before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found.
    pub from: i64,
    /// The version now.
    pub to: i64,
}

/// Upgrades the schema of a PostgreSQL database to this binary's, after writing, unless
/// `backup` is `None`, a SQLite file of it as it is (its schema version, one consistent
/// snapshot, sessions' key copies blanked) to `backup`, which must not exist. A database
/// at the latest version is left alone (and no backup is written). A SQLite file needs no
/// command: it is upgraded when it is opened, so this reports its version.
pub fn migrate(cfg: &Config, backup: Option<&std::path::Path>) -> Result<Migrated> {
    let url = match &cfg.db {
        DbLocation::File(_) => {
            drop(open(cfg, false)?);
            return Ok(Migrated {
                from: LATEST,
                to: LATEST,
            });
        }
        DbLocation::Postgres(url) => url,
    };
    let ((mut store, from), _) = connect_postgres(cfg, url, PgStore::open_any_version)?;
    if from == LATEST {
        return Ok(Migrated { from, to: from });
    }
    // A client with another audit key changes nothing, the backup included.
    let key = zencrypt_core::vault::configured_audit_key(cfg)?;
    let id = store.meta_as_is("database_id")?.unwrap_or_default();
    let check = store.meta_as_is(zencrypt_core::chain::KEY_CHECK)?;
    zencrypt_core::chain::check_stored_key(&key, &id, check.as_deref())?;
    if let Some(path) = backup {
        if path.symlink_metadata().is_ok() {
            return Err(Error::Usage(format!(
                "{} already exists: name a file that does not",
                path.display()
            )));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
    }
    let (from, to) = store.upgrade(&mut |from, dump| {
        let Some(path) = backup else {
            return Ok(());
        };
        // Built beside its destination and put there only once complete: an interrupted
        // or failed backup leaves nothing under the name.
        let staging = fsutil::Staging::beside(path).map_err(|e| StoreError::Unopenable {
            location: path.display().to_string(),
            reason: e.to_string(),
        })?;
        SqliteStore::write_at_version(&staging.file, from, &mut |load| {
            dump(&mut |table, mut row| {
                let columns: Vec<&str> = table.columns.iter().map(|c| c.0.as_str()).collect();
                // Sessions travel without their copies of user keys, as in `db backup`.
                blank_session_key_in(table.name, columns.iter().copied(), &mut row);
                load(table.name, &columns, &row)
            })
        })?;
        staging.publish(path).map_err(|e| StoreError::Unopenable {
            location: path.display().to_string(),
            reason: e.to_string(),
        })
    })?;
    Ok(Migrated { from, to })
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
