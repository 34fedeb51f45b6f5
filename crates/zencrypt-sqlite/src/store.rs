//! The store: connection set-up, migrations and the transactions of the storage contract.

use std::cell::Cell;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
    params,
};

use rusqlite::types::{Value as SqlValue, ValueRef};
use zencrypt_core::crypto::kdf::KdfParams;
use zencrypt_core::fsutil;
use zencrypt_core::model::{
    AuditEntry, AuditFilter, Credentials, Grantee, GroupMember, GroupRow, IdentityRow, KeyEvent,
    KeyRecord, KeyShare, KeyStatus, KeyVersionRecord, Outcome, RecordFilter, RecordOrder,
    RecordRow, RecordShare, RecordTransfer, RecordWrite, RecoveryWrap, Role, RowId, ServiceGrant,
    ServiceRecordKey, SessionRecord, ShareFilter, StoredRow, TransferFilter, UsageEvent, UserKeys,
    UserRecord, UserStatus,
};
use zencrypt_core::storage::migrations::{LATEST, MIGRATIONS};
use zencrypt_core::storage::schema::{TABLES, Table, Value};
use zencrypt_core::storage::{
    BackendInfo, Counts, NewUser, Storage, StoreError, StoreResult, Tx, UsageGroup,
};

/// `PRAGMA application_id` of a zencrypt database ("ZENC").
const APPLICATION_ID: i64 = 0x5a45_4e43;
/// How long to wait for another process's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A zencrypt database in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    location: String,
    /// Set when a committed or pending write overwrote secret material (a session key
    /// copy, key material, a wrapped key, a record); see the `Drop` impl.
    scrub: Cell<bool>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, checks that it is a zencrypt
    /// database this binary understands, and brings its schema up to date. A file that is
    /// not a zencrypt database, or is newer than this binary, is refused untouched.
    pub fn open(path: &Path) -> StoreResult<Self> {
        SqliteStore::open_with(path, true)
    }

    /// As [`SqliteStore::open`]; with `create` false, a missing file is refused with
    /// [`StoreError::Missing`] and nothing (not even its directory) is created.
    pub fn open_with(path: &Path, create: bool) -> StoreResult<Self> {
        let location = path.display().to_string();
        let unopenable = |reason: String| StoreError::Unopenable {
            location: location.clone(),
            reason,
        };
        if path.is_dir() {
            return Err(unopenable(
                "it is a directory; give the path of a database file".into(),
            ));
        }
        if !create && !path.exists() {
            return Err(StoreError::Missing { location });
        }
        if let Some(parent) = path.parent() {
            fsutil::create_private_dir(parent)
                .map_err(|e| unopenable(format!("cannot create {}: {e}", parent.display())))?;
        }
        fsutil::touch_private_file(path).map_err(|e| unopenable(e.to_string()))?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unopenable(e.to_string()))?;
        let mut store = SqliteStore {
            conn,
            location,
            scrub: Cell::new(false),
        };
        store
            .conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store.err(e))?;
        let version = store.check_identity()?;
        store.configure()?;
        if version < LATEST {
            store.migrate()?;
        }
        Ok(store)
    }

    /// Writes a new database file at `path` (which must not exist yet) with the schema of
    /// `version` and the rows `fill` hands to the loader it is given (table, column names,
    /// values), all in one transaction: a faithful copy of a database of that version,
    /// such as the backup `db migrate` writes of an older PostgreSQL schema. Opening the
    /// file later upgrades it as any older file is. On failure no file is left.
    #[allow(clippy::type_complexity)]
    pub fn write_at_version(
        path: &Path,
        version: i64,
        fill: &mut dyn FnMut(
            &mut dyn FnMut(&str, &[&str], &[Value]) -> StoreResult<()>,
        ) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let location = path.display().to_string();
        if !(1..=LATEST).contains(&version) {
            return Err(StoreError::TooNew {
                location,
                found: version,
                known: LATEST,
            });
        }
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        if let Err(e) = created {
            return Err(StoreError::Unopenable {
                location,
                reason: e.to_string(),
            });
        }
        let written = (|| -> StoreResult<()> {
            let mut conn = Connection::open(path).map_err(|e| map_err(&location, e))?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| map_err(&location, e))?;
            for m in MIGRATIONS.iter().take(version as usize) {
                tx.execute_batch(m.sqlite)
                    .map_err(|e| map_err(&location, e))?;
            }
            let mut load = |table: &str, columns: &[&str], row: &[Value]| -> StoreResult<()> {
                let placeholders: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
                // Rows replace only those the migrations made (meta, the audit head); any
                // other conflict is an error, never a row silently dropped.
                let verb = if TABLES.iter().any(|t| t.name == table && t.replace) {
                    "INSERT OR REPLACE"
                } else {
                    "INSERT"
                };
                let sql = format!(
                    "{verb} INTO {table} ({}) VALUES ({})",
                    columns.join(", "),
                    placeholders.join(", ")
                );
                let values = row.iter().map(|v| match v {
                    Value::Null => SqlValue::Null,
                    Value::Int(n) => SqlValue::Integer(*n),
                    Value::Text(t) => SqlValue::Text(t.clone()),
                    Value::Blob(b) => SqlValue::Blob(b.clone()),
                });
                tx.prepare_cached(&sql)
                    .and_then(|mut st| st.execute(rusqlite::params_from_iter(values)))
                    .map(drop)
                    .map_err(|e| map_err(&location, e))
            };
            fill(&mut load)?;
            tx.pragma_update(None, "user_version", version)
                .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
                .and_then(|()| tx.commit())
                .map_err(|e| map_err(&location, e))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(path);
        }
        written
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        map_err(&self.location, e)
    }

    /// Refuses files that are not zencrypt databases or are newer than this binary,
    /// reading only (so the file stays untouched).
    fn check_identity(&self) -> StoreResult<i64> {
        let read = || -> rusqlite::Result<(i64, i64, i64)> {
            let app: i64 = self
                .conn
                .pragma_query_value(None, "application_id", |r| r.get(0))?;
            let version: i64 = self
                .conn
                .pragma_query_value(None, "user_version", |r| r.get(0))?;
            let objects: i64 =
                self.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            Ok((app, version, objects))
        };
        let (app, version, objects) = read().map_err(|e| self.err(e))?;
        let fresh = app == 0 && version == 0 && objects == 0;
        if !fresh && app != APPLICATION_ID {
            return Err(StoreError::NotZencrypt {
                location: self.location.clone(),
            });
        }
        if version > LATEST {
            return Err(StoreError::TooNew {
                location: self.location.clone(),
                found: version,
                known: LATEST,
            });
        }
        Ok(version)
    }

    fn configure(&self) -> StoreResult<()> {
        let run = || -> rusqlite::Result<()> {
            let _mode: String =
                self.conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            self.conn.pragma_update(None, "synchronous", "FULL")?;
            self.conn.pragma_update(None, "foreign_keys", "ON")?;
            // Destroyed keys and wiped records leave no copy in free pages.
            self.conn.pragma_update(None, "secure_delete", "ON")?;
            // A page cache of up to 16 MiB (SQLite's default is 2 MiB) holds a bulk
            // import's index pages, which otherwise spill to the log and are read back:
            // an import of 100k records spends half the system time and 13% less wall time.
            self.conn.pragma_update(None, "cache_size", -16 * 1024)?;
            // The write-ahead log stays between runs instead of being checkpointed and
            // deleted by every short-lived process, which cost four of a one-shot
            // command's five fsyncs. `Drop` checkpoints it once it has grown.
            self.conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )?;
            Ok(())
        };
        run().map_err(|e| self.err(e))
    }

    /// Applies the missing migrations in one IMMEDIATE transaction, so concurrent first
    /// opens of a new file serialize instead of colliding.
    fn migrate(&mut self) -> StoreResult<()> {
        let location = self.location.clone();
        let run = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if current >= LATEST {
                return Ok(());
            }
            for m in MIGRATIONS.iter().skip(current as usize) {
                tx.execute_batch(m.sqlite)?;
                tx.pragma_update(None, "user_version", m.version)?;
            }
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.commit()
        };
        run(&mut self.conn).map_err(|e| map_err(&location, e))
    }

    fn begin(&mut self, behavior: TransactionBehavior) -> StoreResult<Box<dyn Tx + '_>> {
        let location = self.location.as_str();
        let tx =
            Transaction::new_unchecked(&self.conn, behavior).map_err(|e| map_err(location, e))?;
        Ok(Box::new(SqliteTx {
            tx,
            location,
            scrub: &self.scrub,
        }))
    }
}

/// The write-ahead log size past which closing the database checkpoints and empties it.
const WAL_CHECKPOINT_BYTES: u64 = 1024 * 1024;

