//! One transaction on the connection: every [`Tx`] method as one statement, with the
//! SQLite backend's semantics: the same rows in the same order, names bytewise, and a
//! unique violation of an insert or a record update reported without ending the
//! transaction.
//!
//! A statement's first run in a transaction is one round trip (its parameter types go
//! with it, so nothing is prepared first); a statement that runs again is prepared then
//! and reused, which halves the time of an import's thousands of inserts.

use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, Row, SimpleQueryMessage, Statement};
use zencrypt_core::crypto::kdf::KdfParams;
use zencrypt_core::model::{
    AuditEntry, AuditFilter, Credentials, Grantee, GroupMember, GroupRow, IdentityRow, KeyEvent,
    KeyRecord, KeyShare, KeyStatus, KeyVersionRecord, Outcome, RecordFilter, RecordOrder,
    RecordRow, RecordShare, RecordTransfer, RecordWrite, RecoveryWrap, Role, RowId, ServiceGrant,
    ServiceRecordKey, SessionRecord, ShareFilter, StoredRow, TransferFilter, UsageEvent, UserKeys,
    UserRecord, UserStatus,
};
use zencrypt_core::storage::schema::{ColumnType, Table, Value};
use zencrypt_core::storage::{NewUser, StoreError, StoreResult, Tx, UsageGroup};

use crate::error::{self, Redactor};

/// A statement parameter with its PostgreSQL type.
type Arg<'a> = (&'a (dyn ToSql + Sync), Type);

/// A Rust type bound as a parameter of one PostgreSQL type.
trait Pg: ToSql + Sync {
    /// The parameter's type.
    const TYPE: Type;
}

macro_rules! pg_types {
    ($($t:ty => $pg:ident),* $(,)?) => {
        $(impl Pg for $t {
            const TYPE: Type = Type::$pg;
        })*
    };
}

pg_types! {
    i64 => INT8,
    Option<i64> => INT8,
    bool => BOOL,
    Option<bool> => BOOL,
    &str => TEXT,
    String => TEXT,
    Option<String> => TEXT,
    Option<&str> => TEXT,
    &[u8] => BYTEA,
    Vec<u8> => BYTEA,
    Option<Vec<u8>> => BYTEA,
    Option<Vec<String>> => TEXT_ARRAY,
}

fn arg<T: Pg>(v: &T) -> Arg<'_> {
    (v, T::TYPE)
}

/// The parameters of a statement, each with its type.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$(arg(&$v)),*]
    };
}

static NULL_INT: Option<i64> = None;
static NULL_TEXT: Option<String> = None;
static NULL_BLOB: Option<Vec<u8>> = None;

/// Why a row could not be read.
enum Bad {
    /// The driver could not convert a column.
    Pg(postgres::Error),
    /// A column held a value the model does not know.
    Value(&'static str),
}

impl From<postgres::Error> for Bad {
    fn from(e: postgres::Error) -> Self {
        Bad::Pg(e)
    }
}

type Read<T> = Result<T, Bad>;

/// Reads one row of a scan as the stored row it is.
type ToStored = fn(&Row) -> Read<StoredRow>;

fn u32_at(r: &Row, i: usize, what: &'static str) -> Read<u32> {
    u32::try_from(r.try_get::<_, i64>(i)?).map_err(|_| Bad::Value(what))
}

fn flag_at(r: &Row, i: usize) -> Read<bool> {
    Ok(r.try_get::<_, i64>(i)? != 0)
}

const USER_COLUMNS: &str = "id, username, password_hash, role, status, kek_salt, kek_m_kib, \
     kek_t, kek_p, wrapped_user_key, created_at, last_login_at, must_change_password, rows_bound, \
     row_mac, recovery_salt, recovery_wrapped_key, recovery_created_at, owner_id, \
     public_key, signing_key, wrapped_keypair, key_pins";

const GRANT_COLUMNS: &str = "id, service_id, owner_id, pattern, created_at, row_mac";

fn grant_from_row(r: &Row) -> Read<ServiceGrant> {
    Ok(ServiceGrant {
        id: r.try_get(0)?,
        service_id: r.try_get(1)?,
        owner_id: r.try_get(2)?,
        pattern: r.try_get(3)?,
        created_at: r.try_get(4)?,
        mac: r.try_get(5)?,
    })
}

const AUDIT_COLUMNS: &str =
    "seq, at, actor_id, actor, action, target, outcome, detail, prev_mac, mac, state";

const SESSION_COLUMNS: &str =
    "id, user_id, created_at, expires_at, revoked_at, wrapped_user_key, row_mac";

const KEY_COLUMNS: &str = "id, owner_id, name, status, exportable, rotation_period, \
     expires_at, min_decrypt_version, latest_version, created_at, row_mac, share_digest";

const KEY_VERSION_COLUMNS: &str =
    "key_id, version, wrapped_material, created_at, encryptions, bytes, row_mac";

const IDENTITY_COLUMNS: &str = "id, owner_id, salt, kdf_m_kib, kdf_t, kdf_p, \
     wrapped_identity_key, created_at, kek_scheme, row_mac";

const RECORD_COLUMNS: &str = "id, token, owner_id, name, key_id, key_version, identity_id, \
     wrapped_dek, ciphertext, created_at, updated_at, expires_at, deleted_at, version, row_mac, \
     value_hash, share_digest";

/// An earlier version as a record row (see `Tx::record_versions`): the record's token,
/// owner, name and times, the version's own key, data key, ciphertext and MAC.
const VERSION_COLUMNS: &str = "v.record_id, r.token, r.owner_id, r.name, v.key_id, \
     v.key_version, v.identity_id, v.wrapped_dek, v.ciphertext, r.created_at, v.written_at, \
     r.expires_at, r.deleted_at, v.version, v.row_mac, v.value_hash, NULL::bytea";

/// [`VERSION_COLUMNS`] with an empty ciphertext.
const VERSION_COLUMNS_NO_VALUE: &str = "v.record_id, r.token, r.owner_id, r.name, v.key_id, \
     v.key_version, v.identity_id, v.wrapped_dek, ''::bytea, r.created_at, v.written_at, \
     r.expires_at, r.deleted_at, v.version, v.row_mac, v.value_hash, NULL::bytea";

/// The record columns with an empty ciphertext (listing, rewrapping, verifying).
const RECORD_META_COLUMNS: &str = "id, token, owner_id, name, key_id, key_version, \
     identity_id, wrapped_dek, ''::bytea, created_at, updated_at, expires_at, deleted_at, \
     version, row_mac, value_hash, share_digest";

fn user_from_row(r: &Row) -> Read<UserRecord> {
    let role: &str = r.try_get(3)?;
    let status: &str = r.try_get(4)?;
    Ok(UserRecord {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        role: Role::from_stored(role, r.try_get::<_, Option<i64>>(18)?.is_some())
            .ok_or(Bad::Value("users.role"))?,
        status: UserStatus::parse(status).ok_or(Bad::Value("users.status"))?,
        credentials: Credentials {
            password_hash: r.try_get(2)?,
            kek_salt: r.try_get(5)?,
            kek_params: KdfParams {
                m_kib: u32_at(r, 6, "users.kek_m_kib")?,
                t: u32_at(r, 7, "users.kek_t")?,
                p: u32_at(r, 8, "users.kek_p")?,
            },
            wrapped_user_key: r.try_get(9)?,
        },
        created_at: r.try_get(10)?,
        last_login_at: r.try_get(11)?,
        must_change_password: flag_at(r, 12)?,
        rows_bound: flag_at(r, 13)?,
        mac: r.try_get(14)?,
        recovery: match (r.try_get(15)?, r.try_get(16)?, r.try_get(17)?) {
            (Some(salt), Some(wrapped_user_key), Some(created_at)) => Some(RecoveryWrap {
                salt,
                wrapped_user_key,
                created_at,
            }),
            (None, None, None) => None,
            _ => return Err(Bad::Value("users.recovery_salt")),
        },
        owner_id: r.try_get(18)?,
        keys: UserKeys::from_columns(r.try_get(19)?, r.try_get(20)?, r.try_get(21)?)
            .map_err(|_| Bad::Value("users.public_key"))?,
        pins: r.try_get(22)?,
    })
}

const SHARE_COLUMNS: &str = "s.id, s.record_id, r.token, s.owner_id, s.recipient_id, s.version, \
     s.wrapped_dek, s.signature, s.grant_signature, s.created_at, s.group_id, s.epoch, s.can_write";

/// A share's grantee from its columns at `at` (user id, group id, epoch).
fn grantee_at(r: &Row, at: [usize; 3], what: &'static str) -> Read<Grantee> {
    Grantee::from_columns(r.try_get(at[0])?, r.try_get(at[1])?, r.try_get(at[2])?)
        .ok_or(Bad::Value(what))
}

const GROUP_COLUMNS: &str = "id, name, manager_id, recipient, epoch, history, members_digest, signature, created_at, \
     handovers";

fn group_from_row(r: &Row) -> Read<GroupRow> {
    Ok(GroupRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        manager_id: r.try_get(2)?,
        recipient: r.try_get(3)?,
        epoch: r.try_get(4)?,
        history: r.try_get(5)?,
        members_digest: r.try_get(6)?,
        signature: r.try_get(7)?,
        created_at: r.try_get(8)?,
        handovers: r.try_get(9)?,
    })
}

