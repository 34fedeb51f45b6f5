//! zencrypt's PostgreSQL backend: one blocking connection per store (a short-lived CLI
//! needs no pool), TLS with rustls, the numbered migrations of
//! [`zencrypt_core::storage::migrations`] and the storage contract of
//! [`zencrypt_core::storage`].
//!
//! - Write transactions run READ COMMITTED and lock the audit head row first
//!   (`SELECT ... FROM audit_head WHERE id = 1 FOR UPDATE`), so writers serialise on it;
//!   a lock held longer than [`LOCK_TIMEOUT`] is [`StoreError::Busy`]. Read transactions
//!   run REPEATABLE READ READ ONLY: one consistent snapshot.
//! - A statement's first run in a transaction is one round trip (its parameter types go
//!   with it, nothing is prepared first); one that runs again in the same transaction is
//!   prepared then and reused.
//! - Text columns are `COLLATE "C"` and every order on text says so: names compare and
//!   sort by their bytes, as on SQLite. User names are matched ignoring the case of ASCII
//!   letters only, like SQLite's NOCASE.
//! - The schema version lives in the table `zencrypt_schema`; a database whose tables
//!   are someone else's is refused untouched, and so is an older or newer schema
//!   ([`PgStore::migrate`] upgrades an older one on purpose).
//! - The URL is shown without its password ([`PgStore::redacted_url`]); no error, `Debug`
//!   output or location carries it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod tls;
mod tx;
mod url;

// The backend's tests against a server (the storage conformance suite and the backend's
// own: creation, refusals, migration, locks, TLS, redaction) build into this crate's one
// test binary, each in a database of its own on the server `ZENCRYPT_TEST_DB_URL` names.
#[cfg(test)]
extern crate self as zencrypt_postgres;
#[cfg(test)]
#[path = "../tests/backend.rs"]
mod backend_tests;
#[cfg(test)]
#[path = "../tests/conformance.rs"]
mod conformance_tests;
#[cfg(test)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::error::SqlState;
use postgres::types::Type;
use postgres::{Client, Config, NoTls};
use secrecy::{ExposeSecret, SecretString};
use zencrypt_core::crypto;
use zencrypt_core::storage::migrations::{LATEST, MIGRATIONS};
use zencrypt_core::storage::schema::{ColumnType, TABLES, Value};
use zencrypt_core::storage::{BackendInfo, Counts, Storage, StoreError, StoreResult, Tx};
use zeroize::Zeroizing;

use crate::error::Redactor;
use crate::tx::PgTx;

/// How long a write waits for another transaction's lock before it is
/// [`StoreError::Busy`].
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take (unless the URL sets `connect_timeout`).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` the server shows for zencrypt's connections (unless the URL
/// sets one).
pub const APPLICATION_NAME: &str = "zencrypt";

/// The table that marks a database as zencrypt's and holds its schema version.
const VERSION_TABLE: &str = "CREATE TABLE zencrypt_schema (\
     application TEXT COLLATE \"C\" PRIMARY KEY CHECK (application = 'zencrypt'), \
     version BIGINT NOT NULL)";

/// Where the server's Unix socket is looked for when the URL names no host (as libpq).
const SOCKET_DIRS: [&str; 3] = ["/run/postgresql", "/var/run/postgresql", "/tmp"];

/// Whether and how the connection is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// Encrypted, the server's certificate not verified (libpq's `require`).
    Require,
    /// Encrypted, the certificate chain and host name verified (libpq's `verify-full`).
    VerifyFull {
        /// CA certificates (PEM) to trust; `None` trusts the Mozilla roots.
        ca_file: Option<PathBuf>,
    },
}

/// Where and how to connect.
#[derive(Clone)]
pub struct PgOptions {
    /// A `postgres://` or `postgresql://` URL: host, port, user and database name, and
    /// the parameters `sslmode=disable|require|verify-full`, `sslrootcert=FILE` and
    /// `host=/unix/socket/dir` among the driver's others.
    pub url: String,
    /// The password; it takes precedence over one in the URL.
    pub password: Option<SecretString>,
    /// TLS; `None` takes the URL's `sslmode`, else no TLS to a loopback address or a Unix
    /// socket and [`TlsMode::Require`] to anything else.
    pub tls: Option<TlsMode>,
}