impl Drop for SqliteStore {
    /// Checkpoints the write-ahead log and truncates it to zero when it has grown past
    /// [`WAL_CHECKPOINT_BYTES`] (so it stays small and quick to search), and whenever
    /// secret material was overwritten: the checkpoint writes the new pages over the old
    /// ones in the main file (`secure_delete` zeroes freed space there), so the old copies
    /// do not linger in the log. Best effort: a reader holding an old snapshot for long
    /// makes it give up, and a later checkpoint does the work.
    fn drop(&mut self) {
        let wal = std::fs::metadata(format!("{}-wal", self.location)).map_or(0, |m| m.len());
        if self.scrub.get() || wal > WAL_CHECKPOINT_BYTES {
            let _ = self.conn.busy_timeout(Duration::from_millis(500));
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl Storage for SqliteStore {
    fn read(&mut self) -> StoreResult<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Deferred)
    }

    fn write(&mut self) -> StoreResult<Box<dyn Tx + '_>> {
        self.begin(TransactionBehavior::Immediate)
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn counts(&mut self) -> StoreResult<Counts> {
        let one = |sql: &str| -> StoreResult<i64> {
            self.conn
                .query_row(sql, [], |r| r.get(0))
                .map_err(|e| map_err(&self.location, e))
        };
        Ok(Counts {
            users: one("SELECT count(*) FROM users")?,
            keys: one("SELECT count(*) FROM keys")?,
            records: one("SELECT count(*) FROM records")?,
            audit_entries: one("SELECT count(*) FROM audit_log")?,
        })
    }

    fn integrity_check(&mut self) -> StoreResult<Vec<String>> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| map_err(&self.location, e))?;
        let rows: Vec<String> = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| map_err(&self.location, e))?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    fn info(&mut self) -> StoreResult<BackendInfo> {
        Ok(BackendInfo {
            backend: "sqlite",
            version: rusqlite::version().to_string(),
            tls: None,
        })
    }

    fn close(self: Box<Self>) -> StoreResult<()> {
        let run = || -> rusqlite::Result<()> {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let _mode: String =
                self.conn
                    .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))?;
            Ok(())
        };
        run().map_err(|e| map_err(&self.location, e))
    }

    fn schema_version(&mut self) -> StoreResult<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| map_err(&self.location, e))
    }
}

/// Maps a SQLite error to a storage error that names the file and says what to do.
fn map_err(location: &str, e: rusqlite::Error) -> StoreError {
    let location = location.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy { location },
        Some(ErrorCode::NotADatabase) => StoreError::NotZencrypt { location },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { location },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { location },
        Some(ErrorCode::DiskFull) => StoreError::Full { location },
        Some(ErrorCode::SystemIoFailure) => StoreError::Io { location },
        Some(ErrorCode::CannotOpen) => StoreError::Unopenable {
            location,
            reason: "the file or its directory cannot be opened; check the path and permissions"
                .into(),
        },
        Some(ErrorCode::ConstraintViolation) => constraint(&e),
        _ => StoreError::Other {
            location,
            message: e.to_string(),
        },
    }
}

/// Tells the kinds of constraint violation apart by SQLite's extended result code.
fn constraint(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    let (code, message) = match e {
        rusqlite::Error::SqliteFailure(f, m) => (f.extended_code, m.clone().unwrap_or_default()),
        _ => (0, String::new()),
    };
    // SQLite names the rule in its message, e.g. "UNIQUE constraint failed: users.username".
    let rule = message
        .split_once(": ")
        .map(|(_, r)| r.to_string())
        .unwrap_or_else(|| "a rule".into());
    match code {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            StoreError::Duplicate {
                what: "a row with the same unique value".into(),
            }
        }
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::Reference { what: rule },
        _ => StoreError::Invalid { what: rule },
    }
}

struct SqliteTx<'a> {
    tx: Transaction<'a>,
    location: &'a str,
    scrub: &'a Cell<bool>,
}

const USER_COLUMNS: &str = "id, username, password_hash, role, status, kek_salt, kek_m_kib, \
     kek_t, kek_p, wrapped_user_key, created_at, last_login_at, must_change_password, rows_bound, \
     row_mac, recovery_salt, recovery_wrapped_key, recovery_created_at, owner_id, \
     public_key, signing_key, wrapped_keypair, key_pins";

const GRANT_COLUMNS: &str = "id, service_id, owner_id, pattern, created_at, row_mac";

fn grant_from_row(r: &Row<'_>) -> rusqlite::Result<ServiceGrant> {
    Ok(ServiceGrant {
        id: r.get(0)?,
        service_id: r.get(1)?,
        owner_id: r.get(2)?,
        pattern: r.get(3)?,
        created_at: r.get(4)?,
        mac: r.get(5)?,
    })
}

const SHARE_COLUMNS: &str = "s.id, s.record_id, r.token, s.owner_id, s.recipient_id, s.version, \
     s.wrapped_dek, s.signature, s.grant_signature, s.created_at, s.group_id, s.epoch, s.can_write";

/// A share's grantee from its columns at `at` (user id, group id, epoch).
fn grantee_at(r: &Row<'_>, at: [usize; 3]) -> rusqlite::Result<Grantee> {
    Grantee::from_columns(r.get(at[0])?, r.get(at[1])?, r.get(at[2])?).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            at[0],
            rusqlite::types::Type::Null,
            "a share is for one user or one group".into(),
        )
    })
}

fn share_from_row(r: &Row<'_>) -> rusqlite::Result<RecordShare> {
    Ok(RecordShare {
        id: r.get(0)?,
        record_id: r.get(1)?,
        record_token: r.get(2)?,
        owner_id: r.get(3)?,
        to: grantee_at(r, [4, 10, 11])?,
        version: r.get(5)?,
        can_write: r.get::<_, i64>(12)? != 0,
        wrapped_dek: r.get(6)?,
        signature: r.get(7)?,
        grant_signature: r.get(8)?,
        created_at: r.get(9)?,
    })
}

const KEY_SHARE_COLUMNS: &str = "id, key_id, key_name, owner_id, recipient_id, version, \
     wrapped_material, signature, grant_signature, created_at, group_id, epoch, can_write";

const GROUP_COLUMNS: &str = "id, name, manager_id, recipient, epoch, history, members_digest, signature, created_at, \
     handovers";

fn group_from_row(r: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        name: r.get(1)?,
        manager_id: r.get(2)?,
        recipient: r.get(3)?,
        epoch: r.get(4)?,
        history: r.get(5)?,
        members_digest: r.get(6)?,
        signature: r.get(7)?,
        created_at: r.get(8)?,
        handovers: r.get(9)?,
    })
}

const MEMBER_COLUMNS: &str = "id, group_id, user_id, epoch, wrapped_identity, signature, added_at";

const TRANSFER_COLUMNS: &str = "t.id, t.record_id, r.token, t.owner_id, t.giver_id, \
     t.recipient_id, t.version, t.wrapped_dek, t.signature, t.created_at, t.taken_at";

fn transfer_from_row(r: &Row<'_>) -> rusqlite::Result<RecordTransfer> {
    Ok(RecordTransfer {
        id: r.get(0)?,
        record_id: r.get(1)?,
        record_token: r.get(2)?,
        owner_id: r.get(3)?,
        giver_id: r.get(4)?,
        recipient_id: r.get(5)?,
        version: r.get(6)?,
        wrapped_dek: r.get(7)?,
        signature: r.get(8)?,
        created_at: r.get(9)?,
        taken_at: r.get(10)?,
    })
}

const WRITE_COLUMNS: &str = "w.id, w.record_id, r.token, w.owner_id, w.writer_id, \
     w.base_version, w.ciphertext, w.wrapped_dek, w.signature, w.created_at";

fn write_from_row(r: &Row<'_>) -> rusqlite::Result<RecordWrite> {
    Ok(RecordWrite {
        id: r.get(0)?,
        record_id: r.get(1)?,
        record_token: r.get(2)?,
        owner_id: r.get(3)?,
        writer_id: r.get(4)?,
        base_version: r.get(5)?,
        ciphertext: r.get(6)?,
        wrapped_dek: r.get(7)?,
        signature: r.get(8)?,
        created_at: r.get(9)?,
    })
}

fn member_from_row(r: &Row<'_>) -> rusqlite::Result<GroupMember> {
    Ok(GroupMember {
        id: r.get(0)?,
        group_id: r.get(1)?,
        user_id: r.get(2)?,
        epoch: r.get(3)?,
        wrapped_identity: r.get(4)?,
        signature: r.get(5)?,
        added_at: r.get(6)?,
    })
}