const MEMBER_COLUMNS: &str = "id, group_id, user_id, epoch, wrapped_identity, signature, added_at";

const TRANSFER_COLUMNS: &str = "t.id, t.record_id, r.token, t.owner_id, t.giver_id, \
     t.recipient_id, t.version, t.wrapped_dek, t.signature, t.created_at, t.taken_at";

fn transfer_from_row(r: &Row) -> Read<RecordTransfer> {
    Ok(RecordTransfer {
        id: r.try_get(0)?,
        record_id: r.try_get(1)?,
        record_token: r.try_get(2)?,
        owner_id: r.try_get(3)?,
        giver_id: r.try_get(4)?,
        recipient_id: r.try_get(5)?,
        version: r.try_get(6)?,
        wrapped_dek: r.try_get(7)?,
        signature: r.try_get(8)?,
        created_at: r.try_get(9)?,
        taken_at: r.try_get(10)?,
    })
}

const WRITE_COLUMNS: &str = "w.id, w.record_id, r.token, w.owner_id, w.writer_id, \
     w.base_version, w.ciphertext, w.wrapped_dek, w.signature, w.created_at";

fn write_from_row(r: &Row) -> Read<RecordWrite> {
    Ok(RecordWrite {
        id: r.try_get(0)?,
        record_id: r.try_get(1)?,
        record_token: r.try_get(2)?,
        owner_id: r.try_get(3)?,
        writer_id: r.try_get(4)?,
        base_version: r.try_get(5)?,
        ciphertext: r.try_get(6)?,
        wrapped_dek: r.try_get(7)?,
        signature: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

fn member_from_row(r: &Row) -> Read<GroupMember> {
    Ok(GroupMember {
        id: r.try_get(0)?,
        group_id: r.try_get(1)?,
        user_id: r.try_get(2)?,
        epoch: r.try_get(3)?,
        wrapped_identity: r.try_get(4)?,
        signature: r.try_get(5)?,
        added_at: r.try_get(6)?,
    })
}

fn share_from_row(r: &Row) -> Read<RecordShare> {
    Ok(RecordShare {
        id: r.try_get(0)?,
        record_id: r.try_get(1)?,
        record_token: r.try_get(2)?,
        owner_id: r.try_get(3)?,
        to: grantee_at(r, [4, 10, 11], "record_shares.recipient_id")?,
        version: r.try_get(5)?,
        can_write: flag_at(r, 12)?,
        wrapped_dek: r.try_get(6)?,
        signature: r.try_get(7)?,
        grant_signature: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

const KEY_SHARE_COLUMNS: &str = "id, key_id, key_name, owner_id, recipient_id, version, \
     wrapped_material, signature, grant_signature, created_at, group_id, epoch, can_write";

fn key_share_from_row(r: &Row) -> Read<KeyShare> {
    Ok(KeyShare {
        id: r.try_get(0)?,
        key_id: r.try_get(1)?,
        key_name: r.try_get(2)?,
        owner_id: r.try_get(3)?,
        to: grantee_at(r, [4, 10, 11], "key_shares.recipient_id")?,
        version: r.try_get(5)?,
        can_write: flag_at(r, 12)?,
        wrapped_material: r.try_get(6)?,
        signature: r.try_get(7)?,
        grant_signature: r.try_get(8)?,
        created_at: r.try_get(9)?,
    })
}

fn key_from_row(r: &Row) -> Read<KeyRecord> {
    let status: &str = r.try_get(3)?;
    Ok(KeyRecord {
        id: r.try_get(0)?,
        owner_id: r.try_get(1)?,
        name: r.try_get(2)?,
        status: KeyStatus::parse(status).ok_or(Bad::Value("keys.status"))?,
        exportable: flag_at(r, 4)?,
        rotation_period: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        min_decrypt_version: r.try_get(7)?,
        latest_version: r.try_get(8)?,
        created_at: r.try_get(9)?,
        mac: r.try_get(10)?,
        share_digest: r.try_get(11)?,
    })
}

/// A key version from the columns starting at `at`.
fn key_version_at(r: &Row, at: usize) -> Read<KeyVersionRecord> {
    Ok(KeyVersionRecord {
        key_id: r.try_get(at)?,
        version: r.try_get(at + 1)?,
        wrapped_material: r.try_get(at + 2)?,
        created_at: r.try_get(at + 3)?,
        encryptions: r.try_get(at + 4)?,
        bytes: r.try_get(at + 5)?,
        mac: r.try_get(at + 6)?,
    })
}

fn key_version_from_row(r: &Row) -> Read<KeyVersionRecord> {
    key_version_at(r, 0)
}

fn record_from_row(r: &Row) -> Read<RecordRow> {
    Ok(RecordRow {
        id: r.try_get(0)?,
        token: r.try_get(1)?,
        owner_id: r.try_get(2)?,
        name: r.try_get(3)?,
        key_id: r.try_get(4)?,
        key_version: r.try_get(5)?,
        identity_id: r.try_get(6)?,
        wrapped_dek: r.try_get(7)?,
        ciphertext: r.try_get(8)?,
        created_at: r.try_get(9)?,
        updated_at: r.try_get(10)?,
        expires_at: r.try_get(11)?,
        deleted_at: r.try_get(12)?,
        version: r.try_get(13)?,
        mac: r.try_get(14)?,
        value_hash: r.try_get(15)?,
        share_digest: r.try_get(16)?,
    })
}

fn identity_from_row(r: &Row) -> Read<IdentityRow> {
    Ok(IdentityRow {
        id: r.try_get(0)?,
        owner_id: r.try_get(1)?,
        salt: r.try_get(2)?,
        kdf: KdfParams {
            m_kib: u32_at(r, 3, "password_identities.kdf_m_kib")?,
            t: u32_at(r, 4, "password_identities.kdf_t")?,
            p: u32_at(r, 5, "password_identities.kdf_p")?,
        },
        wrapped_identity_key: r.try_get(6)?,
        created_at: r.try_get(7)?,
        kek_scheme: r.try_get(8)?,
        mac: r.try_get(9)?,
    })
}

fn session_from_row(r: &Row) -> Read<SessionRecord> {
    Ok(SessionRecord {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        created_at: r.try_get(2)?,
        expires_at: r.try_get(3)?,
        revoked_at: r.try_get(4)?,
        wrapped_user_key: r.try_get(5)?,
        mac: r.try_get(6)?,
    })
}

fn audit_from_row(r: &Row) -> Read<AuditEntry> {
    let outcome: &str = r.try_get(6)?;
    // A value outside ok/denied/failed can only come from editing the table: read the row
    // as failed with no MAC, so that verification names it instead of erroring out.
    let (outcome, damaged) = match outcome.parse::<Outcome>() {
        Ok(o) => (o, false),
        Err(_) => (Outcome::Failed, true),
    };
    let mac: Vec<u8> = r.try_get(9)?;
    Ok(AuditEntry {
        seq: r.try_get(0)?,
        at: r.try_get(1)?,
        actor_id: r.try_get(2)?,
        actor: r.try_get(3)?,
        action: r.try_get(4)?,
        target: r.try_get(5)?,
        outcome,
        detail: r.try_get(7)?,
        prev_mac: r.try_get(8)?,
        mac: if damaged { Vec::new() } else { mac },
        state: r.try_get(10)?,
    })
}

/// A transaction in progress; dropping it unfinished rolls it back.
pub(crate) struct PgTx<'a> {
    client: &'a mut Client,
    location: &'a str,
    redactor: &'a Redactor,
    /// Neither committed nor rolled back yet.
    open: bool,
    /// A statement failed, so the server has already ended the transaction.
    failed: bool,
    /// The statements run so far: `None` after the first run (sent with its parameter
    /// types, unprepared), prepared at the second and reused for the rest of the
    /// transaction. Kept per transaction, so that a pooler handing each transaction a
    /// server connection of its own sees no statement from another.
    statements: HashMap<String, Option<Statement>>,
}

impl<'a> PgTx<'a> {
    /// Begins a transaction with `begin` (one round trip, however many statements), which
    /// returns `rows` rows (the locked audit head of a write).
    pub(crate) fn begin(
        client: &'a mut Client,
        location: &'a str,
        redactor: &'a Redactor,
        begin: &str,
        rows: usize,
    ) -> StoreResult<PgTx<'a>> {
        let returned = match client.simple_query(begin) {
            Ok(messages) => messages
                .iter()
                .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
                .count(),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                return Err(error::statement(location, &e, redactor));
            }
        };
        if returned != rows {
            // Without its row the audit head locks nothing: writers would not serialise.
            let _ = client.batch_execute("ROLLBACK");
            return Err(StoreError::Corrupt {
                location: location.to_string(),
            });
        }
        Ok(PgTx {
            client,
            location,
            redactor,
            open: true,
            failed: false,
            statements: HashMap::new(),
        })
    }

    fn err(&mut self, e: &postgres::Error) -> StoreError {
        failure(&mut self.failed, self.location, self.redactor, e)
    }

    fn bad(&self, b: Bad) -> StoreError {
        match b {
            Bad::Pg(e) => error::statement(self.location, &e, self.redactor),
            Bad::Value(what) => StoreError::Other {
                location: self.location.to_string(),
                message: format!("unexpected value in {what}"),
            },
        }
    }

    /// The prepared statement for `sql` when it runs for the second time or later in this
    /// transaction (preparing it at the second run).
    fn prepared(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<Option<Statement>, postgres::Error> {
        match self.statements.get_mut(sql) {
            None => {
                self.statements.insert(sql.to_string(), None);
                Ok(None)
            }
            Some(Some(statement)) => Ok(Some(statement.clone())),
            Some(slot) => {
                let types: Vec<Type> = args.iter().map(|a| a.1.clone()).collect();
                let statement = self.client.prepare_typed(sql, &types)?;
                *slot = Some(statement.clone());
                Ok(Some(statement))
            }
        }
    }

    fn rows(&mut self, sql: &str, args: &[Arg<'_>]) -> StoreResult<Vec<Row>> {
        let result = match self.prepared(sql, args) {
            Ok(Some(statement)) => {
                let values: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.0).collect();
                self.client.query(&statement, &values)
            }
            Ok(None) => self.client.query_typed(sql, args),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.err(&e))
    }

    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> StoreResult<u64> {
        let result = match self.prepared(sql, args) {
            Ok(Some(statement)) => {
                let values: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.0).collect();
                self.client.execute(&statement, &values)
            }
            Ok(None) => self.client.execute_typed(sql, args),
            Err(e) => Err(e),
        };
        result.map_err(|e| self.err(&e))
    }

    fn all<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl Fn(&Row) -> Read<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = self.rows(sql, args)?;
        rows.iter().map(|r| f(r).map_err(|b| self.bad(b))).collect()
    }

    fn one<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row) -> Read<T>,
    ) -> StoreResult<Option<T>> {
        let rows = self.rows(sql, args)?;
        match rows.first() {
            Some(r) => f(r).map(Some).map_err(|b| self.bad(b)),
            None => Ok(None),
        }
    }

    fn count(&mut self, sql: &str, args: &[Arg<'_>]) -> StoreResult<i64> {
        Ok(self.one(sql, args, |r| Ok(r.try_get(0)?))?.unwrap_or(0))
    }

    /// Streams the rows of `sql` to `visit` until it returns false.
    fn each(
        &mut self,
        sql: &str,
        visit: &mut dyn FnMut(&Row) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let started = self
            .client
            .query_typed_raw(sql, std::iter::empty::<Arg<'_>>());
        let mut rows = match started {
            Ok(rows) => rows,
            Err(e) => return Err(failure(&mut self.failed, self.location, self.redactor, &e)),
        };
        loop {
            match rows.next() {
                Ok(Some(row)) => {
                    if !visit(&row)? {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(failure(&mut self.failed, self.location, self.redactor, &e));
                }
            }
        }
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl Tx for PgTx<'_> {
    fn commit(mut self: Box<Self>) -> StoreResult<()> {
        if self.failed {
            return Err(StoreError::Other {
                location: self.location.to_string(),
                message: "an earlier statement of this transaction failed, so nothing was \
                          committed"
                    .into(),
            });
        }
        self.open = false;
        match self.client.batch_execute("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) => Err(error::statement(self.location, &e, self.redactor)),
        }
    }

    fn dump(
        &mut self,
        table: &Table,
        visit: &mut dyn FnMut(Vec<Value>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let order: Vec<String> = table
            .key
            .iter()
            .map(|k| {
                let text = table
                    .columns
                    .iter()
                    .any(|c| c.name == *k && c.kind == ColumnType::Text);
                if text {
                    format!("{k} COLLATE \"C\"")
                } else {
                    (*k).to_string()
                }
            })
            .collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            table.column_list(),
            table.name,
            order.join(", ")
        );
        let location = self.location;
        let redactor = self.redactor;
        self.each(&sql, &mut |r| {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, c) in table.columns.iter().enumerate() {
                let v = match c.kind {
                    ColumnType::Int => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
                    ColumnType::Text => r
                        .try_get::<_, Option<String>>(i)
                        .map(|v| v.map(Value::Text)),
                    ColumnType::Blob => r
                        .try_get::<_, Option<Vec<u8>>>(i)
                        .map(|v| v.map(Value::Blob)),
                };
                let v = v.map_err(|e| error::statement(location, &e, redactor))?;
                values.push(v.unwrap_or(Value::Null));
            }
            visit(values)?;
            Ok(true)
        })
    }

    fn load(&mut self, table: &Table, row: &[Value]) -> StoreResult<()> {
        let bad = || StoreError::Invalid {
            what: format!("a row of {}", table.name),
        };
        if row.len() != table.columns.len() {
            return Err(bad());
        }
        let mut args: Vec<Arg<'_>> = Vec::with_capacity(row.len());
        for (c, v) in table.columns.iter().zip(row) {
            args.push(match (c.kind, v) {
                (ColumnType::Int, Value::Int(n)) => arg(n),
                (ColumnType::Text, Value::Text(t)) => arg(t),
                (ColumnType::Blob, Value::Blob(b)) => arg(b),
                (ColumnType::Int, Value::Null) => arg(&NULL_INT),
                (ColumnType::Text, Value::Null) => arg(&NULL_TEXT),
                (ColumnType::Blob, Value::Null) => arg(&NULL_BLOB),
                _ => return Err(bad()),
            });
        }
        let placeholders: Vec<String> = (1..=row.len()).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            table.name,
            table.column_list(),
            placeholders.join(", ")
        );
        if table.replace {
            let set: Vec<String> = table
                .columns
                .iter()
                .filter(|c| !table.key.contains(&c.name))
                .map(|c| format!("{0} = excluded.{0}", c.name))
                .collect();
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                table.key.join(", "),
                set.join(", ")
            ));
        }
        self.exec(&sql, &args).map(drop)
    }

    fn database_id(&mut self) -> StoreResult<Vec<u8>> {
        self.one(
            "SELECT value FROM meta WHERE key = 'database_id'",
            &[],
            |r| Ok(r.try_get(0)?),
        )?
        .ok_or_else(|| StoreError::NotZencrypt {
            location: self.location.to_string(),
        })
    }

    fn meta(&mut self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.one("SELECT value FROM meta WHERE key = $1", args![key], |r| {
            Ok(r.try_get(0)?)
        })
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            args![key, value],
        )
        .map(drop)
    }

    fn user_count(&mut self) -> StoreResult<i64> {
        self.count("SELECT count(*) FROM users", &[])
    }

    fn insert_user(&mut self, u: &NewUser<'_>) -> StoreResult<i64> {
        let c = u.credentials;
        let id = self.one(
            "INSERT INTO users (id, username, password_hash, role, status, kek_salt, kek_m_kib, \
             kek_t, kek_p, wrapped_user_key, created_at, must_change_password, rows_bound) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, 1 \
             FROM users ON CONFLICT DO NOTHING RETURNING id",
            args![
                u.username,
                c.password_hash,
                u.role.stored(),
                c.kek_salt,
                i64::from(c.kek_params.m_kib),
                i64::from(c.kek_params.t),
                i64::from(c.kek_params.p),
                c.wrapped_user_key,
                u.created_at,
                i64::from(u.must_change_password)
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Duplicate {
            what: format!("user '{}'", u.username),
        })
    }

    fn user_by_name(&mut self, username: &str) -> StoreResult<Option<UserRecord>> {
        // lower() under the C collation folds ASCII letters only, like SQLite's NOCASE.
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE lower(username COLLATE \"C\") = lower($1 COLLATE \"C\") \
             ORDER BY username = $1 DESC, id LIMIT 1"
        );
        self.one(&sql, args![username], user_from_row)
    }

    fn user_by_id(&mut self, id: i64) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.one(&sql, args![id], user_from_row)
    }

    fn list_users(&mut self) -> StoreResult<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username COLLATE \"C\"");
        self.all(&sql, &[], user_from_row)
    }

    fn update_user(&mut self, u: &UserRecord) -> StoreResult<()> {
        let c = &u.credentials;
        self.exec(
            "UPDATE users SET role = $2, status = $3, password_hash = $4, kek_salt = $5, \
             kek_m_kib = $6, kek_t = $7, kek_p = $8, wrapped_user_key = $9, \
             must_change_password = $10, rows_bound = $11, row_mac = $12, \
             recovery_salt = $13, recovery_wrapped_key = $14, recovery_created_at = $15, \
             public_key = $16, signing_key = $17, wrapped_keypair = $18, key_pins = $19 \
             WHERE id = $1",
            args![
                u.id,
                u.role.stored(),
                u.status.as_str(),
                c.password_hash,
                c.kek_salt,
                i64::from(c.kek_params.m_kib),
                i64::from(c.kek_params.t),
                i64::from(c.kek_params.p),
                c.wrapped_user_key,
                i64::from(u.must_change_password),
                i64::from(u.rows_bound),
                u.mac,
                u.recovery.as_ref().map(|r| r.salt.clone()),
                u.recovery.as_ref().map(|r| r.wrapped_user_key.clone()),
                u.recovery.as_ref().map(|r| r.created_at),
                u.keys.as_ref().map(|k| k.public.recipient.clone()),
                u.keys.as_ref().map(|k| k.public.signing.to_vec()),
                u.keys.as_ref().map(|k| k.wrapped.clone()),
                u.pins
            ],
        )?;
        // Only a new service account's row gets an owner, by an administrator: members'
        // database role needs no privilege on the column (README, "A team vault on
        // PostgreSQL").
        if u.owner_id.is_some() {
            self.exec(
                "UPDATE users SET owner_id = $2 WHERE id = $1 AND owner_id IS DISTINCT FROM $2",
                args![u.id, u.owner_id],
            )?;
        }
        Ok(())
    }

    fn set_last_login(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE users SET last_login_at = $2 WHERE id = $1",
            args![id, at],
        )
        .map(drop)
    }

    fn set_row_mac(&mut self, row: &RowId, mac: &[u8]) -> StoreResult<()> {
        match row {
            RowId::User(id) => self.exec(
                "UPDATE users SET row_mac = $2 WHERE id = $1",
                args![*id, mac],
            ),
            RowId::Key(id) => self.exec(
                "UPDATE keys SET row_mac = $2 WHERE id = $1",
                args![*id, mac],
            ),
            RowId::KeyVersion(k, v) => self.exec(
                "UPDATE key_versions SET row_mac = $3 WHERE key_id = $1 AND version = $2",
                args![*k, *v, mac],
            ),
            RowId::Record(id) => self.exec(
                "UPDATE records SET row_mac = $2 WHERE id = $1",
                args![*id, mac],
            ),
            RowId::Identity(id) => self.exec(
                "UPDATE password_identities SET row_mac = $2 WHERE id = $1",
                args![*id, mac],
            ),
            RowId::Session(id) => self.exec(
                "UPDATE sessions SET row_mac = $2 WHERE id = $1",
                args![id.as_str(), mac],
            ),
            RowId::RecordVersion(id, v) => self.exec(
                "UPDATE record_versions SET row_mac = $3 WHERE record_id = $1 AND version = $2",
                args![*id, *v, mac],
            ),
            RowId::ServiceGrant(id) => self.exec(
                "UPDATE service_grants SET row_mac = $2 WHERE id = $1",
                args![*id, mac],
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
        let redactor = self.redactor;
        let bad = |b: Bad| match b {
            Bad::Pg(e) => error::statement(location, &e, redactor),
            Bad::Value(what) => StoreError::Other {
                location: location.to_string(),
                message: format!("unexpected value in {what}"),
            },
        };
        let mut going = true;
        let scans: [(String, ToStored); 12] = [
            (
                format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"),
                |r| user_from_row(r).map(StoredRow::User),
            ),
            (format!("SELECT {KEY_COLUMNS} FROM keys ORDER BY id"), |r| {
                key_from_row(r).map(StoredRow::Key)
            }),
            (
                "SELECT k.owner_id, v.key_id, v.version, v.wrapped_material, v.created_at, \
                 v.encryptions, v.bytes, v.row_mac FROM key_versions v \
                 JOIN keys k ON k.id = v.key_id ORDER BY v.key_id, v.version"
                    .to_string(),
                |r| Ok(StoredRow::KeyVersion(r.try_get(0)?, key_version_at(r, 1)?)),
            ),
            (
                format!("SELECT {RECORD_META_COLUMNS} FROM records ORDER BY id"),
                |r| record_from_row(r).map(StoredRow::Record),
            ),
            (
                format!("SELECT {IDENTITY_COLUMNS} FROM password_identities ORDER BY id"),
                |r| identity_from_row(r).map(StoredRow::Identity),
            ),
            (
                format!("SELECT {GRANT_COLUMNS} FROM service_grants ORDER BY id"),
                |r| grant_from_row(r).map(StoredRow::ServiceGrant),
            ),
            (
                format!(
                    "SELECT {SHARE_COLUMNS} FROM record_shares s \
                     JOIN records r ON r.id = s.record_id ORDER BY s.id"
                ),
                |r| share_from_row(r).map(StoredRow::RecordShare),
            ),
            (
                format!("SELECT {KEY_SHARE_COLUMNS} FROM key_shares ORDER BY id"),
                |r| key_share_from_row(r).map(StoredRow::KeyShare),
            ),
            (
                format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY id"),
                |r| group_from_row(r).map(StoredRow::Group),
            ),
            (
                format!("SELECT {MEMBER_COLUMNS} FROM group_members ORDER BY id"),
                |r| member_from_row(r).map(StoredRow::GroupMember),
            ),
            (
                format!(
                    "SELECT {WRITE_COLUMNS} FROM record_writes w JOIN records r ON r.id = w.record_id ORDER BY w.id"
                ),
                |r| write_from_row(r).map(StoredRow::RecordWrite),
            ),
            (
                format!(
                    "SELECT {TRANSFER_COLUMNS} FROM record_transfers t \
                     JOIN records r ON r.id = t.record_id ORDER BY t.id"
                ),
                |r| transfer_from_row(r).map(StoredRow::RecordTransfer),
            ),
        ];
        for (sql, map) in scans {
            self.each(&sql, &mut |r| {
                going = visit(map(r).map_err(bad)?);
                Ok(going)
            })?;
            if !going {
                break;
            }
        }
        Ok(())
    }

    fn unbound_rows(&mut self, owner_id: i64) -> StoreResult<Vec<StoredRow>> {
        let mut out = Vec::new();
        let versions = self.all(
            "SELECT v.key_id, v.version, v.wrapped_material, v.created_at, v.encryptions, \
             v.bytes, v.row_mac FROM key_versions v JOIN keys k ON k.id = v.key_id \
             WHERE k.owner_id = $1 AND octet_length(v.row_mac) = 0 ORDER BY v.key_id, v.version",
            args![owner_id],
            key_version_from_row,
        )?;
        out.extend(
            versions
                .into_iter()
                .map(|v| StoredRow::KeyVersion(owner_id, v)),
        );
        let keys = self.all(
            &format!(
                "SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = $1 AND octet_length(row_mac) = 0 \
                 ORDER BY id"
            ),
            args![owner_id],
            key_from_row,
        )?;
        out.extend(keys.into_iter().map(StoredRow::Key));
        let records = self.all(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM records WHERE owner_id = $1 \
                 AND octet_length(row_mac) = 0 ORDER BY id"
            ),
            args![owner_id],
            record_from_row,
        )?;
        out.extend(records.into_iter().map(StoredRow::Record));
        let identities = self.all(
            &format!(
                "SELECT {IDENTITY_COLUMNS} FROM password_identities \
                 WHERE owner_id = $1 AND octet_length(row_mac) = 0 ORDER BY id"
            ),
            args![owner_id],
            identity_from_row,
        )?;
        out.extend(identities.into_iter().map(StoredRow::Identity));
        Ok(out)
    }

    fn active_admin_count(&mut self) -> StoreResult<i64> {
        self.count(
            "SELECT count(*) FROM users WHERE role = 'admin' AND status = 'active' AND owner_id IS NULL",
            &[],
        )
    }

    fn insert_session(&mut self, s: &SessionRecord) -> StoreResult<()> {
        let n = self.exec(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, \
             wrapped_user_key, row_mac) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT DO NOTHING",
            args![
                s.id,
                s.user_id,
                s.created_at,
                s.expires_at,
                s.revoked_at,
                s.wrapped_user_key,
                s.mac
            ],
        )?;
        duplicate_unless(n > 0, "a row with the same unique value")
    }

    fn session(&mut self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1");
        self.one(&sql, args![id], session_from_row)
    }

    fn revoke_session(&mut self, id: &str, at: i64) -> StoreResult<bool> {
        self.exec(
            "UPDATE sessions SET revoked_at = $2, wrapped_user_key = ''::bytea \
             WHERE id = $1 AND revoked_at IS NULL",
            args![id, at],
        )
        .map(|n| n > 0)
    }

    fn revoke_user_sessions(
        &mut self,
        user_id: i64,
        keep: Option<&str>,
        at: i64,
    ) -> StoreResult<u64> {
        // The two updates touch disjoint rows (expired, and not expired), so one statement
        // does both.
        let n = self.count(
            "WITH wiped AS (UPDATE sessions SET wrapped_user_key = ''::bytea \
                 WHERE user_id = $1 AND expires_at <= $3 AND octet_length(wrapped_user_key) > 0), \
             revoked AS (UPDATE sessions SET revoked_at = $3, wrapped_user_key = ''::bytea \
                 WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $3 \
                 AND ($2::text IS NULL OR id <> $2) RETURNING 1) \
             SELECT count(*) FROM revoked",
            args![user_id, keep, at],
        )?;
        Ok(n.unsigned_abs())
    }

    fn shred_expired_sessions(&mut self, now: i64) -> StoreResult<u64> {
        self.exec(
            "UPDATE sessions SET wrapped_user_key = ''::bytea \
             WHERE expires_at <= $1 AND octet_length(wrapped_user_key) > 0",
            args![now],
        )
    }

    fn set_session_user_key(&mut self, id: &str, wrapped_user_key: &[u8]) -> StoreResult<()> {
        self.exec(
            "UPDATE sessions SET wrapped_user_key = $2 WHERE id = $1 AND revoked_at IS NULL",
            args![id, wrapped_user_key],
        )
        .map(drop)
    }

    fn audit_head(&mut self) -> StoreResult<Option<(i64, Vec<u8>)>> {
        self.one(
            "SELECT seq, mac FROM audit_log ORDER BY seq DESC LIMIT 1",
            &[],
            |r| Ok((r.try_get(0)?, r.try_get(1)?)),
        )
    }

    fn insert_audit(&mut self, a: &AuditEntry) -> StoreResult<()> {
        let n = self.count(
            "WITH entry AS (INSERT INTO audit_log (seq, at, actor_id, actor, action, target, \
                 outcome, detail, prev_mac, mac, state) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT DO NOTHING RETURNING seq, mac), \
             head AS (UPDATE audit_head SET seq = entry.seq, mac = entry.mac FROM entry \
                 WHERE audit_head.id = 1 AND audit_head.seq < entry.seq RETURNING 1) \
             SELECT count(*) FROM entry",
            args![
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
        duplicate_unless(n > 0, "a row with the same unique value")
    }

    fn audit_has_state(&mut self) -> StoreResult<bool> {
        Ok(self
            .one(
                "SELECT 1::bigint FROM audit_log WHERE octet_length(state) > 0 LIMIT 1",
                &[],
                |r| Ok(r.try_get::<_, i64>(0)?),
            )?
            .is_some())
    }

    fn audit_entry(&mut self, seq: i64) -> StoreResult<Option<AuditEntry>> {
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq = $1");
        self.one(&sql, args![seq], audit_from_row)
    }

    fn list_audit(&mut self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let (action_exact, action_prefix) = match &f.action {
            Some(a) if a.ends_with('.') => (None, Some(format!("{a}%"))),
            Some(a) => (Some(a.clone()), None),
            None => (None, None),
        };
        // ILIKE under the C collation with no escape character is SQLite's LIKE: ASCII
        // letters match ignoring case, `%` and `_` are wildcards.
        let sql = format!(
            "SELECT * FROM (SELECT {AUDIT_COLUMNS} FROM audit_log \
             WHERE ($1::bigint IS NULL OR actor_id = $1) AND ($2::text IS NULL OR actor = $2) \
             AND ($3::text IS NULL OR action = $3) \
             AND ($4::text IS NULL OR action ILIKE $4 ESCAPE '') \
             AND ($5::text IS NULL OR outcome = $5) AND ($6::bigint IS NULL OR at >= $6) \
             ORDER BY seq DESC LIMIT $7) AS recent ORDER BY seq"
        );
        let outcome: Option<&str> = f.outcome.map(|o| o.as_str());
        let limit: Option<i64> = f.limit.map(i64::from);
        self.all(
            &sql,
            args![
                f.actor_id,
                f.actor,
                action_exact,
                action_prefix,
                outcome,
                f.since,
                limit
            ],
            audit_from_row,
        )
    }

    fn scan_audit(&mut self, visit: &mut dyn FnMut(AuditEntry) -> bool) -> StoreResult<()> {
        let location = self.location;
        let redactor = self.redactor;
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq");
        self.each(&sql, &mut |r| {
            let entry = audit_from_row(r).map_err(|b| match b {
                Bad::Pg(e) => error::statement(location, &e, redactor),
                Bad::Value(what) => StoreError::Other {
                    location: location.to_string(),
                    message: format!("unexpected value in {what}"),
                },
            })?;
            Ok(visit(entry))
        })
    }

    fn insert_key(&mut self, k: &KeyRecord) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO keys (id, owner_id, name, status, exportable, rotation_period, \
             expires_at, min_decrypt_version, latest_version, created_at, row_mac) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM keys \
             ON CONFLICT DO NOTHING RETURNING id",
            args![
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
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Duplicate {
            what: format!("key '{}'", k.name),
        })
    }

    fn key_by_name(&mut self, owner_id: i64, name: &str) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = $1 AND name = $2");
        self.one(&sql, args![owner_id, name], key_from_row)
    }

    fn key_by_id(&mut self, owner_id: i64, id: i64) -> StoreResult<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = $1 AND id = $2");
        self.one(&sql, args![owner_id, id], key_from_row)
    }

    fn list_keys(&mut self, owner_id: i64, include_destroyed: bool) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM keys WHERE owner_id = $1 \
             AND ($2 OR status <> 'destroyed') ORDER BY name COLLATE \"C\""
        );
        self.all(&sql, args![owner_id, include_destroyed], key_from_row)
    }

    fn update_key(&mut self, k: &KeyRecord) -> StoreResult<()> {
        self.exec(
            "UPDATE keys SET status = $2, exportable = $3, rotation_period = $4, expires_at = $5, \
             min_decrypt_version = $6, latest_version = $7, row_mac = $8, share_digest = $9 \
             WHERE id = $1",
            args![
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
        let n = self.exec(
            "INSERT INTO key_versions (key_id, version, wrapped_material, created_at, \
             encryptions, bytes, row_mac) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT DO NOTHING",
            args![
                v.key_id,
                v.version,
                v.wrapped_material,
                v.created_at,
                v.encryptions,
                v.bytes,
                v.mac
            ],
        )?;
        duplicate_unless(n > 0, "a row with the same unique value")
    }

    fn key_version(&mut self, key_id: i64, version: i64) -> StoreResult<Option<KeyVersionRecord>> {
        let sql = format!(
            "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = $1 AND version = $2"
        );
        self.one(&sql, args![key_id, version], key_version_from_row)
    }

    fn key_versions(&mut self, key_id: i64) -> StoreResult<Vec<KeyVersionRecord>> {
        let sql = format!(
            "SELECT {KEY_VERSION_COLUMNS} FROM key_versions WHERE key_id = $1 ORDER BY version"
        );
        self.all(&sql, args![key_id], key_version_from_row)
    }

    fn update_key_version(&mut self, v: &KeyVersionRecord) -> StoreResult<()> {
        self.exec(
            "UPDATE key_versions SET wrapped_material = $3, encryptions = $4, bytes = $5, \
             row_mac = $6 WHERE key_id = $1 AND version = $2",
            args![
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
            "INSERT INTO key_events (id, key_id, at, event, version, actor_id, actor, detail) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7 FROM key_events",
            args![
                key_id, e.at, e.event, e.version, actor_id, e.actor, e.detail
            ],
        )
        .map(drop)
    }

    fn key_events(&mut self, key_id: i64) -> StoreResult<Vec<KeyEvent>> {
        self.all(
            "SELECT at, event, version, actor, detail FROM key_events WHERE key_id = $1 ORDER BY id",
            args![key_id],
            |r| {
                Ok(KeyEvent {
                    at: r.try_get(0)?,
                    event: r.try_get(1)?,
                    version: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            },
        )
    }

    fn insert_usage(&mut self, u: &UsageEvent) -> StoreResult<()> {
        self.exec(
            "INSERT INTO usage_events (id, at, user_id, key_id, key_version, record_id, \
             operation, bytes, outcome) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8 FROM usage_events",
            args![
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
        // records_id_high holds the highest id ever deleted: an id is never handed out
        // twice, even after a purge (SQLite's AUTOINCREMENT).
        self.count(
            "SELECT greatest(coalesce((SELECT max(id) FROM records), 0), \
             (SELECT last_value FROM records_id_high)) + 1",
            &[],
        )
    }

    fn insert_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        let n = self.exec(
            "INSERT INTO records (id, token, owner_id, name, key_id, key_version, identity_id, \
             wrapped_dek, ciphertext, created_at, updated_at, expires_at, deleted_at, version, \
             row_mac, value_hash, share_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT DO NOTHING",
            args![
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
        )?;
        duplicate_unless(n > 0, "a record with this token or name")
    }

    fn record_by_ref(&mut self, owner_id: i64, reference: &str) -> StoreResult<Option<RecordRow>> {
        // The token first, else the live record with the name, else the most recently
        // deleted one: one statement, one round trip.
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE owner_id = $1 \
             AND (token = $2 OR name = $2) \
             ORDER BY token = $2 DESC, deleted_at IS NULL DESC, deleted_at DESC, id DESC LIMIT 1"
        );
        self.one(&sql, args![owner_id, reference], record_from_row)
    }

    fn update_record(&mut self, r: &RecordRow) -> StoreResult<()> {
        // A name another live record of the owner has is reported before the update, so
        // that the transaction goes on (as it does on SQLite) instead of being aborted.
        let clash = self.one(
            "WITH clash AS (SELECT 1 FROM records o JOIN records r ON r.id = $1 \
                 WHERE $2::text IS NOT NULL AND $10::bigint IS NULL AND o.owner_id = r.owner_id \
                 AND o.name = $2 AND o.deleted_at IS NULL AND o.id <> $1 LIMIT 1), \
             saved AS (UPDATE records SET name = $2, key_id = $3, key_version = $4, \
                 identity_id = $5, wrapped_dek = $6, ciphertext = $7, updated_at = $8, \
                 expires_at = $9, deleted_at = $10, version = $11, row_mac = $12, \
                 value_hash = $13, share_digest = $14 \
                 WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM clash) RETURNING 1) \
             SELECT EXISTS (SELECT 1 FROM clash)",
            args![
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
            |row| Ok(row.try_get::<_, bool>(0)?),
        )?;
        duplicate_unless(clash != Some(true), "a live record with this name")
    }

    fn delete_record(&mut self, id: i64) -> StoreResult<()> {
        self.exec(
            "DELETE FROM record_versions WHERE record_id = $1",
            args![id],
        )?;
        self.exec(
            "DELETE FROM service_record_keys WHERE record_id = $1",
            args![id],
        )?;
        self.exec("DELETE FROM record_shares WHERE record_id = $1", args![id])?;
        self.exec("DELETE FROM record_writes WHERE record_id = $1", args![id])?;
        self.exec(
            "DELETE FROM record_transfers WHERE record_id = $1",
            args![id],
        )?;
        self.exec(
            "WITH gone AS (DELETE FROM records WHERE id = $1 RETURNING id) \
             SELECT setval('records_id_high', g.id) FROM (SELECT max(id) AS id FROM gone) g \
             WHERE g.id > (SELECT last_value FROM records_id_high)",
            args![id],
        )
        .map(drop)
    }

    fn insert_record_version(&mut self, r: &RecordRow) -> StoreResult<()> {
        self.exec(
            "INSERT INTO record_versions (record_id, version, key_id, key_version, identity_id, \
             wrapped_dek, ciphertext, written_at, row_mac, value_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            args![
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
                 ON r.id = v.record_id WHERE v.record_id = $1 ORDER BY v.version DESC"
            ),
            args![record_id],
            record_from_row,
        )
    }

    fn record_version(&mut self, record_id: i64, version: i64) -> StoreResult<Option<RecordRow>> {
        self.one(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM record_versions v JOIN records r \
                 ON r.id = v.record_id WHERE v.record_id = $1 AND v.version = $2"
            ),
            args![record_id, version],
            record_from_row,
        )
    }

    fn prune_record_versions(&mut self, record_id: i64, version: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM record_versions WHERE record_id = $1 AND version < $2",
            args![record_id, version],
        )
    }

    fn list_records(&mut self, owner_id: i64, f: &RecordFilter) -> StoreResult<Vec<RecordRow>> {
        let dir = if f.ascending { "ASC" } else { "DESC" };
        // NULLs (unnamed, never expiring) sort first ascending and last descending, on
        // every backend; names compare bytewise.
        let order = match f.order_by {
            RecordOrder::Created => format!("created_at {dir}"),
            RecordOrder::Updated => format!("updated_at {dir}"),
            RecordOrder::Name => format!("name IS NOT NULL {dir}, name COLLATE \"C\" {dir}"),
            RecordOrder::Expires => format!("expires_at IS NOT NULL {dir}, expires_at {dir}"),
        };
        let columns = if f.with_values {
            RECORD_COLUMNS
        } else {
            RECORD_META_COLUMNS
        };
        let sql = format!(
            "SELECT {columns} FROM records WHERE owner_id = $1 \
             AND ($2::text[] IS NULL OR token = ANY($2)) \
             AND ($3::bigint IS NULL OR key_id = $3) \
             AND ($4::boolean IS NULL OR (deleted_at IS NOT NULL) = $4) \
             AND ($5::boolean IS NULL OR (expires_at IS NOT NULL AND expires_at <= $6) = $5) \
             ORDER BY {order}, id {dir} LIMIT $7 OFFSET $8"
        );
        let tokens = (!f.tokens.is_empty()).then(|| f.tokens.clone());
        // As on SQLite, a negative limit is no limit and a negative offset is none.
        let limit = f.limit.filter(|n| *n >= 0);
        let offset = f.offset.max(0);
        self.all(
            &sql,
            args![
                owner_id, tokens, f.key_id, f.deleted, f.expired, f.now, limit, offset
            ],
            record_from_row,
        )
    }

    fn records_below_version(&mut self, key_id: i64, version: i64) -> StoreResult<Vec<RecordRow>> {
        let sql = format!(
            "SELECT {RECORD_META_COLUMNS} FROM records WHERE key_id = $1 AND key_version < $2 \
             ORDER BY id"
        );
        self.all(&sql, args![key_id, version], record_from_row)
    }

    fn records_of_identity(&mut self, identity_id: i64) -> StoreResult<Vec<RecordRow>> {
        let sql =
            format!("SELECT {RECORD_META_COLUMNS} FROM records WHERE identity_id = $1 ORDER BY id");
        self.all(&sql, args![identity_id], record_from_row)
    }

    fn set_record_dek(&mut self, r: &RecordRow) -> StoreResult<()> {
        self.exec(
            "UPDATE records SET key_version = $2, wrapped_dek = $3, row_mac = $4 WHERE id = $1",
            args![r.id, r.key_version, r.wrapped_dek, r.mac],
        )
        .map(drop)
    }

    fn identity_record_count(&mut self, identity_id: i64) -> StoreResult<i64> {
        self.count(
            "SELECT count(*) FROM records WHERE identity_id = $1",
            args![identity_id],
        )
    }

    fn identities(&mut self, owner_id: i64) -> StoreResult<Vec<IdentityRow>> {
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM password_identities WHERE owner_id = $1 ORDER BY id"
        );
        self.all(&sql, args![owner_id], identity_from_row)
    }

    fn insert_identity(&mut self, row: &IdentityRow) -> StoreResult<i64> {
        self.count(
            "INSERT INTO password_identities (id, owner_id, salt, kdf_m_kib, kdf_t, kdf_p, \
             wrapped_identity_key, created_at, kek_scheme, row_mac) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             FROM password_identities RETURNING id",
            args![
                row.owner_id,
                row.salt,
                i64::from(row.kdf.m_kib),
                i64::from(row.kdf.t),
                i64::from(row.kdf.p),
                row.wrapped_identity_key,
                row.created_at,
                row.kek_scheme,
                row.mac
            ],
        )
    }

    fn update_identity(&mut self, row: &IdentityRow) -> StoreResult<()> {
        self.exec(
            "UPDATE password_identities SET salt = $2, kdf_m_kib = $3, kdf_t = $4, kdf_p = $5, \
             wrapped_identity_key = $6, kek_scheme = $7, row_mac = $8 WHERE id = $1",
            args![
                row.id,
                row.salt,
                i64::from(row.kdf.m_kib),
                i64::from(row.kdf.t),
                i64::from(row.kdf.p),
                row.wrapped_identity_key,
                row.kek_scheme,
                row.mac
            ],
        )
        .map(drop)
    }

    fn insert_service_grant(&mut self, g: &ServiceGrant) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO service_grants (id, service_id, owner_id, pattern, created_at, row_mac) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5 FROM service_grants \
             ON CONFLICT DO NOTHING RETURNING id",
            args![g.service_id, g.owner_id, g.pattern, g.created_at, g.mac],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Duplicate {
            what: format!("grant '{}'", g.pattern),
        })
    }

    fn service_grants(&mut self, service_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM service_grants WHERE service_id = $1 ORDER BY pattern"
        );
        self.all(&sql, args![service_id], grant_from_row)
    }

    fn grants_of_owner(&mut self, owner_id: i64) -> StoreResult<Vec<ServiceGrant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM service_grants WHERE owner_id = $1 \
             ORDER BY service_id, pattern"
        );
        self.all(&sql, args![owner_id], grant_from_row)
    }

    fn delete_service_grant(&mut self, id: i64) -> StoreResult<()> {
        self.exec("DELETE FROM service_grants WHERE id = $1", args![id])
            .map(drop)
    }

    fn put_service_record_key(&mut self, k: &ServiceRecordKey) -> StoreResult<()> {
        self.exec(
            "INSERT INTO service_record_keys (service_id, record_id, version, wrapped_dek) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (service_id, record_id) \
             DO UPDATE SET version = excluded.version, wrapped_dek = excluded.wrapped_dek",
            args![k.service_id, k.record_id, k.version, k.wrapped_dek],
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
             WHERE service_id = $1 AND record_id = $2",
            args![service_id, record_id],
            |r| {
                Ok(ServiceRecordKey {
                    service_id: r.try_get(0)?,
                    record_id: r.try_get(1)?,
                    version: r.try_get(2)?,
                    wrapped_dek: r.try_get(3)?,
                })
            },
        )
    }

    fn service_record_ids(&mut self, service_id: i64) -> StoreResult<Vec<i64>> {
        self.all(
            "SELECT record_id FROM service_record_keys WHERE service_id = $1 ORDER BY record_id",
            args![service_id],
            |r| Ok(r.try_get(0)?),
        )
    }

    fn delete_service_record_keys(
        &mut self,
        service_id: i64,
        record_id: Option<i64>,
    ) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM service_record_keys \
             WHERE service_id = $1 AND ($2::BIGINT IS NULL OR record_id = $2)",
            args![service_id, record_id],
        )
    }

    fn put_key_share(&mut self, sh: &KeyShare) -> StoreResult<i64> {
        let (user, group, epoch) = sh.to.columns();
        let target = if group.is_some() {
            "(key_id, group_id, version)"
        } else {
            "(key_id, recipient_id, version)"
        };
        let id = self.one(
            &format!(
                "INSERT INTO key_shares (id, key_id, key_name, owner_id, recipient_id, version, \
                 wrapped_material, signature, grant_signature, created_at, group_id, epoch, \
                 can_write) \
                 SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                 $12 FROM key_shares ON CONFLICT {target} DO UPDATE SET \
                 key_name = excluded.key_name, wrapped_material = excluded.wrapped_material, \
                 signature = excluded.signature, grant_signature = excluded.grant_signature, \
                 epoch = excluded.epoch, can_write = excluded.can_write RETURNING id"
            ),
            args![
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
            |r| Ok(r.try_get::<_, i64>(0)?),
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
        let sql = format!(
            "SELECT {KEY_SHARE_COLUMNS} FROM key_shares \
             WHERE ($1::BIGINT IS NULL OR key_id = $1) AND ($2::BIGINT IS NULL OR recipient_id = $2) \
             ORDER BY key_id, group_id IS NOT NULL, recipient_id, group_id, version"
        );
        self.all(&sql, args![key_id, recipient_id], key_share_from_row)
    }

    fn delete_key_shares(
        &mut self,
        key_id: i64,
        to: Option<Grantee>,
        below: Option<i64>,
    ) -> StoreResult<u64> {
        let (user, group, _) = to.map(Grantee::columns).unwrap_or_default();
        self.exec(
            "DELETE FROM key_shares WHERE key_id = $1 AND ($2::BIGINT IS NULL OR recipient_id = $2) \
             AND ($4::BIGINT IS NULL OR group_id = $4) AND ($3::BIGINT IS NULL OR version < $3)",
            args![key_id, user, below, group],
        )
    }

    fn put_record_share(&mut self, sh: &RecordShare) -> StoreResult<i64> {
        let (user, group, epoch) = sh.to.columns();
        let target = if group.is_some() {
            "(record_id, group_id)"
        } else {
            "(record_id, recipient_id)"
        };
        let id = self.one(
            &format!(
                "INSERT INTO record_shares (id, record_id, owner_id, recipient_id, version, \
                 wrapped_dek, signature, created_at, grant_signature, group_id, epoch, can_write) \
                 SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
                 FROM record_shares ON CONFLICT {target} DO UPDATE SET \
                 owner_id = excluded.owner_id, version = excluded.version, \
                 wrapped_dek = excluded.wrapped_dek, signature = excluded.signature, \
                 grant_signature = excluded.grant_signature, epoch = excluded.epoch, \
                 can_write = excluded.can_write RETURNING id"
            ),
            args![
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
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "record_shares: no id returned".into(),
        })
    }

    fn record_shares(&mut self, f: &ShareFilter) -> StoreResult<Vec<RecordShare>> {
        let sql = format!(
            "SELECT {SHARE_COLUMNS} FROM record_shares s JOIN records r ON r.id = s.record_id \
             WHERE ($1::BIGINT IS NULL OR s.record_id = $1) \
             AND ($2::BIGINT IS NULL OR s.owner_id = $2) \
             AND ($3::BIGINT IS NULL OR s.recipient_id = $3) \
             AND ($5::BIGINT IS NULL OR s.group_id = $5) \
             AND (NOT $6 OR s.group_id IS NOT NULL) \
             AND ($4::BIGINT IS NULL OR s.recipient_id = $4 OR s.group_id IN \
                  (SELECT group_id FROM group_members WHERE user_id = $4)) \
             ORDER BY s.record_id, s.group_id IS NOT NULL, s.recipient_id, s.group_id"
        );
        self.all(
            &sql,
            args![
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
        let (user, group, _) = to.map(Grantee::columns).unwrap_or_default();
        self.exec(
            "DELETE FROM record_shares WHERE record_id = $1 \
             AND ($2::BIGINT IS NULL OR recipient_id = $2) AND ($3::BIGINT IS NULL OR group_id = $3)",
            args![record_id, user, group],
        )
    }

    fn put_group(&mut self, g: &GroupRow) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO groups (id, name, manager_id, recipient, epoch, history, \
             members_digest, signature, created_at, handovers) \
             SELECT CASE WHEN $1 = 0 THEN coalesce(max(id), 0) + 1 ELSE $1 END, \
             $2, $3, $4, $5, $6, $7, $8, $9, $10 FROM groups \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             manager_id = excluded.manager_id, recipient = excluded.recipient, \
             epoch = excluded.epoch, history = excluded.history, \
             members_digest = excluded.members_digest, signature = excluded.signature, \
             handovers = excluded.handovers \
             RETURNING id",
            args![
                g.id,
                g.name.as_str(),
                g.manager_id,
                g.recipient.as_str(),
                g.epoch,
                g.history,
                g.members_digest,
                g.signature,
                g.created_at,
                g.handovers
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "groups: no id returned".into(),
        })
    }

    fn group_by_id(&mut self, id: i64) -> StoreResult<Option<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = $1");
        self.one(&sql, args![id], group_from_row)
    }

    fn group_by_name(&mut self, name: &str) -> StoreResult<Option<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE name = $1");
        self.one(&sql, args![name], group_from_row)
    }

    fn groups(&mut self) -> StoreResult<Vec<GroupRow>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY name COLLATE \"C\", id");
        self.all(&sql, args![], group_from_row)
    }

    fn put_group_member(&mut self, m: &GroupMember) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO group_members (id, group_id, user_id, epoch, wrapped_identity, \
             signature, added_at) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM group_members \
             ON CONFLICT (group_id, user_id) DO UPDATE SET epoch = excluded.epoch, \
             wrapped_identity = excluded.wrapped_identity, signature = excluded.signature, \
             added_at = excluded.added_at RETURNING id",
            args![
                m.group_id,
                m.user_id,
                m.epoch,
                m.wrapped_identity,
                m.signature,
                m.added_at
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
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
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM group_members \
             WHERE ($1::BIGINT IS NULL OR group_id = $1) AND ($2::BIGINT IS NULL OR user_id = $2) \
             ORDER BY group_id, user_id"
        );
        self.all(&sql, args![group_id, user_id], member_from_row)
    }

    fn delete_group_member(&mut self, group_id: i64, user_id: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2",
            args![group_id, user_id],
        )
    }

    fn put_record_write(&mut self, w: &RecordWrite) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO record_writes (id, record_id, owner_id, writer_id, base_version, \
             ciphertext, wrapped_dek, signature, created_at) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8 FROM record_writes \
             ON CONFLICT (record_id) DO UPDATE SET owner_id = excluded.owner_id, \
             writer_id = excluded.writer_id, base_version = excluded.base_version, \
             ciphertext = excluded.ciphertext, wrapped_dek = excluded.wrapped_dek, \
             signature = excluded.signature, created_at = excluded.created_at RETURNING id",
            args![
                w.record_id,
                w.owner_id,
                w.writer_id,
                w.base_version,
                w.ciphertext,
                w.wrapped_dek,
                w.signature,
                w.created_at
            ],
            |r| Ok(r.try_get::<_, i64>(0)?),
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
        let sql = format!(
            "SELECT {WRITE_COLUMNS} FROM record_writes w JOIN records r ON r.id = w.record_id \
             WHERE ($1::BIGINT IS NULL OR w.owner_id = $1) AND ($2::BIGINT IS NULL OR w.record_id = $2) \
             ORDER BY w.record_id"
        );
        self.all(&sql, args![owner_id, record_id], write_from_row)
    }

    fn delete_record_write(&mut self, record_id: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM record_writes WHERE record_id = $1",
            args![record_id],
        )
    }

    fn put_record_transfer(&mut self, t: &RecordTransfer) -> StoreResult<i64> {
        let id = self.one(
            "INSERT INTO record_transfers (id, record_id, owner_id, giver_id, recipient_id, \
             version, wrapped_dek, signature, created_at, taken_at) \
             SELECT coalesce(max(id), 0) + 1, $1, $2, $3, $4, $5, $6, $7, $8, $9 \
             FROM record_transfers ON CONFLICT (record_id) DO UPDATE SET \
             owner_id = excluded.owner_id, giver_id = excluded.giver_id, \
             recipient_id = excluded.recipient_id, version = excluded.version, \
             wrapped_dek = excluded.wrapped_dek, signature = excluded.signature, \
             created_at = excluded.created_at, taken_at = excluded.taken_at RETURNING id",
            args![
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
            |r| Ok(r.try_get::<_, i64>(0)?),
        )?;
        id.ok_or_else(|| StoreError::Invalid {
            what: "record_transfers: no id returned".into(),
        })
    }

    fn record_transfers(&mut self, f: &TransferFilter) -> StoreResult<Vec<RecordTransfer>> {
        let sql = format!(
            "SELECT {TRANSFER_COLUMNS} FROM record_transfers t \
             JOIN records r ON r.id = t.record_id \
             WHERE ($1::BIGINT IS NULL OR t.record_id = $1) \
             AND ($2::BIGINT IS NULL OR t.owner_id = $2) \
             AND ($3::BIGINT IS NULL OR t.recipient_id = $3) \
             AND (NOT $4 OR t.taken_at IS NULL) \
             ORDER BY t.record_id"
        );
        self.all(
            &sql,
            args![f.record_id, f.owner_id, f.recipient_id, f.waiting],
            transfer_from_row,
        )
    }

    fn set_transfer_taken(&mut self, id: i64, at: i64) -> StoreResult<()> {
        self.exec(
            "UPDATE record_transfers SET taken_at = $2 WHERE id = $1",
            args![id, at],
        )
        .map(drop)
    }

    fn delete_record_transfer(&mut self, record_id: i64) -> StoreResult<u64> {
        self.exec(
            "DELETE FROM record_transfers WHERE record_id = $1",
            args![record_id],
        )
    }

    fn user_sessions(&mut self, user_id: i64) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 \
             ORDER BY created_at DESC, id COLLATE \"C\""
        );
        self.all(&sql, args![user_id], session_from_row)
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
            UsageGroup::Day => "to_char(to_timestamp(e.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        let sql = format!(
            "SELECT g, count(*), coalesce(sum(bytes), 0)::bigint FROM \
             (SELECT {group} AS g, e.bytes FROM usage_events e \
              JOIN users u ON u.id = e.user_id LEFT JOIN keys k ON k.id = e.key_id \
              WHERE ($1::bigint IS NULL OR e.user_id = $1) AND ($2::bigint IS NULL OR e.at >= $2)) \
             AS events GROUP BY g ORDER BY g COLLATE \"C\""
        );
        self.all(&sql, args![user_id, since], |r| {
            Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
        })
    }
}

/// Maps a statement's error; one from the server (or a lost connection) has ended the
/// transaction there, which `failed` records.
fn failure(
    failed: &mut bool,
    location: &str,
    redactor: &Redactor,
    e: &postgres::Error,
) -> StoreError {
    if e.as_db_error().is_some() || e.is_closed() {
        *failed = true;
    }
    error::statement(location, e, redactor)
}

/// `Ok` when `inserted`, else [`StoreError::Duplicate`] naming `what`.
fn duplicate_unless(inserted: bool, what: &str) -> StoreResult<()> {
    if inserted {
        Ok(())
    } else {
        Err(StoreError::Duplicate {
            what: what.to_string(),
        })
    }
}