impl PgOptions {
    /// Options for `url`, with no separate password and TLS chosen from the URL.
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            password: None,
            tls: None,
        }
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &url::redact(&self.url))
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// A zencrypt database on a PostgreSQL server, over one connection.
pub struct PgStore {
    client: Client,
    location: String,
    tls: &'static str,
    redactor: Redactor,
    begin_write: String,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// What a database holds, as far as zencrypt is concerned.
enum Found {
    /// zencrypt's schema at this version.
    Version(i64),
    /// No table at all in the target schema.
    Empty,
    /// Tables, but not zencrypt's.
    Foreign,
}

/// A table as a database has it, at whatever schema version (see [`PgStore::upgrade`]).
#[derive(Debug, Clone)]
pub struct TableAsIs {
    /// Its name.
    pub name: &'static str,
    /// Its columns, in their order, with their types.
    pub columns: Vec<(String, ColumnType)>,
}

/// A dump of a database as it is: called with a visitor, it hands it every row of every
/// zencrypt table with the table's columns (see [`PgStore::upgrade`]).
pub type Dump<'a> =
    dyn FnMut(&mut dyn FnMut(&TableAsIs, Vec<Value>) -> StoreResult<()>) -> StoreResult<()> + 'a;

/// The begin of a read transaction.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

fn begin_write(lock_timeout: Duration) -> String {
    format!(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{}ms'; \
         SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE",
        lock_timeout.as_millis().max(1)
    )
}

impl PgStore {
    /// Connects. With `create`, an empty database (no tables at all in the target
    /// schema) gets the latest schema, in one transaction; of concurrent creators one
    /// installs it and the others find it. Without `create`, a database with no zencrypt
    /// schema is [`StoreError::Missing`]. A database holding other tables but no zencrypt
    /// schema is [`StoreError::NotZencrypt`], an older schema
    /// [`StoreError::NeedsMigration`], a newer one [`StoreError::TooNew`]: all left
    /// untouched.
    pub fn open(opts: &PgOptions, create: bool) -> StoreResult<PgStore> {
        let mut store = PgStore::connect(opts)?;
        // A creator that loses the race to another finds the schema on its second look.
        for _ in 0..3 {
            match store.probe()? {
                Found::Version(v) => return store.check_version(v).map(|()| store),
                Found::Foreign => return Err(store.not_zencrypt()),
                Found::Empty if !create => {
                    return Err(StoreError::Missing {
                        location: store.location.clone(),
                    });
                }
                Found::Empty => {
                    if store.install()? {
                        return Ok(store);
                    }
                }
            }
        }
        Err(StoreError::Busy {
            location: store.location.clone(),
        })
    }

    /// Applies the missing migrations in one transaction and returns the schema versions
    /// before and after ([`PgStore::upgrade`] without a backup). A newer schema is refused
    /// ([`StoreError::TooNew`]); a database without zencrypt's schema is
    /// [`StoreError::Missing`] (empty) or [`StoreError::NotZencrypt`].
    pub fn migrate(opts: &PgOptions) -> StoreResult<(i64, i64)> {
        let (mut store, _) = PgStore::open_any_version(opts)?;
        store.upgrade(&mut |_, _| Ok(()))
    }

    /// Connects to a zencrypt database of any schema version this binary knows and
    /// returns it with that version, changing nothing (for `db migrate`, which backs up an
    /// older schema with [`PgStore::upgrade`]). A database without
    /// zencrypt's schema is [`StoreError::Missing`] or [`StoreError::NotZencrypt`], a
    /// newer one [`StoreError::TooNew`].
    pub fn open_any_version(opts: &PgOptions) -> StoreResult<(PgStore, i64)> {
        let mut store = PgStore::connect(opts)?;
        match store.probe()? {
            Found::Version(v) if v > LATEST => Err(StoreError::TooNew {
                location: store.location.clone(),
                found: v,
                known: LATEST,
            }),
            Found::Version(v) => Ok((store, v)),
            Found::Foreign => Err(store.not_zencrypt()),
            Found::Empty => Err(StoreError::Missing {
                location: store.location.clone(),
            }),
        }
    }

