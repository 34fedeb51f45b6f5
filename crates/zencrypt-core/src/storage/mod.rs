//! The storage contract: everything the domain asks of a database, with no SQL and no
//! backend's types in it. The backends (`zencrypt-sqlite`, `zencrypt-postgres`) implement
//! it; the conformance suite (module `conformance`, behind the cargo feature of that name)
//! runs the same checks against each.
//!
//! # Transactions
//! Work happens in transactions: [`Storage::read`] begins a read-only one that sees one
//! consistent snapshot, [`Storage::write`] a write transaction. A transaction that is
//! dropped without [`Tx::commit`] rolls back, wholly.
//!
//! # Many writers
//! Every write transaction serialises on the audit chain head before it reads anything:
//! on SQLite by taking the database's write lock at `BEGIN IMMEDIATE`; on PostgreSQL (in
//! READ COMMITTED) with `SELECT ... FROM audit_head WHERE id = 1 FOR UPDATE` as its first
//! statement. It is a row lock and not an advisory lock, so that it holds on the wire-
//! compatible databases whose advisory locks do nothing. Hence, for the life of a write
//! transaction:
//! - the audit head it reads is the head it appends to, so `seq` stays contiguous and the
//!   chain is one total order of all writes;
//! - reads see every transaction committed before it, and no other write commits
//!   meanwhile, so read-modify-write of counters and key versions, the encryption limit
//!   checked against a stored count, and ids handed out from the highest one in use
//!   ([`Tx::next_record_id`]) are all correct with any number of writers.
//!
//! # Errors
//! A lock held longer than the backend's timeout is [`StoreError::Busy`]. A lost race
//! (a serialization failure or a deadlock, which databases that run transactions
//! SERIALIZABLE report) is [`StoreError::Retryable`]: the transaction rolled back, and the
//! vault's write path runs it again a bounded number of times. Constraint violations are
//! told apart: [`StoreError::Duplicate`] (unique), [`StoreError::Reference`] (foreign
//! key), [`StoreError::Invalid`] (check, not null).
//!
//! # Filters and order
//! Filters are typed values, never SQL fragments. Names are not filtered here at all:
//! the services match them by glob in Rust, so matching is the same on every backend.
//! Orders are total and spelled out (by id or seq; names by their bytes).
//!
//! # Backend-neutral operations
//! The schema version ([`Storage::schema_version`]), the backend's own consistency check
//! ([`Storage::integrity_check`]) and row counts are on the trait; so is reading every row
//! for a copy or a backup, and writing rows with their ids kept into an empty database
//! (see [`Tx::dump`] and [`Tx::load`]).

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod migrations;
pub mod schema;

use crate::model::{
    AuditEntry, AuditFilter, Credentials, Grantee, GroupMember, GroupRow, IdentityRow, KeyEvent,
    KeyRecord, KeyShare, KeyVersionRecord, RecordFilter, RecordRow, RecordShare, RecordTransfer,
    RecordWrite, Role, RowId, ServiceGrant, ServiceRecordKey, SessionRecord, ShareFilter,
    StoredRow, TransferFilter, UsageEvent, UserRecord,
};