fn key_share_from_row(r: &Row<'_>) -> rusqlite::Result<KeyShare> {
    Ok(KeyShare {
        id: r.get(0)?,
        key_id: r.get(1)?,
        key_name: r.get(2)?,
        owner_id: r.get(3)?,
        to: grantee_at(r, [4, 10, 11])?,
        version: r.get(5)?,
        can_write: r.get::<_, i64>(12)? != 0,
        wrapped_material: r.get(6)?,
        signature: r.get(7)?,
        grant_signature: r.get(8)?,
        created_at: r.get(9)?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor_id, actor, action, target, outcome, detail, prev_mac, mac, state";

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, expires_at, revoked_at, wrapped_user_key, row_mac";

const KEY_VERSION_COLUMNS: &str =
    "key_id, version, wrapped_material, created_at, encryptions, bytes, row_mac";

const IDENTITY_COLUMNS: &str = "id, owner_id, salt, kdf_m_kib, kdf_t, kdf_p, \
     wrapped_identity_key, created_at, kek_scheme, row_mac";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(3)?;
    let status: String = r.get(4)?;
    let bad = |col: usize, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("unexpected value '{v}'").into(),
        )
    };
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        role: Role::from_stored(&role, r.get::<_, Option<i64>>(18)?.is_some())
            .ok_or_else(|| bad(3, &role))?,
        status: UserStatus::parse(&status).ok_or_else(|| bad(4, &status))?,
        credentials: Credentials {
            password_hash: r.get(2)?,
            kek_salt: r.get(5)?,
            kek_params: KdfParams {
                m_kib: r.get(6)?,
                t: r.get(7)?,
                p: r.get(8)?,
            },
            wrapped_user_key: r.get(9)?,
        },
        created_at: r.get(10)?,
        last_login_at: r.get(11)?,
        must_change_password: r.get::<_, i64>(12)? != 0,
        rows_bound: r.get::<_, i64>(13)? != 0,
        mac: r.get(14)?,
        recovery: match (r.get(15)?, r.get(16)?, r.get(17)?) {
            (Some(salt), Some(wrapped_user_key), Some(created_at)) => Some(RecoveryWrap {
                salt,
                wrapped_user_key,
                created_at,
            }),
            (None, None, None) => None,
            _ => return Err(bad(15, "a partial recovery key")),
        },
        owner_id: r.get(18)?,
        keys: UserKeys::from_columns(r.get(19)?, r.get(20)?, r.get(21)?)
            .map_err(|why| bad(19, why))?,
        pins: r.get(22)?,
    })
}

const KEY_COLUMNS: &str = "id, owner_id, name, status, exportable, rotation_period, \
     expires_at, min_decrypt_version, latest_version, created_at, row_mac, share_digest";

fn key_from_row(r: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let status: String = r.get(3)?;
    Ok(KeyRecord {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        name: r.get(2)?,
        status: KeyStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unexpected key status '{status}'").into(),
            )
        })?,
        exportable: r.get::<_, i64>(4)? != 0,
        rotation_period: r.get(5)?,
        expires_at: r.get(6)?,
        min_decrypt_version: r.get(7)?,
        latest_version: r.get(8)?,
        created_at: r.get(9)?,
        mac: r.get(10)?,
        share_digest: r.get(11)?,
    })
}

fn key_version_from_row(r: &Row<'_>) -> rusqlite::Result<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        key_id: r.get(0)?,
        version: r.get(1)?,
        wrapped_material: r.get(2)?,
        created_at: r.get(3)?,
        encryptions: r.get(4)?,
        bytes: r.get(5)?,
        mac: r.get(6)?,
    })
}

const RECORD_COLUMNS: &str = "id, token, owner_id, name, key_id, key_version, identity_id, \
     wrapped_dek, ciphertext, created_at, updated_at, expires_at, deleted_at, version, row_mac, \
     value_hash, share_digest";

/// The record columns with an empty ciphertext (listing, rewrapping, verifying).
const RECORD_META_COLUMNS: &str = "id, token, owner_id, name, key_id, key_version, \
     identity_id, wrapped_dek, x'', created_at, updated_at, expires_at, deleted_at, version, \
     row_mac, value_hash, share_digest";

/// An earlier version as a record row (see `Tx::record_versions`): the record's token,
/// owner, name and times, the version's own key, data key, ciphertext and MAC.
const VERSION_COLUMNS: &str = "v.record_id, r.token, r.owner_id, r.name, v.key_id, \
     v.key_version, v.identity_id, v.wrapped_dek, v.ciphertext, r.created_at, v.written_at, \
     r.expires_at, r.deleted_at, v.version, v.row_mac, v.value_hash, NULL";

/// [`VERSION_COLUMNS`] with an empty ciphertext.
const VERSION_COLUMNS_NO_VALUE: &str = "v.record_id, r.token, r.owner_id, r.name, v.key_id, \
     v.key_version, v.identity_id, v.wrapped_dek, x'', r.created_at, v.written_at, \
     r.expires_at, r.deleted_at, v.version, v.row_mac, v.value_hash, NULL";

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        token: r.get(1)?,
        owner_id: r.get(2)?,
        name: r.get(3)?,
        key_id: r.get(4)?,
        key_version: r.get(5)?,
        identity_id: r.get(6)?,
        wrapped_dek: r.get(7)?,
        ciphertext: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        expires_at: r.get(11)?,
        deleted_at: r.get(12)?,
        version: r.get(13)?,
        mac: r.get(14)?,
        value_hash: r.get(15)?,
        share_digest: r.get(16)?,
    })
}

fn identity_from_row(r: &Row<'_>) -> rusqlite::Result<IdentityRow> {
    Ok(IdentityRow {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        salt: r.get(2)?,
        kdf: KdfParams {
            m_kib: r.get(3)?,
            t: r.get(4)?,
            p: r.get(5)?,
        },
        wrapped_identity_key: r.get(6)?,
        created_at: r.get(7)?,
        kek_scheme: r.get(8)?,
        mac: r.get(9)?,
    })
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        revoked_at: r.get(4)?,
        wrapped_user_key: r.get(5)?,
        mac: r.get(6)?,
    })
}

fn audit_from_row(r: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let outcome: String = r.get(6)?;
    // A value outside ok/denied/failed can only come from editing the file: read the row
    // as failed with no MAC, so that verification names it instead of erroring out.
    let (outcome, damaged) = match outcome.parse::<Outcome>() {
        Ok(o) => (o, false),
        Err(_) => (Outcome::Failed, true),
    };
    let mac: Vec<u8> = r.get(9)?;
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor_id: r.get(2)?,
        actor: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        outcome,
        detail: r.get(7)?,
        prev_mac: r.get(8)?,
        mac: if damaged { Vec::new() } else { mac },
        state: r.get(10)?,
    })
}

impl SqliteTx<'_> {
    fn err(&self, e: rusqlite::Error) -> StoreError {
        map_err(self.location, e)
    }

    fn one_user(
        &self,
        where_clause: &str,
        arg: &dyn rusqlite::ToSql,
    ) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {where_clause}");
        let mut st = self.tx.prepare_cached(&sql).map_err(|e| self.err(e))?;
        st.query_row([arg], user_from_row)
            .optional()
            .map_err(|e| self.err(e))
    }

    fn all<T>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Vec<T>> {
        let mut st = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, f)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| map_err(self.location, e))
    }

    fn one<T>(
        &self,
        sql: &str,
        args: impl rusqlite::Params,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StoreResult<Option<T>> {
        let mut st = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        st.query_row(args, f)
            .optional()
            .map_err(|e| map_err(self.location, e))
    }

    fn exec(&self, sql: &str, args: impl rusqlite::Params) -> StoreResult<usize> {
        let mut st = self.tx.prepare_cached(sql).map_err(|e| self.err(e))?;
        st.execute(args).map_err(|e| self.err(e))
    }
}

