//! Which storage backend a database location names, and opening it.

use zencrypt_core::config::{Config, DbLocation};
use zencrypt_core::error::{Error, Result};
use zencrypt_core::storage::Storage;
use zencrypt_sqlite::SqliteStore;

/// Opens the database the configuration names. Only with `create` (sign-up) is a missing
/// database created; otherwise it is an error and nothing is created.
pub fn open(cfg: &Config, create: bool) -> Result<Box<dyn Storage>> {
    open_location(cfg, &cfg.db, create)
}

/// Opens the database at `location` (with `create`, making it when missing).
pub fn open_location(
    cfg: &Config,
    location: &DbLocation,
    create: bool,
) -> Result<Box<dyn Storage>> {
    let _ = cfg;
    match location {
        DbLocation::File(path) => Ok(Box::new(SqliteStore::open_with(path, create)?)),
        DbLocation::Postgres(url) => Err(Error::Config(format!(
            "{url}: this build of zencrypt has no PostgreSQL backend"
        ))),
    }
}

/// Creates a new SQLite database file at `path`: what `db backup` writes, whichever
/// backend the vault is on.
pub fn create_file(path: &std::path::Path) -> Result<Box<dyn Storage>> {
    Ok(Box::new(SqliteStore::open_with(path, true)?))
}