/// Why the database could not do what was asked. Messages name the location and say
/// what to do; they never contain stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file or server could not be opened at all.
    #[error("cannot open the database at {location}: {reason}")]
    Unopenable {
        /// Path or URL.
        location: String,
        /// Why, and what to do.
        reason: String,
    },
    /// There is no database at the location, and this open may not create one.
    #[error("no database at {location}")]
    Missing {
        /// Path or URL.
        location: String,
    },
    /// The file exists but is not a zencrypt database.
    #[error(
        "{location} is not a zencrypt database (or it is corrupt); point --db or ZENCRYPT_DB at a zencrypt database, or at a new path to create one"
    )]
    NotZencrypt {
        /// Path or URL.
        location: String,
    },
    /// The database was written by a newer zencrypt.
    #[error(
        "the database at {location} has schema version {found}, newer than this zencrypt understands ({known}); upgrade zencrypt (the file was not changed)"
    )]
    TooNew {
        /// Path or URL.
        location: String,
        /// Version found in the file.
        found: i64,
        /// Latest version this binary knows.
        known: i64,
    },
    /// The shared database has an older schema; it is migrated on purpose by an
    /// administrator (`zencrypt db migrate`), never by whoever opens it first.
    #[error(
        "the database at {location} has schema version {found}, older than this zencrypt's ({latest}); an administrator runs `zencrypt db migrate` (which writes a backup first) to upgrade it; nothing was changed"
    )]
    NeedsMigration {
        /// Path or URL.
        location: String,
        /// Version found.
        found: i64,
        /// Latest version this binary knows.
        latest: i64,
    },
    /// Another process held the lock longer than the busy timeout.
    #[error(
        "the database at {location} is locked by another process; try again when it has finished"
    )]
    Busy {
        /// Path or URL.
        location: String,
    },
    /// The database is damaged.
    #[error(
        "the database at {location} is corrupt; restore it from a backup (`zencrypt db backup` makes one)"
    )]
    Corrupt {
        /// Path or URL.
        location: String,
    },
    /// The database cannot be written.
    #[error(
        "the database at {location} is read-only; check the permissions of the file and its directory (nothing was written)"
    )]
    ReadOnly {
        /// Path or URL.
        location: String,
    },
    /// The disk is full.
    #[error("the disk holding the database at {location} is full; nothing was written")]
    Full {
        /// Path or URL.
        location: String,
    },
    /// The operating system failed a read or write (a full disk, a file size limit, a
    /// failing device).
    #[error(
        "an I/O error stopped the database at {location} (a full disk, a file size limit or a failing device); no change was committed"
    )]
    Io {
        /// Path or URL.
        location: String,
    },
    /// A uniqueness rule was violated.
    #[error("{what} already exists")]
    Duplicate {
        /// What collided.
        what: String,
    },
    /// A row refers to a row that does not exist (or is still referred to).
    #[error("{what} refers to a row that does not exist (or is still in use)")]
    Reference {
        /// Which rule.
        what: String,
    },
    /// A value broke a check or not-null rule of the schema.
    #[error("{what} breaks a rule of the database schema")]
    Invalid {
        /// Which rule.
        what: String,
    },
    /// The transaction lost a race with a concurrent one (a serialization failure or a
    /// deadlock) and rolled back; running it again may succeed. The write path retries
    /// such a transaction a few times before reporting it.
    #[error(
        "the database at {location} was changed by a concurrent command and this one could not complete; try again"
    )]
    Retryable {
        /// Path or URL.
        location: String,
        /// The backend's reason.
        reason: String,
    },
    /// A row's binding did not verify (raised by the integrity layer in front of a
    /// backend, never by a backend itself).
    #[error("{message}")]
    Integrity {
        /// Which row, and what to do.
        message: String,
    },
    /// Anything else.
    #[error("database error at {location}: {message}")]
    Other {
        /// Path or URL.
        location: String,
        /// The backend's message.
        message: String,
    },
}

impl From<StoreError> for crate::error::Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { .. } => crate::error::Error::Conflict(e.to_string()),
            StoreError::Retryable { .. } | StoreError::Busy { .. } => crate::error::Error::Busy {
                message: e.to_string(),
                retryable: matches!(e, StoreError::Retryable { .. }),
            },
            StoreError::Integrity { message } => crate::error::Error::Integrity(message),
            StoreError::Missing { location } => crate::error::Error::NoDatabase { location },
            e => crate::error::Error::Database {
                message: e.to_string(),
            },
        }
    }
}

/// Shorthand for storage results.
pub type StoreResult<T> = Result<T, StoreError>;

/// A new user to insert; the wrapped user key is set after the id is known.
pub struct NewUser<'a> {
    /// Unique login name.
    pub username: &'a str,
    /// Role.
    pub role: Role,
    /// Password hash and KEK parameters (wrapped key may be empty until set).
    pub credentials: &'a Credentials,
    /// Unix seconds.
    pub created_at: i64,
    /// Must change the password before anything else (made by an administrator).
    pub must_change_password: bool,
}