impl Tx for SqliteTx<'_> {
    fn dump(
        &mut self,
        table: &Table,
        visit: &mut dyn FnMut(Vec<Value>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            table.column_list(),
            table.name,
            table.key.join(", ")
        );
        let mut st = self.tx.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| map_err(self.location, e))?;
        while let Some(r) = rows.next().map_err(|e| map_err(self.location, e))? {
            let mut values = Vec::with_capacity(table.columns.len());
            for i in 0..table.columns.len() {
                let v = r.get_ref(i).map_err(|e| map_err(self.location, e))?;
                values.push(match v {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    ValueRef::Real(_) => {
                        return Err(StoreError::Invalid {
                            what: format!("a row of {}", table.name),
                        });
                    }
                });
            }
            visit(values)?;
        }
        Ok(())
    }

    fn load(&mut self, table: &Table, row: &[Value]) -> StoreResult<()> {
        let verb = if table.replace {
            "INSERT OR REPLACE"
        } else {
            "INSERT"
        };
        let placeholders: Vec<String> = (1..=row.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "{verb} INTO {} ({}) VALUES ({})",
            table.name,
            table.column_list(),
            placeholders.join(", ")
        );
        let values = row.iter().map(|v| match v {
            Value::Null => SqlValue::Null,
            Value::Int(n) => SqlValue::Integer(*n),
            Value::Text(t) => SqlValue::Text(t.clone()),
            Value::Blob(b) => SqlValue::Blob(b.clone()),
        });
        self.exec(&sql, rusqlite::params_from_iter(values))
            .map(drop)
    }

    fn commit(self: Box<Self>) -> StoreResult<()> {
        let location = self.location;
        self.tx.commit().map_err(|e| map_err(location, e))
    }

    fn database_id(&mut self) -> StoreResult<Vec<u8>> {
        self.one(
            "SELECT value FROM meta WHERE key = 'database_id'",
            [],
            |r| r.get(0),
        )?
        .ok_or_else(|| StoreError::NotZencrypt {
            location: self.location.to_string(),
        })
    }

    fn meta(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.one("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map(drop)
    }

    fn user_count(&mut self) -> StoreResult<i64> {
        self.tx
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn insert_user(&mut self, u: &NewUser<'_>) -> StoreResult<i64> {
        let c = u.credentials;
        let res = self.exec(
            "INSERT INTO users (username, password_hash, role, status, kek_salt, kek_m_kib, \
             kek_t, kek_p, wrapped_user_key, created_at, must_change_password, rows_bound) \
             VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1)",
            params![
                u.username,
                c.password_hash,
                u.role.stored(),
                c.kek_salt,
                c.kek_params.m_kib,
                c.kek_params.t,
                c.kek_params.p,
                c.wrapped_user_key,
                u.created_at,
                i64::from(u.must_change_password)
            ],
        );
        match res {
            Ok(_) => Ok(self.tx.last_insert_rowid()),
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                what: format!("user '{}'", u.username),
            }),
            Err(e) => Err(e),
        }
    }

    fn user_by_name(&mut self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.one_user(
            "username = ?1 COLLATE NOCASE ORDER BY username = ?1 DESC LIMIT 1",
            &username,
        )
    }

    fn user_by_id(&mut self, id: i64) -> StoreResult<Option<UserRecord>> {
        self.one_user("id = ?1", &id)
    }

    fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let mut st = self.tx.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], user_from_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| map_err(self.location, e))
    }

    fn update_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        self.scrub.set(true);
        let c = &u.credentials;
        self.exec(
            "UPDATE users SET role = ?2, status = ?3, password_hash = ?4, kek_salt = ?5, \
             kek_m_kib = ?6, kek_t = ?7, kek_p = ?8, wrapped_user_key = ?9, \
             must_change_password = ?10, rows_bound = ?11, row_mac = ?12, \
             recovery_salt = ?13, recovery_wrapped_key = ?14, recovery_created_at = ?15, \
             owner_id = ?16, public_key = ?17, signing_key = ?18, wrapped_keypair = ?19, \
             key_pins = ?20 WHERE id = ?1",
            params![
                u.id,
                u.role.stored(),
                u.status.as_str(),
                c.password_hash,
                c.kek_salt,
                c.kek_params.m_kib,
                c.kek_params.t,
                c.kek_params.p,
                c.wrapped_user_key,
                i64::from(u.must_change_password),
                i64::from(u.rows_bound),
                u.mac,
                u.recovery.as_ref().map(|r| r.salt.clone()),
                u.recovery.as_ref().map(|r| r.wrapped_user_key.clone()),
                u.recovery.as_ref().map(|r| r.created_at),
                u.owner_id,
                u.keys.as_ref().map(|k| k.public.recipient.clone()),
                u.keys.as_ref().map(|k| k.public.signing.to_vec()),
                u.keys.as_ref().map(|k| k.wrapped.clone()),
                u.pins
            ],
        )
        .map(drop)
    }

    fn set_last_login(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET last_login_at = ?2 WHERE id = ?1",
            params![id, at],
        )
        .map(drop)
    }

    fn set_row_mac(&mut self, row: &RowId, mac: &[u8]) -> StoreResult<()> {
        match row {
            RowId::User(id) => self.exec(
                "UPDATE users SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            RowId::Key(id) => self.exec(
                "UPDATE keys SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            RowId::KeyVersion(k, v) => self.exec(
                "UPDATE key_versions SET row_mac = ?3 WHERE key_id = ?1 AND version = ?2",
                params![k, v, mac],
            ),
            RowId::Record(id) => self.exec(
                "UPDATE records SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            RowId::Identity(id) => self.exec(
                "UPDATE password_identities SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            RowId::Session(id) => self.exec(
                "UPDATE sessions SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            RowId::RecordVersion(id, v) => self.exec(
                "UPDATE record_versions SET row_mac = ?3 WHERE record_id = ?1 AND version = ?2",
                params![id, v, mac],
            ),
            RowId::ServiceGrant(id) => self.exec(
                "UPDATE service_grants SET row_mac = ?2 WHERE id = ?1",
                params![id, mac],
            ),
            // Bound by the owner's or the manager's signature, made with the row.
            RowId::RecordShare(_)
            | RowId::KeyShare(_)
            | RowId::Group(_)
            | RowId::GroupMember(_)
            | RowId::RecordWrite(_)
            | RowId::RecordTransfer(_) => Ok(0),
        }
        .map(drop)
    }

    fn scan_rows(&mut self, visit: &mut dyn FnMut(StoredRow) -> bool) -> StoreResult<()> {
        let location = self.location;
        let err = |e| map_err(location, e);
        macro_rules! scan {
            ($sql:expr, $map:expr) => {{
                let mut st = self.tx.prepare($sql).map_err(err)?;
                let mut rows = st.query([]).map_err(err)?;
                while let Some(r) = rows.next().map_err(err)? {
                    if !visit($map(r).map_err(err)?) {
                        return Ok(());
                    }
                }
            }};
        }
        scan!(&format!("SELECT {USER_COLUMNS} FROM users"), |r| {
            user_from_row(r).map(StoredRow::User)
        });
        scan!(&format!("SELECT {KEY_COLUMNS} FROM keys"), |r| {
            key_from_row(r).map(StoredRow::Key)
        });
        scan!(
            "SELECT k.owner_id, v.key_id, v.version, v.wrapped_material, v.created_at, \
             v.encryptions, v.bytes, v.row_mac FROM key_versions v JOIN keys k ON k.id = v.key_id",
            |r: &Row<'_>| -> rusqlite::Result<StoredRow> {
                let owner: i64 = r.get(0)?;
                Ok(StoredRow::KeyVersion(
                    owner,
                    KeyVersionRecord {
                        key_id: r.get(1)?,
                        version: r.get(2)?,
                        wrapped_material: r.get(3)?,
                        created_at: r.get(4)?,
                        encryptions: r.get(5)?,
                        bytes: r.get(6)?,
                        mac: r.get(7)?,
                    },
                ))
            }
        );
        scan!(&format!("SELECT {RECORD_META_COLUMNS} FROM records"), |r| {
            record_from_row(r).map(StoredRow::Record)
        });
        scan!(
            &format!("SELECT {IDENTITY_COLUMNS} FROM password_identities"),
            |r| identity_from_row(r).map(StoredRow::Identity)
        );
        scan!(
            &format!("SELECT {GRANT_COLUMNS} FROM service_grants"),
            |r| { grant_from_row(r).map(StoredRow::ServiceGrant) }
        );
        scan!(
            &format!(
                "SELECT {SHARE_COLUMNS} FROM record_shares s JOIN records r ON r.id = s.record_id"
            ),
            |r| { share_from_row(r).map(StoredRow::RecordShare) }
        );
        scan!(
            &format!("SELECT {KEY_SHARE_COLUMNS} FROM key_shares"),
            |r| { key_share_from_row(r).map(StoredRow::KeyShare) }
        );
        scan!(&format!("SELECT {GROUP_COLUMNS} FROM groups"), |r| {
            group_from_row(r).map(StoredRow::Group)
        });
        scan!(
            &format!("SELECT {MEMBER_COLUMNS} FROM group_members"),
            |r| { member_from_row(r).map(StoredRow::GroupMember) }
        );
        scan!(
            &format!(
                "SELECT {WRITE_COLUMNS} FROM record_writes w JOIN records r ON r.id = w.record_id"
            ),
            |r| { write_from_row(r).map(StoredRow::RecordWrite) }
        );
        scan!(
            &format!(
                "SELECT {TRANSFER_COLUMNS} FROM record_transfers t \
                 JOIN records r ON r.id = t.record_id"
            ),
            |r| { transfer_from_row(r).map(StoredRow::RecordTransfer) }
        );
        Ok(())
    }

    fn unbound_rows(&mut self, owner_id: i64) -> StoreResult<Vec<StoredRow>> {
        let mut out = Vec::new();
        let keys = self.all(
            &format!("SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = ?1"),
            params![owner_id],
            key_from_row,
        )?;
        for k in &keys {
            let versions = self.all(
                &format!(
                    "SELECT {KEY_VERSION_COLUMNS} FROM key_versions \
                     WHERE key_id = ?1 AND length(row_mac) = 0"
                ),
                params![k.id],
                key_version_from_row,
            )?;
            out.extend(
                versions
                    .into_iter()
                    .map(|v| StoredRow::KeyVersion(owner_id, v)),
            );
        }
        out.extend(
            keys.into_iter()
                .filter(|k| k.mac.is_empty())
                .map(StoredRow::Key),
        );
        let records = self.all(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE owner_id = ?1 AND length(row_mac) = 0"
            ),
            params![owner_id],
            record_from_row,
        )?;
        out.extend(records.into_iter().map(StoredRow::Record));
        let identities = self.all(
            &format!(
                "SELECT {IDENTITY_COLUMNS} FROM password_identities \
                 WHERE owner_id = ?1 AND length(row_mac) = 0"
            ),
            params![owner_id],
            identity_from_row,
        )?;
        out.extend(identities.into_iter().map(StoredRow::Identity));
        Ok(out)
    }

    fn active_admin_count(&mut self) -> StoreResult<i64> {
        self.tx
            .query_row(
                "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active' AND owner_id IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn insert_session(&mut self, s: &SessionRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, \
             wrapped_user_key, row_mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                s.id,
                s.user_id,
                s.created_at,
                s.expires_at,
                s.revoked_at,
                s.wrapped_user_key,
                s.mac
            ],
        )
        .map(drop)
    }

    fn session(&mut self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let mut st = self
            .tx
            .prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
            ))
            .map_err(|e| map_err(self.location, e))?;
        st.query_row([id], session_from_row)
            .optional()
            .map_err(|e| map_err(self.location, e))
    }

    fn set_session_user_key(&mut self, id: &str, wrapped_user_key: &[u8]) -> StoreResult<()> {
        self.scrub.set(true);
        self.exec(
            "UPDATE sessions SET wrapped_user_key = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, wrapped_user_key],
        )
        .map(drop)
    }

    fn revoke_session(&mut self, id: &str, at: i64) -> StoreResult<bool> {
        self.scrub.set(true);
        self.exec(
            "UPDATE sessions SET revoked_at = ?2, wrapped_user_key = X'' \
             WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at],
        )
        .map(|n| n > 0)
    }

    fn revoke_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
        at: i64,
    ) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "UPDATE sessions SET wrapped_user_key = X'' \
             WHERE user_id = ?1 AND expires_at <= ?2 AND length(wrapped_user_key) > 0",
            params![user_id, at],
        )?;
        self.exec(
            "UPDATE sessions SET revoked_at = ?3, wrapped_user_key = X'' \
             WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?3 \
             AND (?2 IS NULL OR id <> ?2)",
            params![user_id, keep, at],
        )
        .map(|n| n as u64)
    }

    fn shred_expired_sessions(&mut self, now: i64) -> StoreResult<u64> {
        let n = self.exec(
            "UPDATE sessions SET wrapped_user_key = X'' \
             WHERE expires_at <= ?1 AND length(wrapped_user_key) > 0",
            params![now],
        )?;
        if n > 0 {
            self.scrub.set(true);
        }
        Ok(n as u64)
    }

    fn audit_head(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        let mut st = self
            .tx
            .prepare_cached("SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1")
            .map_err(|e| map_err(self.location, e))?;
        st.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(|e| map_err(self.location, e))
    }

    fn insert_audit(&mut self, a: &AuditEntry) -> StoreResult<()> {
        self.exec(
            "INSERT INTO audit_log (seq, at, actor_id, actor, action, target, outcome, detail, \
             prev_mac, mac, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                a.seq,
                a.at,
                a.actor_id,
                a.actor,
                a.action,
                a.target,
                a.outcome.as_str(),
                a.detail,
                a.prev_mac,
                a.mac,
                a.state
            ],
        )?;
        self.exec(
            "UPDATE audit_head SET seq = ?1, mac = ?2 WHERE id = 1 AND seq < ?1",
            params![a.seq, a.mac],
        )
        .map(drop)
    }

    fn audit_has_state(&mut self) -> StoreResult<bool> {
        Ok(self
            .one(
                "SELECT 1 FROM audit_log WHERE length(state) > 0 LIMIT 1",
                [],
                |r| r.get::<_, i64>(0),
            )?
            .is_some())
    }

    fn audit_entry(&mut self, seq: i64) -> StoreResult<Option<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq = ?1");
        self.one(&sql, params![seq], audit_from_row)
    }

    fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let (action_exact, action_prefix) = match &f.action {
            Some(a) if a.ends_with('.') => (None, Some(format!("{a}%"))),
            Some(a) => (Some(a.clone()), None),
            None => (None, None),
        };
        let sql = format!(
            "SELECT * FROM (SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE (?1 IS NULL OR actor_id = ?1) AND (?2 IS NULL OR actor = ?2) \
             AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR action LIKE ?4) \
             AND (?5 IS NULL OR outcome = ?5) AND (?6 IS NULL OR at >= ?6) \
             ORDER BY seq DESC LIMIT ?7) ORDER BY seq"
        );
        let limit = f.limit.map(i64::from).unwrap_or(-1);
        let mut st = self
            .tx
            .prepare_cached(&sql)
            .map_err(|e| map_err(self.location, e))?;
        let rows = st
            .query_map(
                params![
                    f.actor_id,
                    f.actor,
                    action_exact,
                    action_prefix,
                    f.outcome.map(|o| o.as_str()),
                    f.since,
                    limit
                ],
                audit_from_row,
            )
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>());
        rows.map_err(|e| map_err(self.location, e))
    }

    fn scan_audit(&mut self, visit: &mut dyn FnMut(AuditEntry) -> bool) -> StoreResult<()> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq");
        let mut st = self
            .tx
            .prepare_cached(&sql)
            .map_err(|e| map_err(self.location, e))?;
        let mut rows = st.query([]).map_err(|e| map_err(self.location, e))?;
        while let Some(row) = rows.next().map_err(|e| map_err(self.location, e))? {
            let entry = audit_from_row(row).map_err(|e| map_err(self.location, e))?;
            if !visit(entry) {
                break;
            }
        }
        Ok(())
    }

    fn insert_key(&mut self, k: &KeyRecord) -> StoreResult<i64> {
        let res = self.exec(
            "INSERT INTO keys (owner_id, name, status, exportable, rotation_period, expires_at, \
             min_decrypt_version, latest_version, created_at, row_mac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                k.owner_id,
                k.name,
                k.status.as_str(),
                i64::from(k.exportable),
                k.rotation_period,
                k.expires_at,
                k.min_decrypt_version,
                k.latest_version,
                k.created_at,
                k.mac
            ],
        );
        match res {
            Ok(_) => Ok(self.tx.last_insert_rowid()),
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                what: format!("key '{}'", k.name),
            }),
            Err(e) => Err(e),
        }
    }

    fn key_by_name(&mut self, owner_id: i64, name: &str) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = ?1 AND name = ?2");
        self.one(&sql, params![owner_id, name], key_from_row)
    }

    fn key_by_id(&mut self, owner_id: i64, id: i64) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = ?1 AND id = ?2");
        self.one(&sql, params![owner_id, id], key_from_row)
    }

    fn list_keys(&mut self, owner_id: i64, include_destroyed: bool) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = ?1 \
             AND (?2 OR status <> 'destroyed') ORDER BY name"
        );
        self.all(&sql, params![owner_id, include_destroyed], key_from_row)
    }

    fn update_key(&mut self, k: &KeyRecord) -> StoreResult<()> {
        self.exec(
            "UPDATE keys SET status = ?2, exportable = ?3, rotation_period = ?4, expires_at = ?5, \
             min_decrypt_version = ?6, latest_version = ?7, row_mac = ?8, share_digest = ?9 \
             WHERE id = ?1",
            params![
                k.id,
                k.status.as_str(),
                i64::from(k.exportable),
                k.rotation_period,
                k.expires_at,
                k.min_decrypt_version,
                k.latest_version,
                k.mac,
                k.share_digest
            ],
        )
        .map(drop)
    }

    fn insert_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()> {
        self.exec(
            "INSERT INTO key_versions (key_id, version, wrapped_material, created_at, \
             encryptions, bytes, row_mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                v.key_id,
                v.version,
                v.wrapped_material,
                v.created_at,
                v.encryptions,
                v.bytes,
                v.mac
            ],
        )
        .map(drop)
    }

    fn key_version(&mut self, key_id: i64, version: i64) -> StoreResult<Option<KeyVersionRecord>> {
        self.one(
            &format!(
                "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = ?1 AND version = ?2"
            ),
            params![key_id, version],
            key_version_from_row,
        )
    }

    fn key_versions(&mut self, key_id: i64) -> StoreResult<Vec<KeyVersionRecord>> {
        self.all(
            &format!(
                "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = ?1 ORDER BY version"
            ),
            params![key_id],
            key_version_from_row,
        )
    }

    fn update_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()> {
        // Material only ever changes by being destroyed; counters change on every use.
        if v.wrapped_material.is_none() {
            self.scrub.set(true);
        }
        self.exec(
            "UPDATE key_versions SET wrapped_material = ?3, encryptions = ?4, bytes = ?5, \
             row_mac = ?6 WHERE key_id = ?1 AND version = ?2",
            params![
                v.key_id,
                v.version,
                v.wrapped_material,
                v.encryptions,
                v.bytes,
                v.mac
            ],
        )
        .map(drop)
    }

    fn insert_key_event(
        &mut self,
        key_id: i64,
        actor_id: Option<i64>,
        e: &KeyEvent,
    ) -> StoreResult<()> {
        self.exec(
            "INSERT INTO key_events (key_id, at, event, version, actor_id, actor, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key_id, e.at, e.event, e.version, actor_id, e.actor, e.detail
            ],
        )
        .map(drop)
    }

    fn key_events(&mut self, key_id: i64) -> StoreResult<Vec<KeyEvent>> {
        self.all(
            "SELECT at, event, version, actor, detail FROM key_events WHERE key_id = ?1 ORDER BY id",
            params![key_id],
            |r| {
                Ok(KeyEvent {
                    at: r.get(0)?,
                    event: r.get(1)?,
                    version: r.get(2)?,
                    actor: r.get(3)?,
                    detail: r.get(4)?,
                })
            },
        )
    }

    fn insert_usage(&mut self, u: &UsageEvent) -> StoreResult<()> {
        self.exec(
            "INSERT INTO usage_events (at, user_id, key_id, key_version, record_id, operation, \
             bytes, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                u.at,
                u.user_id,
                u.key_id,
                u.key_version,
                u.record_id,
                u.operation,
                u.bytes,
                u.outcome.as_str()
            ],
        )
        .map(drop)
    }

    fn next_record_id(&mut self) -> StoreResult<i64> {
        Ok(self
            .one(
                // AUTOINCREMENT: an id is never handed out twice, even after a purge.
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0), \
                 coalesce((SELECT max(id) FROM records), 0)) + 1",
                [],
                |r| r.get(0),
            )?
            .unwrap_or(1))
    }

    fn insert_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        let res = self.exec(
            "INSERT INTO records (id, token, owner_id, name, key_id, key_version, identity_id, \
             wrapped_dek, ciphertext, created_at, updated_at, expires_at, deleted_at, version, \
             row_mac, value_hash, share_digest) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            params![
                r.id,
                r.token,
                r.owner_id,
                r.name,
                r.key_id,
                r.key_version,
                r.identity_id,
                r.wrapped_dek,
                r.ciphertext,
                r.created_at,
                r.updated_at,
                r.expires_at,
                r.deleted_at,
                r.version,
                r.mac,
                r.value_hash,
                r.share_digest
            ],
        );
        match res {
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                what: "a record with this token or name".into(),
            }),
            other => other.map(drop),
        }
    }

    fn record_by_ref(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>> {
        let by_token =
            format!("SELECT {RECORD_COLUMNS} FROM records WHERE token = ?2 AND owner_id = ?1");
        if let Some(r) = self.one(&by_token, params![owner_id, reference], record_from_row)? {
            return Ok(Some(r));
        }
        let by_name = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE owner_id = ?1 AND name = ?2 \
             ORDER BY deleted_at IS NULL DESC, deleted_at DESC LIMIT 1"
        );
        self.one(&by_name, params![owner_id, reference], record_from_row)
    }

    fn update_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        self.scrub.set(true);
        let res = self.exec(
            "UPDATE records SET name = ?2, key_id = ?3, key_version = ?4, identity_id = ?5, \
             wrapped_dek = ?6, ciphertext = ?7, updated_at = ?8, expires_at = ?9, \
             deleted_at = ?10, version = ?11, row_mac = ?12, value_hash = ?13, share_digest = ?14 \
             WHERE id = ?1",
            params![
                r.id,
                r.name,
                r.key_id,
                r.key_version,
                r.identity_id,
                r.wrapped_dek,
                r.ciphertext,
                r.updated_at,
                r.expires_at,
                r.deleted_at,
                r.version,
                r.mac,
                r.value_hash,
                r.share_digest
            ],
        );
        match res {
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                what: "a live record with this name".into(),
            }),
            other => other.map(drop),
        }
    }

    fn delete_record(&mut self, id: i64) -> StoreResult<()> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM record_versions WHERE record_id = ?1",
            params![id],
        )?;
        self.exec(
            "DELETE FROM service_record_keys WHERE record_id = ?1",
            params![id],
        )?;
        self.exec(
            "DELETE FROM record_shares WHERE record_id = ?1",
            params![id],
        )?;
        self.exec(
            "DELETE FROM record_writes WHERE record_id = ?1",
            params![id],
        )?;
        self.exec(
            "DELETE FROM record_transfers WHERE record_id = ?1",
            params![id],
        )?;
        self.exec("DELETE FROM records WHERE id = ?1", params![id])
            .map(drop)
    }

    fn insert_record_version(&mut self, r: &RecordRow) -> StoreResult<()> {
        self.exec(
            "INSERT INTO record_versions (record_id, version, key_id, key_version, identity_id, \
             wrapped_dek, ciphertext, written_at, row_mac, value_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.id,
                r.version,
                r.key_id,
                r.key_version,
                r.identity_id,
                r.wrapped_dek,
                r.ciphertext,
                r.updated_at,
                r.mac,
                r.value_hash
            ],
        )
        .map(drop)
    }

    fn record_versions(&mut self, record_id: i64) -> StoreResult<Vec<RecordRow>> {
        self.all(
            &format!(
                "SELECT {VERSION_COLUMNS_NO_VALUE} FROM record_versions v JOIN records r \
                 ON r.id = v.record_id WHERE v.record_id = ?1 ORDER BY v.version DESC"
            ),
            params![record_id],
            record_from_row,
        )
    }

    fn record_version(&mut self, record_id: i64, version: i64) -> StoreResult<Option<RecordRow>> {
        self.one(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM record_versions v JOIN records r \
                 ON r.id = v.record_id WHERE v.record_id = ?1 AND v.version = ?2"
            ),
            params![record_id, version],
            record_from_row,
        )
    }

    fn prune_record_versions(&mut self, record_id: i64, version: i64) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM record_versions WHERE record_id = ?1 AND version < ?2",
            params![record_id, version],
        )
        .map(|n| n as u64)
    }

    fn list_records(&mut self, owner_id: i64, f: &RecordFilter) -> StoreResult<Vec<RecordRow>> {
        let dir = if f.ascending { "ASC" } else { "DESC" };
        // NULLs (unnamed, never expiring) sort first ascending and last descending, on
        // every backend; names compare bytewise.
        let order = match f.order_by {
            RecordOrder::Created => format!("created_at {dir}"),
            RecordOrder::Updated => format!("updated_at {dir}"),
            RecordOrder::Name => format!("name IS NOT NULL {dir}, name COLLATE BINARY {dir}"),
            RecordOrder::Expires => format!("expires_at IS NOT NULL {dir}, expires_at {dir}"),
        };
        let tokens = if f.tokens.is_empty() {
            None
        } else {
            Some(f.tokens.join("\u{1f}"))
        };
        let columns = if f.with_values {
            RECORD_COLUMNS
        } else {
            RECORD_META_COLUMNS
        };
        let sql = format!(
            "SELECT {columns} FROM records WHERE owner_id = ?1 \
             AND (?2 IS NULL OR instr(char(31) || ?2 || char(31), char(31) || token || char(31)) > 0) \
             AND (?3 IS NULL OR key_id = ?3) \
             AND (?4 IS NULL OR (deleted_at IS NOT NULL) = ?4) \
             AND (?5 IS NULL OR (expires_at IS NOT NULL AND expires_at <= ?6) = ?5) \
             ORDER BY {order}, id {dir} LIMIT ?7 OFFSET ?8"
        );
        self.all(
            &sql,
            params![
                owner_id,
                tokens,
                f.key_id,
                f.deleted,
                f.expired,
                f.now,
                f.limit.unwrap_or(-1),
                f.offset
            ],
            record_from_row,
        )
    }

    fn records_below_version(&mut self, key_id: i64, version: i64) -> StoreResult<Vec<RecordRow>> {
        self.all(
            &format!(
                "SELECT {RECORD_META_COLUMNS} FROM records WHERE key_id = ?1 AND key_version < ?2"
            ),
            params![key_id, version],
            record_from_row,
        )
    }

    fn records_of_identity(&mut self, identity_id: i64) -> StoreResult<Vec<RecordRow>> {
        self.all(
            &format!("SELECT {RECORD_META_COLUMNS} FROM records WHERE identity_id = ?1"),
            params![identity_id],
            record_from_row,
        )
    }

    fn set_record_dek(&mut self, r: &RecordRow) -> StoreResult<()> {
        self.scrub.set(true);
        self.exec(
            "UPDATE records SET key_version = ?2, wrapped_dek = ?3, row_mac = ?4 WHERE id = ?1",
            params![r.id, r.key_version, r.wrapped_dek, r.mac],
        )
        .map(drop)
    }

    fn identity_record_count(&mut self, identity_id: i64) -> StoreResult<i64> {
        Ok(self
            .one(
                "SELECT count(*) FROM records WHERE identity_id = ?1",
                params![identity_id],
                |r| r.get(0),
            )?
            .unwrap_or(0))
    }

    fn identities(&mut self, owner_id: i64) -> StoreResult<Vec<IdentityRow>> {
        self.all(
            &format!(
                "SELECT {IDENTITY_COLUMNS} FROM password_identities WHERE owner_id = ?1 ORDER BY id"
            ),
            params![owner_id],
            identity_from_row,
        )
    }

    fn insert_identity(&mut self, row: &IdentityRow) -> StoreResult<i64> {
        self.exec(
            "INSERT INTO password_identities (owner_id, salt, kdf_m_kib, kdf_t, kdf_p, \
             wrapped_identity_key, created_at, kek_scheme, row_mac) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                row.owner_id,
                row.salt,
                row.kdf.m_kib,
                row.kdf.t,
                row.kdf.p,
                row.wrapped_identity_key,
                row.created_at,
                row.kek_scheme,
                row.mac
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    fn update_identity(&mut self, row: &IdentityRow) -> StoreResult<()> {
        self.scrub.set(true);
        self.exec(
            "UPDATE password_identities SET salt = ?2, kdf_m_kib = ?3, kdf_t = ?4, kdf_p = ?5, \
             wrapped_identity_key = ?6, kek_scheme = ?7, row_mac = ?8 WHERE id = ?1",
            params![
                row.id,
                row.salt,
                row.kdf.m_kib,
                row.kdf.t,
                row.kdf.p,
                row.wrapped_identity_key,
                row.kek_scheme,
                row.mac
            ],
        )
        .map(drop)
    }

    fn insert_service_grant(&mut self, g: &ServiceGrant) -> StoreResult<i64> {
        let res = self.exec(
            "INSERT INTO service_grants (service_id, owner_id, pattern, created_at, row_mac) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![g.service_id, g.owner_id, g.pattern, g.created_at, g.mac],
        );
        match res {
            Ok(_) => Ok(self.tx.last_insert_rowid()),
            Err(StoreError::Duplicate { .. }) => Err(StoreError::Duplicate {
                what: format!("grant '{}'", g.pattern),
            }),
            Err(e) => Err(e),
        }
    }

    fn service_grants(&mut self, service_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        self.all(
            &format!(
                "SELECT {GRANT_COLUMNS} FROM service_grants WHERE service_id = ?1 ORDER BY pattern"
            ),
            params![service_id],
            grant_from_row,
        )
    }

    fn grants_of_owner(&mut self, owner_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        self.all(
            &format!(
                "SELECT {GRANT_COLUMNS} FROM service_grants WHERE owner_id = ?1 \
                 ORDER BY service_id, pattern"
            ),
            params![owner_id],
            grant_from_row,
        )
    }

    fn delete_service_grant(&mut self, id: i64) -> StoreResult<()> {
        self.exec("DELETE FROM service_grants WHERE id = ?1", params![id])
            .map(drop)
    }

    fn put_service_record_key(&mut self, k: &ServiceRecordKey) -> StoreResult<()> {
        self.scrub.set(true);
        self.exec(
            "INSERT INTO service_record_keys (service_id, record_id, version, wrapped_dek) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (service_id, record_id) \
             DO UPDATE SET version = excluded.version, wrapped_dek = excluded.wrapped_dek",
            params![k.service_id, k.record_id, k.version, k.wrapped_dek],
        )
        .map(drop)
    }

    fn service_record_key(
        &mut self,
        service_id: i64,
        record_id: i64,
    ) -> StoreResult<Option<ServiceRecordKey>> {
        self.one(
            "SELECT service_id, record_id, version, wrapped_dek FROM service_record_keys \
             WHERE service_id = ?1 AND record_id = ?2",
            params![service_id, record_id],
            |r| {
                Ok(ServiceRecordKey {
                    service_id: r.get(0)?,
                    record_id: r.get(1)?,
                    version: r.get(2)?,
                    wrapped_dek: r.get(3)?,
                })
            },
        )
    }

    fn service_record_ids(&mut self, service_id: i64) -> StoreResult<Vec<i64>> {
        self.all(
            "SELECT record_id FROM service_record_keys WHERE service_id = ?1 ORDER BY record_id",
            params![service_id],
            |r| r.get(0),
        )
    }

    fn delete_service_record_keys(
        &mut self,
        service_id: i64,
        record_id: Option<i64>,
    ) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM service_record_keys \
             WHERE service_id = ?1 AND (?2 IS NULL OR record_id = ?2)",
            params![service_id, record_id],
        )
        .map(|n| n as u64)
    }

    fn put_key_share(&mut self, sh: &KeyShare) -> StoreResult<i64> {
        self.scrub.set(true);
        let (user, group, epoch) = sh.to.columns();
        let target = if group.is_some() {
            "(key_id, group_id, version)"
        } else {
            "(key_id, recipient_id, version)"
        };
        let id = self.one(
            &format!(
                "INSERT INTO key_shares (key_id, key_name, owner_id, recipient_id, version, \
                 wrapped_material, signature, grant_signature, created_at, group_id, epoch, \
                 can_write) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT {target} DO UPDATE SET \
                 key_name = excluded.key_name, wrapped_material = excluded.wrapped_material, \
                 signature = excluded.signature, grant_signature = excluded.grant_signature, \
                 epoch = excluded.epoch, can_write = excluded.can_write RETURNING id"
            ),
            params![
                sh.key_id,
                sh.key_name,
                sh.owner_id,
                user,
                sh.version,
                sh.wrapped_material,
                sh.signature,
                sh.grant_signature,
                sh.created_at,
                group,
                epoch,
                i64::from(sh.can_write)
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "key_shares: no id returned".into(),
        })
    }

    fn key_shares(
        &mut self,
        key_id: Option<i64>,
        recipient_id: Option<i64>,
    ) -> StoreResult<Vec<KeyShare>> {
        self.all(
            &format!(
                "SELECT {KEY_SHARE_COLUMNS} FROM key_shares \
                 WHERE (?1 IS NULL OR key_id = ?1) AND (?2 IS NULL OR recipient_id = ?2) \
                 ORDER BY key_id, group_id IS NOT NULL, recipient_id, group_id, version"
            ),
            params![key_id, recipient_id],
            key_share_from_row,
        )
    }

    fn delete_key_shares(
        &mut self,
        key_id: i64,
        to: Option<Grantee>,
        below: Option<i64>,
    ) -> StoreResult<u64> {
        self.scrub.set(true);
        let (user, group, _) = to.map(Grantee::columns).unwrap_or_default();
        self.exec(
            "DELETE FROM key_shares WHERE key_id = ?1 AND (?2 IS NULL OR recipient_id = ?2) \
             AND (?4 IS NULL OR group_id = ?4) AND (?3 IS NULL OR version < ?3)",
            params![key_id, user, below, group],
        )
        .map(|n| n as u64)
    }

    fn put_record_share(&mut self, sh: &RecordShare) -> StoreResult<i64> {
        self.scrub.set(true);
        let (user, group, epoch) = sh.to.columns();
        let target = if group.is_some() {
            "(record_id, group_id)"
        } else {
            "(record_id, recipient_id)"
        };
        let id = self.one(
            &format!(
                "INSERT INTO record_shares (record_id, owner_id, recipient_id, version, \
                 wrapped_dek, signature, created_at, grant_signature, group_id, epoch, can_write) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT {target} DO UPDATE SET owner_id = excluded.owner_id, \
                 version = excluded.version, wrapped_dek = excluded.wrapped_dek, \
                 signature = excluded.signature, grant_signature = excluded.grant_signature, \
                 epoch = excluded.epoch, can_write = excluded.can_write RETURNING id"
            ),
            params![
                sh.record_id,
                sh.owner_id,
                user,
                sh.version,
                sh.wrapped_dek,
                sh.signature,
                sh.created_at,
                sh.grant_signature,
                group,
                epoch,
                i64::from(sh.can_write)
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "record_shares: no id returned".into(),
        })
    }

    fn record_shares(&mut self, f: &ShareFilter) -> StoreResult<Vec<RecordShare>> {
        self.all(
            &format!(
                "SELECT {SHARE_COLUMNS} FROM record_shares s JOIN records r ON r.id = s.record_id \
                 WHERE (?1 IS NULL OR s.record_id = ?1) AND (?2 IS NULL OR s.owner_id = ?2) \
                 AND (?3 IS NULL OR s.recipient_id = ?3) AND (?5 IS NULL OR s.group_id = ?5) \
                 AND (?6 = 0 OR s.group_id IS NOT NULL) \
                 AND (?4 IS NULL OR s.recipient_id = ?4 OR s.group_id IN \
                      (SELECT group_id FROM group_members WHERE user_id = ?4)) \
                 ORDER BY s.record_id, s.group_id IS NOT NULL, s.recipient_id, s.group_id"
            ),
            params![
                f.record_id,
                f.owner_id,
                f.recipient_id,
                f.reader_id,
                f.group_id,
                f.groups_only
            ],
            share_from_row,
        )
    }

    fn delete_record_shares(&mut self, record_id: i64, to: Option<Grantee>) -> StoreResult<u64> {
        self.scrub.set(true);
        let (user, group, _) = to.map(Grantee::columns).unwrap_or_default();
        self.exec(
            "DELETE FROM record_shares WHERE record_id = ?1 \
             AND (?2 IS NULL OR recipient_id = ?2) AND (?3 IS NULL OR group_id = ?3)",
            params![record_id, user, group],
        )
        .map(|n| n as u64)
    }

    fn put_group(&mut self, g: &GroupRow) -> StoreResult<i64> {
        self.scrub.set(true);
        let id = self.one(
            "INSERT INTO groups (id, name, manager_id, recipient, epoch, history, \
             members_digest, signature, created_at, handovers) \
             VALUES (nullif(?1, 0), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             manager_id = excluded.manager_id, recipient = excluded.recipient, \
             epoch = excluded.epoch, history = excluded.history, \
             members_digest = excluded.members_digest, signature = excluded.signature, \
             handovers = excluded.handovers \
             RETURNING id",
            params![
                g.id,
                g.name,
                g.manager_id,
                g.recipient,
                g.epoch,
                g.history,
                g.members_digest,
                g.signature,
                g.created_at,
                g.handovers
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "groups: no id returned".into(),
        })
    }

    fn group_by_id(&mut self, id: i64) -> StoreResult<Option<GroupRow>> {
        self.one(
            &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"),
            params![id],
            group_from_row,
        )
    }

    fn group_by_name(&mut self, name: &str) -> StoreResult<Option<GroupRow>> {
        self.one(
            &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE name = ?1"),
            params![name],
            group_from_row,
        )
    }

    fn groups(&mut self) -> StoreResult<Vec<GroupRow>> {
        self.all(
            &format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY name, id"),
            params![],
            group_from_row,
        )
    }

    fn put_group_member(&mut self, m: &GroupMember) -> StoreResult<i64> {
        self.scrub.set(true);
        let id = self.one(
            "INSERT INTO group_members (group_id, user_id, epoch, wrapped_identity, signature, \
             added_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (group_id, user_id) DO UPDATE SET epoch = excluded.epoch, \
             wrapped_identity = excluded.wrapped_identity, signature = excluded.signature, \
             added_at = excluded.added_at RETURNING id",
            params![
                m.group_id,
                m.user_id,
                m.epoch,
                m.wrapped_identity,
                m.signature,
                m.added_at
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "group_members: no id returned".into(),
        })
    }

    fn group_members(
        &mut self,
        group_id: Option<i64>,
        user_id: Option<i64>,
    ) -> StoreResult<Vec<GroupMember>> {
        self.all(
            &format!(
                "SELECT {MEMBER_COLUMNS} FROM group_members \
                 WHERE (?1 IS NULL OR group_id = ?1) AND (?2 IS NULL OR user_id = ?2) \
                 ORDER BY group_id, user_id"
            ),
            params![group_id, user_id],
            member_from_row,
        )
    }

    fn delete_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2",
            params![group_id, user_id],
        )
        .map(|n| n as u64)
    }

    fn put_record_write(&mut self, w: &RecordWrite) -> StoreResult<i64> {
        self.scrub.set(true);
        let id = self.one(
            "INSERT INTO record_writes (record_id, owner_id, writer_id, base_version, \
             ciphertext, wrapped_dek, signature, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (record_id) DO UPDATE SET owner_id = excluded.owner_id, \
             writer_id = excluded.writer_id, base_version = excluded.base_version, \
             ciphertext = excluded.ciphertext, wrapped_dek = excluded.wrapped_dek, \
             signature = excluded.signature, created_at = excluded.created_at RETURNING id",
            params![
                w.record_id,
                w.owner_id,
                w.writer_id,
                w.base_version,
                w.ciphertext,
                w.wrapped_dek,
                w.signature,
                w.created_at
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "record_writes: no id returned".into(),
        })
    }

    fn record_writes(
        &mut self,
        owner_id: Option<i64>,
        record_id: Option<i64>,
    ) -> StoreResult<Vec<RecordWrite>> {
        self.all(
            &format!(
                "SELECT {WRITE_COLUMNS} FROM record_writes w JOIN records r ON r.id = w.record_id \
                 WHERE (?1 IS NULL OR w.owner_id = ?1) AND (?2 IS NULL OR w.record_id = ?2) \
                 ORDER BY w.record_id"
            ),
            params![owner_id, record_id],
            write_from_row,
        )
    }

    fn delete_record_write(&mut self, record_id: i64) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM record_writes WHERE record_id = ?1",
            params![record_id],
        )
        .map(|n| n as u64)
    }

    fn put_record_transfer(&mut self, t: &RecordTransfer) -> StoreResult<i64> {
        self.scrub.set(true);
        let id = self.one(
            "INSERT INTO record_transfers (record_id, owner_id, giver_id, recipient_id, version, \
             wrapped_dek, signature, created_at, taken_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (record_id) DO UPDATE SET owner_id = excluded.owner_id, \
             giver_id = excluded.giver_id, recipient_id = excluded.recipient_id, \
             version = excluded.version, wrapped_dek = excluded.wrapped_dek, \
             signature = excluded.signature, created_at = excluded.created_at, \
             taken_at = excluded.taken_at RETURNING id",
            params![
                t.record_id,
                t.owner_id,
                t.giver_id,
                t.recipient_id,
                t.version,
                t.wrapped_dek,
                t.signature,
                t.created_at,
                t.taken_at
            ],
            |r| r.get::<_, i64>(0),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "record_transfers: no id returned".into(),
        })
    }

    fn record_transfers(&mut self, f: &TransferFilter) -> StoreResult<Vec<RecordTransfer>> {
        self.all(
            &format!(
                "SELECT {TRANSFER_COLUMNS} FROM record_transfers t \
                 JOIN records r ON r.id = t.record_id \
                 WHERE (?1 IS NULL OR t.record_id = ?1) AND (?2 IS NULL OR t.owner_id = ?2) \
                 AND (?3 IS NULL OR t.recipient_id = ?3) AND (?4 = 0 OR t.taken_at IS NULL) \
                 ORDER BY t.record_id"
            ),
            params![f.record_id, f.owner_id, f.recipient_id, f.waiting],
            transfer_from_row,
        )
    }

    fn set_transfer_taken(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE record_transfers SET taken_at = ?2 WHERE id = ?1",
            params![id, at],
        )
        .map(drop)
    }

    fn delete_record_transfer(&mut self, record_id: i64) -> StoreResult<u64> {
        self.scrub.set(true);
        self.exec(
            "DELETE FROM record_transfers WHERE record_id = ?1",
            params![record_id],
        )
        .map(|n| n as u64)
    }

    fn user_sessions(&mut self, user_id: i64) -> StoreResult<Vec<SessionRecord>> {
        self.all(
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 \
                 ORDER BY created_at DESC, id"
            ),
            params![user_id],
            session_from_row,
        )
    }

    fn usage_report(
        &mut self,
        by: UsageGroup,
        user_id: Option<i64>,
        since: Option<i64>,
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        let group = match by {
            UsageGroup::Key => "coalesce(k.name, '-')",
            UsageGroup::User => "u.username",
            UsageGroup::Op => "e.operation",
            UsageGroup::Day => "strftime('%Y-%m-%d', e.at, 'unixepoch')",
        };
        let sql = format!(
            "SELECT {group} AS g, count(*), coalesce(sum(e.bytes), 0) FROM usage_events e \
             JOIN users u ON u.id = e.user_id LEFT JOIN keys k ON k.id = e.key_id \
             WHERE (?1 IS NULL OR e.user_id = ?1) AND (?2 IS NULL OR e.at >= ?2) \
             GROUP BY g ORDER BY g"
        );
        self.all(&sql, params![user_id, since], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// Each migration applies on top of the ones before it, and none is empty.
    #[test]
    fn migrations_apply_in_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for m in MIGRATIONS {
            conn.execute_batch(m.sqlite)
                .unwrap_or_else(|e| panic!("migration {} fails: {e}", m.version));
        }
        for table in [
            "users",
            "sessions",
            "audit_log",
            "keys",
            "key_versions",
            "key_events",
            "usage_events",
            "records",
            "password_identities",
            "audit_head",
        ] {
            let n: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "table {table} missing");
        }
    }
}