    /// A value of the `meta` table (which every schema version has), read without the
    /// storage contract: for checks before `db migrate` upgrades an older schema.
    pub fn meta_as_is(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let rows = self
            .client
            .query_typed(
                "SELECT value FROM meta WHERE key = $1",
                &[(&key, Type::TEXT)],
            )
            .map_err(|e| self.err(&e))?;
        match rows.first() {
            Some(r) => r.try_get(0).map(Some).map_err(|e| self.err(&e)),
            None => Ok(None),
        }
    }

    /// Upgrades this database's schema in one transaction that first locks the version
    /// row and every zencrypt table against writers (readers go on), then hands `backup`
    /// the version found and a dump of the database exactly as it is (see [`Dump`]), then
    /// applies the missing migrations: the backup holds exactly the state that was
    /// upgraded, and a failed backup upgrades nothing. A database already at the latest
    /// version (another administrator was first) is left alone and `backup` is not
    /// called. Returns the versions before and after.
    pub fn upgrade(
        &mut self,
        backup: &mut dyn FnMut(i64, &mut Dump<'_>) -> StoreResult<()>,
    ) -> StoreResult<(i64, i64)> {
        let location = self.location.clone();
        let redactor = &self.redactor;
        let map = |e: postgres::Error| error::statement(&location, &e, redactor);
        let mut tx = begin_schema_change(&mut self.client).map_err(map)?;
        let rows = tx
            .query_typed(
                "SELECT application, version FROM zencrypt_schema FOR UPDATE",
                &[],
            )
            .map_err(map)?;
        let from = version_of(&rows).ok_or_else(|| StoreError::NotZencrypt {
            location: location.clone(),
        })?;
        if from > LATEST {
            return Err(StoreError::TooNew {
                location: location.clone(),
                found: from,
                known: LATEST,
            });
        }
        if from == LATEST {
            return Ok((from, from));
        }
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        let present: Vec<String> = tx
            .query_typed(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = ANY($1)",
                &[(&names, Type::TEXT_ARRAY)],
            )
            .map_err(map)?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<_, _>>()
            .map_err(map)?;
        if !present.is_empty() {
            tx.batch_execute(&format!("LOCK TABLE {} IN SHARE MODE", present.join(", ")))
                .map_err(map)?;
        }
        backup(from, &mut |visit| {
            dump_tables(&mut tx, &location, redactor, visit)
        })?;
        apply_migrations(&mut tx, from).map_err(map)?;
        tx.execute_typed(
            "UPDATE zencrypt_schema SET version = $1",
            &[(&LATEST, Type::INT8)],
        )
        .map_err(map)?;
        tx.commit().map_err(map)?;
        Ok((from, LATEST))
    }

    /// The server's version, as it reports it.
    pub fn server_version(&mut self) -> StoreResult<String> {
        let rows = self
            .client
            .query_typed("SELECT current_setting('server_version')", &[])
            .map_err(|e| self.err(&e))?;
        let row = rows.first().ok_or_else(|| StoreError::Other {
            location: self.location.clone(),
            message: "the server did not report its version".into(),
        })?;
        row.try_get(0).map_err(|e| self.err(&e))
    }

    /// The connection's encryption: `off`, `on (not verified)` or `on (verified)`.
    pub fn tls_state(&self) -> &'static str {
        self.tls
    }

    /// The URL without its password.
    pub fn redacted_url(&self) -> &str {
        &self.location
    }