/// A database backend.
pub trait Storage {
    /// Begins a read-only transaction.
    fn read(&mut self) -> StoreResult<Box<dyn Tx + '_>>;
    /// Begins a write transaction that holds the write lock until commit or drop.
    fn write(&mut self) -> StoreResult<Box<dyn Tx + '_>>;
    /// The path or URL, for messages.
    fn location(&self) -> &str;
    /// The schema version in use.
    fn schema_version(&mut self) -> StoreResult<i64>;
    /// Row counts: users, keys, records, audit entries.
    fn counts(&mut self) -> StoreResult<Counts>;
    /// The backend's own consistency check; `Ok(vec![])` when sound.
    fn integrity_check(&mut self) -> StoreResult<Vec<String>>;
    /// What the backend tells about itself, for `db status`.
    fn info(&mut self) -> StoreResult<BackendInfo> {
        Ok(BackendInfo::default())
    }
    /// Closes the database after a copy was written into it, leaving it whole where it
    /// lives (a file backend leaves one self-contained file, no log beside it).
    fn close(self: Box<Self>) -> StoreResult<()>;
}

/// What a backend tells about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendInfo {
    /// `sqlite` or `postgresql`.
    pub backend: &'static str,
    /// The engine's or server's version.
    pub version: String,
    /// How the connection is protected, for a server: e.g. `off`, `on (verified)`.
    pub tls: Option<String>,
}

/// How many rows the main tables hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Users.
    pub users: i64,
    /// Named keys.
    pub keys: i64,
    /// Records (live, expired and soft-deleted).
    pub records: i64,
    /// Audit log rows.
    pub audit_entries: i64,
}

/// One transaction. Dropping it without `commit` rolls everything back.
pub trait Tx {
    /// Makes the transaction's changes durable.
    fn commit(self: Box<Self>) -> StoreResult<()>;

    /// Visits every row of `table` in the order of its key, each as one value per column
    /// in the table's column order (see [`schema::TABLES`]).
    fn dump(
        &mut self,
        table: &schema::Table,
        visit: &mut dyn FnMut(Vec<schema::Value>) -> StoreResult<()>,
    ) -> StoreResult<()>;
    /// Inserts one row into `table` exactly as given, its key included (replacing the row
    /// with the same key in tables the migrations fill, see [`schema::Table::replace`]).
    /// Only into a database that is being filled by a copy.
    fn load(&mut self, table: &schema::Table, row: &[schema::Value]) -> StoreResult<()>;