    /// Sets how long writes wait for a lock before they are [`StoreError::Busy`]
    /// ([`LOCK_TIMEOUT`] unless set).
    pub fn set_lock_timeout(&mut self, timeout: Duration) {
        self.begin_write = begin_write(timeout);
    }

    fn err(&self, e: &postgres::Error) -> StoreError {
        error::statement(&self.location, e, &self.redactor)
    }

    fn not_zencrypt(&self) -> StoreError {
        StoreError::NotZencrypt {
            location: self.location.clone(),
        }
    }

    fn check_version(&self, found: i64) -> StoreResult<()> {
        let location = self.location.clone();
        match found {
            v if v == LATEST => Ok(()),
            v if v > LATEST => Err(StoreError::TooNew {
                location,
                found: v,
                known: LATEST,
            }),
            v => Err(StoreError::NeedsMigration {
                location,
                found: v,
                latest: LATEST,
            }),
        }
    }

    fn connect(opts: &PgOptions) -> StoreResult<PgStore> {
        let location = url::redact(&opts.url);
        let unopenable = |reason: String| StoreError::Unopenable {
            location: location.clone(),
            reason,
        };
        let parsed = url::parse(&opts.url).map_err(|r| unopenable(r.reason().into()))?;
        let mut config: Config = parsed.driver.parse().map_err(|e: postgres::Error| {
            let mut text = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                text.push_str(&format!(": {source}"));
            }
            unopenable(format!("the URL is not valid ({text})"))
        })?;
        let password: Option<Zeroizing<Vec<u8>>> = match &opts.password {
            Some(p) => Some(Zeroizing::new(p.expose_secret().as_bytes().to_vec())),
            None => parsed.password.clone().map(Zeroizing::new),
        };
        let redactor = Redactor::new(password.as_deref().map(Vec::as_slice));
        if let Some(p) = &password {
            config.password(p.as_slice());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            let port = config.get_ports().first().copied().unwrap_or(5432);
            config.host_path(default_socket_dir(port));
        }
        let local = is_local(&config);
        let unix_only = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)))
            && config.get_hostaddrs().is_empty();
        let mode = if unix_only {
            // PostgreSQL has no TLS over Unix sockets (libpq ignores sslmode there too).
            TlsMode::Disable
        } else {
            tls_mode(opts.tls.as_ref(), &parsed, local).map_err(&unopenable)?
        };
        let timeout = config
            .get_connect_timeout()
            .map_or(CONNECT_TIMEOUT.as_secs(), Duration::as_secs);
        let connected = match &mode {
            TlsMode::Disable => {
                config.ssl_mode(SslMode::Disable);
                config.connect(NoTls)
            }
            TlsMode::Require => {
                config.ssl_mode(SslMode::Require);
                config.connect(tls::unverified().map_err(&unopenable)?)
            }
            TlsMode::VerifyFull { ca_file } => {
                config.ssl_mode(SslMode::Require);
                config.connect(tls::verified(ca_file.as_deref()).map_err(&unopenable)?)
            }
        };
        let client = connected.map_err(|e| error::connect(&location, &e, &redactor, timeout))?;
        Ok(PgStore {
            client,
            tls: match mode {
                TlsMode::Disable => "off",
                TlsMode::Require => "on (not verified)",
                TlsMode::VerifyFull { .. } => "on (verified)",
            },
            location,
            redactor,
            begin_write: begin_write(LOCK_TIMEOUT),
        })
    }

    /// What the database holds: zencrypt's schema version, nothing, or other tables.
    fn probe(&mut self) -> StoreResult<Found> {
        match self
            .client
            .query_typed("SELECT application, version FROM zencrypt_schema", &[])
        {
            Ok(rows) => Ok(version_of(&rows).map_or(Found::Foreign, Found::Version)),
            Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                let rows = self
                    .client
                    .query_typed(
                        "SELECT count(*) FROM pg_catalog.pg_tables \
                         WHERE schemaname = current_schema()",
                        &[],
                    )
                    .map_err(|e| self.err(&e))?;
                let tables: i64 = match rows.first() {
                    Some(r) => r.try_get(0).map_err(|e| self.err(&e))?,
                    None => 0,
                };
                Ok(if tables == 0 {
                    Found::Empty
                } else {
                    Found::Foreign
                })
            }
            Err(e) => Err(self.err(&e)),
        }
    }

    /// Installs the latest schema in one transaction. False when another connection
    /// created the version table first (this one then finds the schema it installs).
    fn install(&mut self) -> StoreResult<bool> {
        let location = self.location.clone();
        let redactor = &self.redactor;
        let map = |e: postgres::Error| error::statement(&location, &e, redactor);
        let mut tx = begin_schema_change(&mut self.client).map_err(map)?;
        if let Err(e) = tx.batch_execute(VERSION_TABLE) {
            let lost = [
                SqlState::DUPLICATE_TABLE,
                SqlState::UNIQUE_VIOLATION,
                SqlState::T_R_SERIALIZATION_FAILURE,
            ];
            return match e.code() {
                Some(code) if lost.contains(code) => Ok(false),
                _ => Err(map(e)),
            };
        }
        apply_migrations(&mut tx, 0).map_err(map)?;
        tx.execute_typed(
            "INSERT INTO zencrypt_schema (application, version) VALUES ('zencrypt', $1)",
            &[(&LATEST, Type::INT8)],
        )
        .map_err(map)?;
        match tx.commit() {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Ok(false),
            Err(e) => Err(map(e)),
        }
    }

    fn begin(&mut self, sql: &str, rows: usize) -> StoreResult<Box<dyn Tx + '_>> {
        let tx = PgTx::begin(&mut self.client, &self.location, &self.redactor, sql, rows)?;
        Ok(Box::new(tx))
    }

    fn one_i64(&mut self, sql: &str) -> StoreResult<i64> {
        let rows = self
            .client
            .query_typed(sql, &[])
            .map_err(|e| self.err(&e))?;
        match rows.first() {
            Some(r) => r.try_get(0).map_err(|e| self.err(&e)),
            None => Ok(0),
        }
    }
}

/// Every row of zencrypt's tables in `tx`, with the columns each table has in this
/// database (at whatever schema version it is), in the order of [`TABLES`] and of each
/// table's key. Tables the schema does not have yet are skipped.
fn dump_tables(
    tx: &mut postgres::Transaction<'_>,
    location: &str,
    redactor: &Redactor,
    visit: &mut dyn FnMut(&TableAsIs, Vec<Value>) -> StoreResult<()>,
) -> StoreResult<()> {
    let map = |e: postgres::Error| error::statement(location, &e, redactor);
    for table in TABLES {
        let described = tx
            .query_typed(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 \
                 ORDER BY ordinal_position",
                &[(&table.name, Type::TEXT)],
            )
            .map_err(map)?;
        if described.is_empty() {
            continue;
        }
        let mut columns = Vec::with_capacity(described.len());
        for row in &described {
            let name: String = row.try_get(0).map_err(map)?;
            let kind = match row.try_get::<_, String>(1).map_err(map)?.as_str() {
                "bigint" => ColumnType::Int,
                "text" => ColumnType::Text,
                "bytea" => ColumnType::Blob,
                other => {
                    return Err(StoreError::Other {
                        location: location.to_string(),
                        message: format!(
                            "{}.{name} has the type {other}, which no zencrypt schema uses",
                            table.name
                        ),
                    });
                }
            };
            columns.push((name, kind));
        }
        let as_is = TableAsIs {
            name: table.name,
            columns,
        };
        let order: Vec<String> = table
            .key
            .iter()
            .map(|k| match as_is.columns.iter().find(|c| c.0 == *k) {
                Some((_, ColumnType::Text)) => format!("{k} COLLATE \"C\""),
                _ => (*k).to_string(),
            })
            .collect();
        let list: Vec<&str> = as_is.columns.iter().map(|c| c.0.as_str()).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            list.join(", "),
            table.name,
            order.join(", ")
        );
        for row in tx.query_typed(&sql, &[]).map_err(map)? {
            let mut values = Vec::with_capacity(as_is.columns.len());
            for (i, (_, kind)) in as_is.columns.iter().enumerate() {
                let v = match kind {
                    ColumnType::Int => row.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
                    ColumnType::Text => row
                        .try_get::<_, Option<String>>(i)
                        .map(|v| v.map(Value::Text)),
                    ColumnType::Blob => row
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map(|v| v.map(Value::Blob)),
                };
                values.push(v.map_err(map)?.unwrap_or(Value::Null));
            }
            visit(&as_is, values)?;
        }
    }
    Ok(())
}