    /// This database's random 16-byte identity (set when it was created).
    fn database_id(&mut self) -> StoreResult<Vec<u8>>;
    /// A value from the `meta` table.
    fn meta(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Sets a value in the `meta` table.
    fn set_meta(&mut self, key: &str, value: &[u8]) -> StoreResult<()>;

    /// Number of users.
    fn user_count(&mut self) -> StoreResult<i64>;
    /// Inserts a user and returns its id.
    fn insert_user(&mut self, user: &NewUser<'_>) -> StoreResult<i64>;
    /// Looks a user up by name, ignoring case (an exact match first, for databases made
    /// before names were unique ignoring case).
    fn user_by_name(&mut self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Looks a user up by id.
    fn user_by_id(&mut self, id: i64) -> StoreResult<Option<UserRecord>>;
    /// All users, by name.
    fn list_users(&mut self) -> StoreResult<Vec<UserRecord>>;
    /// Saves a user's role, status, credentials, password-change flag and binding.
    fn update_user(&mut self, user: &UserRecord) -> StoreResult<()>;
    /// Records a successful login.
    fn set_last_login(&mut self, id: i64, at: i64) -> StoreResult<()>;
    /// Sets the binding of one row.
    fn set_row_mac(&mut self, row: &RowId, mac: &[u8]) -> StoreResult<()>;
    /// Visits every row the audit log vouches for (users, keys, key versions, records
    /// without their ciphertext, password identities) until `visit` returns false.
    fn scan_rows(&mut self, visit: &mut dyn FnMut(StoredRow) -> bool) -> StoreResult<()>;
    /// The rows of `owner` that are not bound yet (made before bindings existed), records
    /// with their ciphertext.
    fn unbound_rows(&mut self, owner_id: i64) -> StoreResult<Vec<StoredRow>>;
    /// Number of active admins.
    fn active_admin_count(&mut self) -> StoreResult<i64>;

    /// Inserts a session.
    fn insert_session(&mut self, session: &SessionRecord) -> StoreResult<()>;
    /// Looks a session up by id.
    fn session(&mut self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// Revokes one session and wipes its wrapped user key; false when it did not exist or
    /// was already revoked.
    fn revoke_session(&mut self, id: &str, at: i64) -> StoreResult<bool>;
    /// Revokes all live sessions of a user except `keep`, wiping their wrapped user keys;
    /// returns how many.
    fn revoke_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
        at: i64,
    ) -> StoreResult<u64>;
    /// Wipes the wrapped user key of every expired session; returns how many.
    fn shred_expired_sessions(&mut self, now: i64) -> StoreResult<u64>;
    /// Replaces a live session's wrapped user key (after the user key was replaced).
    fn set_session_user_key(&mut self, id: &str, wrapped_user_key: &[u8]) -> StoreResult<()>;

    /// The last audit row's seq and MAC.
    fn audit_head(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>>;
    /// Appends an audit row.
    fn insert_audit(&mut self, entry: &AuditEntry) -> StoreResult<()>;
    /// Whether any audit row carries row-state digests (the rows were bound before).
    fn audit_has_state(&mut self) -> StoreResult<bool>;
    /// The audit row with this seq.
    fn audit_entry(&mut self, seq: i64) -> StoreResult<Option<AuditEntry>>;
    /// Audit rows matching a filter, in seq order.
    fn list_audit(&mut self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Visits every audit row in seq order until `visit` returns false.
    fn scan_audit(&mut self, visit: &mut dyn FnMut(AuditEntry) -> bool) -> StoreResult<()>;

    /// Inserts a key (its `id` is ignored) and returns the new id.
    fn insert_key(&mut self, key: &KeyRecord) -> StoreResult<i64>;
    /// A key of `owner` by name.
    fn key_by_name(&mut self, owner_id: i64, name: &str) -> StoreResult<Option<KeyRecord>>;
    /// A key of `owner` by id.
    fn key_by_id(&mut self, owner_id: i64, id: i64) -> StoreResult<Option<KeyRecord>>;
    /// The keys of `owner`, by name; destroyed ones only with `include_destroyed`.
    fn list_keys(&mut self, owner_id: i64, include_destroyed: bool) -> StoreResult<Vec<KeyRecord>>;
    /// Saves a key's mutable metadata (status, settings, versions) and binding.
    fn update_key(&mut self, key: &KeyRecord) -> StoreResult<()>;
    /// Inserts a key version.
    fn insert_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()>;
    /// One version of a key.
    fn key_version(&mut self, key_id: i64, version: i64) -> StoreResult<Option<KeyVersionRecord>>;
    /// All versions of a key, oldest first.
    fn key_versions(&mut self, key_id: i64) -> StoreResult<Vec<KeyVersionRecord>>;
    /// Saves a version's material (`None` once destroyed), counters and binding.
    fn update_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()>;
    /// Appends to a key's lifecycle log.
    fn insert_key_event(
        &mut self,
        key_id: i64,
        actor_id: Option<i64>,
        event: &KeyEvent,
    ) -> StoreResult<()>;
    /// A key's lifecycle log, oldest first.
    fn key_events(&mut self, key_id: i64) -> StoreResult<Vec<KeyEvent>>;
    /// Appends to the usage log.
    fn insert_usage(&mut self, event: &UsageEvent) -> StoreResult<()>;

    /// The id the next inserted record will get (the write lock makes it stable).
    fn next_record_id(&mut self) -> StoreResult<i64>;
    /// Inserts a record with its id set.
    fn insert_record(&mut self, r: &RecordRow) -> StoreResult<()>;
    /// A record of `owner` by token, else the live record with that name, else the most
    /// recently deleted one with that name.
    fn record_by_ref(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>>;
    /// Saves a record's mutable fields.
    fn update_record(&mut self, r: &RecordRow) -> StoreResult<()>;
    /// Removes a record row (and with it the wrapped data key), all its earlier versions
    /// and its data keys wrapped for service accounts.
    fn delete_record(&mut self, id: i64) -> StoreResult<()>;
    /// Keeps an earlier version of a record: `r` as it was at `r.version` (its id, key,
    /// wrapped data key, ciphertext, `updated_at` as the time it was written, and MAC).
    fn insert_record_version(&mut self, r: &RecordRow) -> StoreResult<()>;
    /// The earlier versions of record `record_id`, newest first, as records (the record's
    /// token, owner, name and times with each version's own key, data key, `updated_at`
    /// and MAC), without ciphertexts.
    fn record_versions(&mut self, record_id: i64) -> StoreResult<Vec<RecordRow>>;
    /// One earlier version of a record, with its ciphertext.
    fn record_version(&mut self, record_id: i64, version: i64) -> StoreResult<Option<RecordRow>>;
    /// Removes the earlier versions of a record below `version`; returns how many.
    fn prune_record_versions(&mut self, record_id: i64, version: i64) -> StoreResult<u64>;
    /// Records of `owner` matching a filter.
    fn list_records(&mut self, owner_id: i64, filter: &RecordFilter)
    -> StoreResult<Vec<RecordRow>>;
    /// Records wrapped by `key_id` at a version below `version`, without ciphertexts.
    fn records_below_version(&mut self, key_id: i64, version: i64) -> StoreResult<Vec<RecordRow>>;
    /// The records a password identity protects, without ciphertexts.
    fn records_of_identity(&mut self, identity_id: i64) -> StoreResult<Vec<RecordRow>>;
    /// Saves a record's wrapped data key, key version and binding.
    fn set_record_dek(&mut self, r: &RecordRow) -> StoreResult<()>;
    /// How many records a password identity protects.
    fn identity_record_count(&mut self, identity_id: i64) -> StoreResult<i64>;
    /// The password identities of `owner`.
    fn identities(&mut self, owner_id: i64) -> StoreResult<Vec<IdentityRow>>;
    /// Inserts a password identity and returns its id.
    fn insert_identity(&mut self, row: &IdentityRow) -> StoreResult<i64>;
    /// Replaces an identity's wrapped key, KDF parameters, scheme and binding.
    fn update_identity(&mut self, row: &IdentityRow) -> StoreResult<()>;

    /// Inserts a service grant (its `id` is ignored) and returns the new id.
    fn insert_service_grant(&mut self, g: &ServiceGrant) -> StoreResult<i64>;
    /// The grants of a service account, by pattern.
    fn service_grants(&mut self, service_id: i64) -> StoreResult<Vec<ServiceGrant>>;
    /// The grants of every service account `owner_id` owns, by service and pattern.
    fn grants_of_owner(&mut self, owner_id: i64) -> StoreResult<Vec<ServiceGrant>>;
    /// Removes a grant.
    fn delete_service_grant(&mut self, id: i64) -> StoreResult<()>;
    /// Saves a record's data key wrapped for a service (replacing the one before).
    fn put_service_record_key(&mut self, k: &ServiceRecordKey) -> StoreResult<()>;
    /// A record's data key wrapped for a service.
    fn service_record_key(
        &mut self,
        service_id: i64,
        record_id: i64,
    ) -> StoreResult<Option<ServiceRecordKey>>;
    /// The ids of the records a service holds data keys of.
    fn service_record_ids(&mut self, service_id: i64) -> StoreResult<Vec<i64>>;
    /// Removes a service's data key of one record, or (`None`) all of them; returns how
    /// many.
    fn delete_service_record_keys(
        &mut self,
        service_id: i64,
        record_id: Option<i64>,
    ) -> StoreResult<u64>;
    /// The sessions of a user (for a service account: its tokens), newest first.
    fn user_sessions(&mut self, user_id: i64) -> StoreResult<Vec<SessionRecord>>;

    /// Saves a record share: a new one (`id` 0, returning its id) or the one for the same
    /// record and user or group, replaced (its id and creation time kept).
    fn put_record_share(&mut self, s: &RecordShare) -> StoreResult<i64>;
    /// The shares the filter selects, by record id, then user shares by user id, then
    /// group shares by group id, each with its record's token.
    fn record_shares(&mut self, filter: &ShareFilter) -> StoreResult<Vec<RecordShare>>;
    /// Removes the shares of a record: with one user or group (whatever the epoch), or
    /// (`None`) all; returns how many.
    fn delete_record_shares(&mut self, record_id: i64, to: Option<Grantee>) -> StoreResult<u64>;
    /// Saves a shared key version (replacing the one for the same key, user or group and
    /// version); returns its id.
    fn put_key_share(&mut self, s: &KeyShare) -> StoreResult<i64>;
    /// The shared key versions of a key and/or for a user (user shares only), by key,
    /// then user shares by user id, then group shares by group id, then version.
    fn key_shares(
        &mut self,
        key_id: Option<i64>,
        recipient_id: Option<i64>,
    ) -> StoreResult<Vec<KeyShare>>;
    /// Removes shared versions of a key: for one user or group or all, and only versions
    /// below `below` or all; returns how many.
    fn delete_key_shares(
        &mut self,
        key_id: i64,
        to: Option<Grantee>,
        below: Option<i64>,
    ) -> StoreResult<u64>;
    /// Saves a group: a new one (`id` 0, returning its id) or an existing one, replaced.
    fn put_group(&mut self, g: &GroupRow) -> StoreResult<i64>;
    /// A group by id.
    fn group_by_id(&mut self, id: i64) -> StoreResult<Option<GroupRow>>;
    /// A group by name (exact).
    fn group_by_name(&mut self, name: &str) -> StoreResult<Option<GroupRow>>;
    /// Every group, by name.
    fn groups(&mut self) -> StoreResult<Vec<GroupRow>>;
    /// Saves a member of a group: new, or the one for the same group and user replaced
    /// (its id kept); returns its id.
    fn put_group_member(&mut self, m: &GroupMember) -> StoreResult<i64>;
    /// The members of a group and/or the memberships of a user, by group id, then user id.
    fn group_members(
        &mut self,
        group_id: Option<i64>,
        user_id: Option<i64>,
    ) -> StoreResult<Vec<GroupMember>>;
    /// Removes a member of a group; returns how many rows (0 or 1).
    fn delete_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<u64>;
    /// Saves a recipient's write: new, or the one waiting for the same record replaced;
    /// returns its id.
    fn put_record_write(&mut self, w: &RecordWrite) -> StoreResult<i64>;
    /// The writes waiting for an owner and/or of one record, by record id.
    fn record_writes(
        &mut self,
        owner_id: Option<i64>,
        record_id: Option<i64>,
    ) -> StoreResult<Vec<RecordWrite>>;
    /// Removes the write waiting for a record; returns how many rows (0 or 1).
    fn delete_record_write(&mut self, record_id: i64) -> StoreResult<u64>;
    /// Saves a transfer: new, or the one of the same record replaced; returns its id.
    fn put_record_transfer(&mut self, t: &RecordTransfer) -> StoreResult<i64>;
    /// The transfers the filter selects, by record id.
    fn record_transfers(&mut self, filter: &TransferFilter) -> StoreResult<Vec<RecordTransfer>>;
    /// Notes when a transfer was taken in.
    fn set_transfer_taken(&mut self, id: i64, at: i64) -> StoreResult<()>;
    /// Removes the transfer of a record; returns how many rows (0 or 1).
    fn delete_record_transfer(&mut self, record_id: i64) -> StoreResult<u64>;
    /// A record of another owner, read for a recipient who authenticates it otherwise
    /// (the owner's signature over the share, and the value's AEAD): the row's binding is
    /// under the owner's key, which the reader does not hold. Storage reads it as
    /// `record_by_ref` does.
    fn shared_record(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>> {
        self.record_by_ref(owner_id, reference)
    }

    /// Usage events grouped by `by` (key, user, op or day): (group, count, bytes), for one
    /// user or everyone, since a time.
    fn usage_report(
        &mut self,
        by: UsageGroup,
        user_id: Option<i64>,
        since: Option<i64>,
    ) -> StoreResult<Vec<(String, i64, i64)>>;
}

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// By key name.
    Key,
    /// By user name.
    User,
    /// By operation.
    Op,
    /// By UTC day.
    Day,
}