/// A transaction that changes the schema: it waits at most [`LOCK_TIMEOUT`] for a lock.
fn begin_schema_change(client: &mut Client) -> Result<postgres::Transaction<'_>, postgres::Error> {
    let mut tx = client.transaction()?;
    tx.batch_execute(&format!(
        "SET LOCAL lock_timeout = '{}ms'",
        LOCK_TIMEOUT.as_millis()
    ))?;
    Ok(tx)
}

/// The version in the rows of `zencrypt_schema`, if they are one row of zencrypt's.
fn version_of(rows: &[postgres::Row]) -> Option<i64> {
    match rows {
        [row] if row.try_get::<_, &str>(0).ok() == Some("zencrypt") => row.try_get(1).ok(),
        _ => None,
    }
}

/// Applies the PostgreSQL step of every migration after `from`; the step to version 1
/// also writes this database's random id.
fn apply_migrations(tx: &mut postgres::Transaction<'_>, from: i64) -> Result<(), postgres::Error> {
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(m.postgres)?;
        if m.version == 1 {
            let id = crypto::random_bytes::<16>();
            tx.execute_typed(
                "INSERT INTO meta (key, value) VALUES ('database_id', $1)",
                &[(&id.as_slice(), Type::BYTEA)],
            )?;
        }
    }
    Ok(())
}

/// The first of libpq's usual socket directories that holds the server's socket.
fn default_socket_dir(port: u16) -> PathBuf {
    let socket = format!(".s.PGSQL.{port}");
    SOCKET_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join(&socket).exists())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// Whether every host is this machine: a Unix socket, `localhost` or a loopback address.
fn is_local(config: &Config) -> bool {
    let hosts = config.get_hosts().iter().all(|h| match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    });
    hosts && config.get_hostaddrs().iter().all(IpAddr::is_loopback)
}

/// The TLS mode: the one given, else the URL's `sslmode` (with `sslrootcert`), else
/// none to this machine and [`TlsMode::Require`] to any other.
fn tls_mode(given: Option<&TlsMode>, url: &url::Url, local: bool) -> Result<TlsMode, String> {
    let url_ca = url
        .sslrootcert
        .clone()
        .filter(|p| p.as_path() != Path::new("system"));
    match (given, url.sslmode.as_deref()) {
        (Some(TlsMode::VerifyFull { ca_file: None }), _) => {
            Ok(TlsMode::VerifyFull { ca_file: url_ca })
        }
        (Some(mode), _) => Ok(mode.clone()),
        (None, Some("disable")) => Ok(TlsMode::Disable),
        (None, Some("require")) => Ok(TlsMode::Require),
        (None, Some("verify-full")) => Ok(TlsMode::VerifyFull { ca_file: url_ca }),
        (None, Some(other)) => Err(format!(
            "sslmode={other} is not supported; use disable, require or verify-full"
        )),
        (None, None) if local => Ok(TlsMode::Disable),
        (None, None) => Ok(TlsMode::Require),
    }
}

impl Storage for PgStore {
    fn info(&mut self) -> StoreResult<BackendInfo> {
        Ok(BackendInfo {
            backend: "postgresql",
            version: self.server_version()?,
            tls: Some(self.tls_state().to_string()),
        })
    }

    fn read(&mut self) -> StoreResult<Box<dyn Tx + '_>> {
        self.begin(BEGIN_READ, 0)
    }

    fn write(&mut self) -> StoreResult<Box<dyn Tx + '_>> {
        let begin = self.begin_write.clone();
        self.begin(&begin, 1)
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn schema_version(&mut self) -> StoreResult<i64> {
        self.one_i64("SELECT version FROM zencrypt_schema")
    }

    fn counts(&mut self) -> StoreResult<Counts> {
        let rows = self
            .client
            .query_typed(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM keys), \
                 (SELECT count(*) FROM records), (SELECT count(*) FROM audit_log)",
                &[],
            )
            .map_err(|e| self.err(&e))?;
        let row = rows.first().ok_or_else(|| StoreError::Other {
            location: self.location.clone(),
            message: "the server returned no counts".into(),
        })?;
        let get = |i| row.try_get::<_, i64>(i).map_err(|e| self.err(&e));
        Ok(Counts {
            users: get(0)?,
            keys: get(1)?,
            records: get(2)?,
            audit_entries: get(3)?,
        })
    }

    /// The catalogue against [`TABLES`] (every table and column there, of the right type
    /// and nullability, nothing else), the schema version, the database id, and the audit
    /// head row against the last audit entry.
    fn integrity_check(&mut self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        let rows = self
            .client
            .query_typed(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
                 FROM information_schema.columns WHERE table_schema = current_schema() \
                 ORDER BY table_name, ordinal_position",
                &[],
            )
            .map_err(|e| self.err(&e))?;
        let mut found: Vec<(String, String, String, bool)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let get = |i| r.try_get::<_, String>(i).map_err(|e| self.err(&e));
            found.push((get(0)?, get(1)?, get(2)?, get(3)? == "YES"));
        }
        for table in TABLES {
            let columns: Vec<_> = found.iter().filter(|c| c.0 == table.name).collect();
            if columns.is_empty() {
                problems.push(format!("table {} is missing", table.name));
                continue;
            }
            for c in table.columns {
                let expected = match c.kind {
                    ColumnType::Int => "bigint",
                    ColumnType::Text => "text",
                    ColumnType::Blob => "bytea",
                };
                match columns.iter().find(|f| f.1 == c.name) {
                    None => problems.push(format!("column {}.{} is missing", table.name, c.name)),
                    Some(f) if f.2 != expected => problems.push(format!(
                        "column {}.{} is {}, not {expected}",
                        table.name, c.name, f.2
                    )),
                    Some(f) if f.3 != c.nullable => problems.push(format!(
                        "column {}.{} {} NULL",
                        table.name,
                        c.name,
                        if f.3 { "allows" } else { "does not allow" }
                    )),
                    Some(_) => {}
                }
            }
            for f in columns {
                if table.position(&f.1).is_none() {
                    problems.push(format!("column {}.{} is not zencrypt's", table.name, f.1));
                }
            }
        }
        if !problems.is_empty() {
            return Ok(problems);
        }
        let rows = self
            .client
            .query_typed(
                "SELECT (SELECT version FROM zencrypt_schema), \
                 (SELECT octet_length(value)::bigint FROM meta WHERE key = 'database_id'), \
                 (SELECT count(*) FROM audit_head), \
                 (SELECT seq FROM audit_head WHERE id = 1), \
                 (SELECT coalesce(max(seq), 0) FROM audit_log), \
                 (SELECT h.mac = coalesce((SELECT mac FROM audit_log ORDER BY seq DESC LIMIT 1), \
                     ''::bytea) FROM audit_head h WHERE h.id = 1)",
                &[],
            )
            .map_err(|e| self.err(&e))?;
        let Some(r) = rows.first() else {
            return Ok(vec!["the checks returned nothing".into()]);
        };
        let get = |i| r.try_get::<_, Option<i64>>(i).map_err(|e| self.err(&e));
        let (version, id_len, heads, head_seq, last_seq) =
            (get(0)?, get(1)?, get(2)?, get(3)?, get(4)?);
        let head_mac_ok: Option<bool> = r.try_get(5).map_err(|e| self.err(&e))?;
        if version != Some(LATEST) {
            problems.push(format!(
                "zencrypt_schema says version {}, expected {LATEST}",
                version.map_or("(none)".to_string(), |v| v.to_string())
            ));
        }
        if id_len != Some(16) {
            problems.push("meta has no 16-byte database_id".into());
        }
        if heads != Some(1) || head_seq.is_none() {
            problems.push("audit_head does not hold exactly its one row".into());
        } else if head_seq != last_seq || head_mac_ok != Some(true) {
            problems.push("audit_head does not match the last audit entry".into());
        }
        Ok(problems)
    }

    fn close(self: Box<Self>) -> StoreResult<()> {
        let location = self.location.clone();
        let redactor = Redactor::default();
        self.client
            .close()
            .map_err(|e| error::statement(&location, &e, &redactor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::parse(s).expect("a URL")
    }

    #[test]
    fn tls_follows_the_options_then_the_url_then_the_host() {
        let u = url("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem");
        assert_eq!(
            tls_mode(None, &u, false),
            Ok(TlsMode::VerifyFull {
                ca_file: Some(PathBuf::from("/ca.pem"))
            })
        );
        assert_eq!(
            tls_mode(Some(&TlsMode::Disable), &u, false),
            Ok(TlsMode::Disable)
        );
        assert_eq!(
            tls_mode(Some(&TlsMode::VerifyFull { ca_file: None }), &u, false),
            Ok(TlsMode::VerifyFull {
                ca_file: Some(PathBuf::from("/ca.pem"))
            })
        );
        let plain = url("postgres://h/db");
        assert_eq!(tls_mode(None, &plain, true), Ok(TlsMode::Disable));
        assert_eq!(tls_mode(None, &plain, false), Ok(TlsMode::Require));
        assert_eq!(
            tls_mode(None, &url("postgres://h/db?sslmode=require"), true),
            Ok(TlsMode::Require)
        );
        assert_eq!(
            tls_mode(
                None,
                &url("postgres://h/db?sslmode=verify-full&sslrootcert=system"),
                true
            ),
            Ok(TlsMode::VerifyFull { ca_file: None })
        );
        let err = tls_mode(None, &url("postgres://h/db?sslmode=prefer"), false).err();
        assert_eq!(
            err.as_deref(),
            Some("sslmode=prefer is not supported; use disable, require or verify-full")
        );
    }

    #[test]
    fn loopback_and_sockets_are_local() {
        let local = |s: &str| is_local(&s.parse::<Config>().expect("a config"));
        assert!(local("postgres://127.0.0.1/db"));
        assert!(local("postgres://localhost:5433/db"));
        assert!(local("postgres://[::1]/db"));
        assert!(local("postgres:///db?host=/run/postgresql"));
        assert!(!local("postgres://db.example/db"));
        assert!(!local("postgres://127.0.0.1,db.example/db"));
        assert!(!local("postgres://localhost/db?hostaddr=10.0.0.1"));
    }

    #[test]
    fn options_show_no_password() {
        let mut opts = PgOptions::new("postgres://u:topsecret@h/db");
        opts.password = Some(SecretString::from("othersecret".to_string()));
        let shown = format!("{opts:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("othersecret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://u@h/db"), "{shown}");
    }

    #[test]
    fn a_url_that_is_not_ours_is_unopenable_without_echoing_it() {
        let err = PgStore::open(&PgOptions::new("host=h password=topsecret"), false)
            .expect_err("refused");
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, StoreError::Unopenable { .. }), "{shown}");
        assert!(!shown.contains("topsecret"), "{shown}");

        let err = PgStore::open(&PgOptions::new("postgres://u:top@secret@h/db"), false)
            .expect_err("refused");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("%40"), "{shown}");
        assert!(
            !shown.contains("top") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn writes_begin_by_locking_the_audit_head() {
        assert_eq!(
            begin_write(Duration::from_millis(250)),
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '250ms'; \
             SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"
        );
    }
}
