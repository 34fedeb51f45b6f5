//! The storage conformance suite: one set of checks of every [`Storage`] and [`Tx`] method
//! that each backend's tests run against databases of their own, so that the backends
//! behave alike down to the order of rows and the kind of each error.
//!
//! A backend's test crate implements [`Backend`] (fresh, empty, migrated databases) and
//! expands [`conformance_tests!`](crate::conformance_tests) into one `#[test]` per case;
//! [`conformance_tests!`] makes one test of each case. [`assert_catalogue`] compares the tables and
//! columns a backend's catalogue reports with [`schema::TABLES`].
//!
//! Every check asserts exact values. Panicking is how a case fails.

use std::collections::BTreeMap;

use super::migrations::LATEST;
use super::schema::{self, ColumnType, Table, Value};
use super::{Counts, NewUser, Storage, StoreError, StoreResult, Tx, UsageGroup};
use crate::crypto::kdf::KdfParams;
use crate::model::{
    AuditEntry, AuditFilter, Credentials, IdentityRow, KeyEvent, KeyRecord, KeyStatus,
    KeyVersionRecord, Outcome, RecordFilter, RecordOrder, RecordRow, RecoveryWrap, Role, RowId,
    ServiceGrant, ServiceRecordKey, SessionRecord, StoredRow, UsageEvent, UserRecord, UserStatus,
};

/// A backend under test.
pub trait Backend: Sync {
    /// Opens `connections` stores on one new, empty database that has the latest schema
    /// (each store its own connection). The database lives at least as long as `self`.
    fn fresh(&self, connections: usize) -> Vec<Box<dyn Storage + Send>>;
}

/// One case: its name and the check.
pub type Case = (&'static str, fn(&dyn Backend));

/// Every case, in the order the tests of [`conformance_tests!`] list them.
pub const CASES: &[Case] = &[
    ("meta_and_empty_database", meta_and_empty_database),
    ("users_round_trip", users_round_trip),
    (
        "user_names_sort_bytewise_and_match_ignoring_ascii_case",
        user_names_sort_bytewise_and_match_ignoring_ascii_case,
    ),
    ("sessions_lifecycle", sessions_lifecycle),
    ("keys_versions_and_events", keys_versions_and_events),
    (
        "records_by_reference_and_updates",
        records_by_reference_and_updates,
    ),
    ("record_ids_are_never_reused", record_ids_are_never_reused),
    ("password_identities", password_identities),
    (
        "record_listing_filters_order_and_paging",
        record_listing_filters_order_and_paging,
    ),
    ("usage_report_groups", usage_report_groups),
    ("audit_log_and_head", audit_log_and_head),
    (
        "row_bindings_scan_and_unbound_rows",
        row_bindings_scan_and_unbound_rows,
    ),
    ("constraint_kinds", constraint_kinds),
    (
        "rollback_commit_and_snapshots",
        rollback_commit_and_snapshots,
    ),
    ("copy_rows_round_trip", copy_rows_round_trip),
    ("counts_and_integrity", counts_and_integrity),
    ("many_writers", many_writers),
    ("service_accounts", service_accounts),
];

/// Expands to one `#[test]` per conformance case. `$backend` is an expression of type
/// `Option<impl Backend>`, evaluated in each test; `None` skips the test (a backend whose
/// server is not configured says so itself).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr) => {
        $crate::conformance_tests!(@cases ($backend)
            meta_and_empty_database,
            users_round_trip,
            user_names_sort_bytewise_and_match_ignoring_ascii_case,
            sessions_lifecycle,
            keys_versions_and_events,
            records_by_reference_and_updates,
            record_ids_are_never_reused,
            password_identities,
            record_listing_filters_order_and_paging,
            usage_report_groups,
            audit_log_and_head,
            row_bindings_scan_and_unbound_rows,
            constraint_kinds,
            rollback_commit_and_snapshots,
            copy_rows_round_trip,
            counts_and_integrity,
            many_writers,
            service_accounts,
        );
    };
    (@cases ($backend:expr) $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(backend) = $backend {
                    $crate::storage::conformance::$case(&backend);
                }
            }
        )*

        #[test]
        fn every_conformance_case_has_a_test() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            let known: Vec<&str> = $crate::storage::conformance::CASES
                .iter()
                .map(|(name, _)| *name)
                .collect();
            assert_eq!(listed, known.as_slice());
        }
    };
}

/// One table as a backend's catalogue reports it: its name and its columns in order,
/// each with its type and whether it may be NULL.
pub type CatalogueTable = (String, Vec<(String, ColumnType, bool)>);

/// Asserts that `found` (the backend's own tables, in any order, without its bookkeeping
/// tables) holds exactly the tables and columns of [`schema::TABLES`].
pub fn assert_catalogue(mut found: Vec<CatalogueTable>) {
    let mut expected: Vec<CatalogueTable> = schema::TABLES
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.columns
                    .iter()
                    .map(|c| (c.name.to_string(), c.kind, c.nullable))
                    .collect(),
            )
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    let names = |v: &[CatalogueTable]| v.iter().map(|t| t.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&found), names(&expected), "tables");
    for (f, e) in found.iter().zip(&expected) {
        assert_eq!(f.1, e.1, "columns of {}", f.0);
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

fn open(backend: &dyn Backend) -> Box<dyn Storage + Send> {
    let mut stores = backend.fresh(1);
    assert_eq!(stores.len(), 1, "fresh(1) must open one store");
    stores.remove(0)
}

fn kdf(m_kib: u32) -> KdfParams {
    KdfParams { m_kib, t: 2, p: 1 }
}

fn credentials(tag: u8) -> Credentials {
    Credentials {
        password_hash: format!("$argon2id$hash-{tag}"),
        kek_salt: vec![tag; 16],
        kek_params: kdf(19_456 + u32::from(tag)),
        wrapped_user_key: vec![tag.wrapping_add(100); 60],
    }
}

fn add_user(tx: &mut dyn Tx, name: &str, role: Role, tag: u8) -> i64 {
    add_user_flagged(tx, name, role, tag, false)
}

fn add_user_flagged(tx: &mut dyn Tx, name: &str, role: Role, tag: u8, must_change: bool) -> i64 {
    let c = credentials(tag);
    tx.insert_user(&NewUser {
        username: name,
        role,
        credentials: &c,
        created_at: 1_000 + i64::from(tag),
        must_change_password: must_change,
    })
    .expect("insert user")
}

fn key_record(owner_id: i64, name: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        id: 0,
        owner_id,
        name: name.to_string(),
        status: KeyStatus::Active,
        exportable: false,
        rotation_period: None,
        expires_at: None,
        min_decrypt_version: 1,
        latest_version: 1,
        created_at,
        mac: Vec::new(),
        share_digest: None,
    }
}

fn add_key(tx: &mut dyn Tx, owner_id: i64, name: &str) -> i64 {
    tx.insert_key(&key_record(owner_id, name, 2_000))
        .expect("insert key")
}

fn version(key_id: i64, version: i64) -> KeyVersionRecord {
    KeyVersionRecord {
        key_id,
        version,
        wrapped_material: Some(vec![version as u8; 48]),
        created_at: 3_000 + version,
        encryptions: 0,
        bytes: 0,
        mac: Vec::new(),
    }
}

fn record(id: i64, owner_id: i64, token: &str, name: Option<&str>, key_id: i64) -> RecordRow {
    RecordRow {
        id,
        token: token.to_string(),
        owner_id,
        name: name.map(str::to_string),
        key_id: Some(key_id),
        key_version: Some(1),
        identity_id: None,
        wrapped_dek: vec![id as u8; 40],
        ciphertext: format!("ciphertext of {token}").into_bytes(),
        created_at: 10 * id,
        updated_at: 10 * id,
        expires_at: None,
        deleted_at: None,
        version: 1,
        mac: Vec::new(),
        value_hash: None,
        share_digest: None,
    }
}

fn identity(owner_id: i64, tag: u8) -> IdentityRow {
    IdentityRow {
        id: 0,
        owner_id,
        salt: vec![tag; 16],
        kdf: kdf(8_192),
        wrapped_identity_key: vec![tag; 60],
        created_at: 4_000 + i64::from(tag),
        kek_scheme: 2,
        mac: Vec::new(),
    }
}

fn session(id: &str, user_id: i64, expires_at: i64) -> SessionRecord {
    SessionRecord {
        id: id.to_string(),
        user_id,
        created_at: 100,
        expires_at,
        revoked_at: None,
        wrapped_user_key: format!("key copy of {id}").into_bytes(),
        mac: format!("mac of {id}").into_bytes(),
    }
}

fn entry(
    seq: i64,
    prev_mac: Vec<u8>,
    actor_id: Option<i64>,
    actor: &str,
    action: &str,
) -> AuditEntry {
    AuditEntry {
        seq,
        at: 100 * seq,
        actor_id,
        actor: actor.to_string(),
        action: action.to_string(),
        target: format!("target {seq}"),
        outcome: Outcome::Ok,
        detail: "{}".to_string(),
        prev_mac,
        mac: vec![seq as u8; 16],
        state: Vec::new(),
    }
}

fn usage(at: i64, user_id: i64, key_id: Option<i64>, operation: &str, bytes: i64) -> UsageEvent {
    UsageEvent {
        at,
        user_id,
        key_id,
        key_version: key_id.map(|_| 1),
        record_id: None,
        operation: operation.to_string(),
        bytes,
        outcome: Outcome::Ok,
    }
}

/// The fields of a user, for comparing.
#[derive(Debug, PartialEq)]
struct UserFields {
    id: i64,
    username: String,
    role: Role,
    status: UserStatus,
    password_hash: String,
    kek_salt: Vec<u8>,
    kek_params: KdfParams,
    wrapped_user_key: Vec<u8>,
    created_at: i64,
    last_login_at: Option<i64>,
    must_change_password: bool,
    rows_bound: bool,
    mac: Vec<u8>,
    recovery: Option<RecoveryWrap>,
}

fn user_fields(u: &UserRecord) -> UserFields {
    UserFields {
        id: u.id,
        username: u.username.clone(),
        role: u.role,
        status: u.status,
        password_hash: u.credentials.password_hash.clone(),
        kek_salt: u.credentials.kek_salt.clone(),
        kek_params: u.credentials.kek_params,
        wrapped_user_key: u.credentials.wrapped_user_key.clone(),
        created_at: u.created_at,
        last_login_at: u.last_login_at,
        must_change_password: u.must_change_password,
        rows_bound: u.rows_bound,
        mac: u.mac.clone(),
        recovery: u.recovery.clone(),
    }
}

type SessionFields = (String, i64, i64, i64, Option<i64>, Vec<u8>, Vec<u8>);

fn session_fields(s: &SessionRecord) -> SessionFields {
    (
        s.id.clone(),
        s.user_id,
        s.created_at,
        s.expires_at,
        s.revoked_at,
        s.wrapped_user_key.clone(),
        s.mac.clone(),
    )
}

type VersionFields = (i64, i64, Option<Vec<u8>>, i64, i64, i64, Vec<u8>);

fn version_fields(v: &KeyVersionRecord) -> VersionFields {
    (
        v.key_id,
        v.version,
        v.wrapped_material.clone(),
        v.created_at,
        v.encryptions,
        v.bytes,
        v.mac.clone(),
    )
}

type IdentityFields = (i64, i64, Vec<u8>, KdfParams, Vec<u8>, i64, i64, Vec<u8>);

fn identity_fields(i: &IdentityRow) -> IdentityFields {
    (
        i.id,
        i.owner_id,
        i.salt.clone(),
        i.kdf,
        i.wrapped_identity_key.clone(),
        i.created_at,
        i.kek_scheme,
        i.mac.clone(),
    )
}

fn ids(rows: &[RecordRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

fn usernames(users: &[UserRecord]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

fn is_duplicate<T>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Duplicate { .. }))
}

fn is_reference<T>(r: StoreResult<T>) -> bool {
    matches!(r, Err(StoreError::Reference { .. }))
}

fn dump_all(store: &mut dyn Storage) -> BTreeMap<&'static str, Vec<Vec<Value>>> {
    let mut tx = store.read().expect("read");
    let mut out = BTreeMap::new();
    for table in schema::TABLES {
        out.insert(table.name, dump_table(&mut *tx, table));
    }
    out
}

fn dump_table(tx: &mut dyn Tx, table: &Table) -> Vec<Vec<Value>> {
    let mut rows = Vec::new();
    tx.dump(table, &mut |row| {
        rows.push(row);
        Ok(())
    })
    .expect("dump");
    rows
}

fn table(name: &str) -> &'static Table {
    schema::TABLES
        .iter()
        .find(|t| t.name == name)
        .expect("a table of the schema")
}

// ---------------------------------------------------------------------------------------
// Cases

/// A new database: the latest schema, no rows, a 16-byte id that stays, and `meta`
/// values that are inserted and replaced.
pub fn meta_and_empty_database(backend: &dyn Backend) {
    let mut store = open(backend);
    assert_eq!(store.schema_version().expect("version"), LATEST);
    assert_eq!(
        store.counts().expect("counts"),
        Counts {
            users: 0,
            keys: 0,
            records: 0,
            audit_entries: 0
        }
    );
    assert_eq!(
        store.integrity_check().expect("check"),
        Vec::<String>::new()
    );
    assert!(!store.location().is_empty());

    let mut tx = store.read().expect("read");
    let id = tx.database_id().expect("database id");
    assert_eq!(id.len(), 16);
    assert_ne!(id, vec![0u8; 16]);
    assert_eq!(tx.meta("database_id").expect("meta"), Some(id.clone()));
    assert_eq!(tx.meta("no such key").expect("meta"), None);
    assert_eq!(tx.user_count().expect("users"), 0);
    assert_eq!(tx.audit_head().expect("head"), None);
    assert_eq!(tx.next_record_id().expect("next id"), 1);
    assert!(!tx.audit_has_state().expect("state"));
    assert_eq!(
        dump_table(&mut *tx, table("audit_head")),
        vec![vec![Value::Int(1), Value::Int(0), Value::Blob(Vec::new())]]
    );
    tx.commit().expect("commit read");

    let mut tx = store.write().expect("write");
    tx.set_meta("witness", b"one").expect("set meta");
    tx.set_meta("witness", b"two").expect("replace meta");
    tx.set_meta("Alpha", b"").expect("set empty meta");
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(tx.meta("witness").expect("meta"), Some(b"two".to_vec()));
    assert_eq!(tx.meta("Alpha").expect("meta"), Some(Vec::new()));
    assert_eq!(tx.database_id().expect("database id"), id);
    let keys: Vec<Value> = dump_table(&mut *tx, table("meta"))
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(
        keys,
        vec![
            Value::Text("Alpha".into()),
            Value::Text("database_id".into()),
            Value::Text("witness".into())
        ]
    );
}

/// Users: ids from 1, every field read back, updates, last login and the admin count.
pub fn users_round_trip(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::Admin, 1);
    let bob = add_user_flagged(&mut *tx, "bob", Role::User, 2, true);
    assert_eq!((alice, bob), (1, 2));
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    let c1 = credentials(1);
    let expected_alice = UserFields {
        id: 1,
        username: "alice".into(),
        role: Role::Admin,
        status: UserStatus::Active,
        password_hash: c1.password_hash.clone(),
        kek_salt: c1.kek_salt.clone(),
        kek_params: c1.kek_params,
        wrapped_user_key: c1.wrapped_user_key.clone(),
        created_at: 1_001,
        last_login_at: None,
        must_change_password: false,
        rows_bound: true,
        mac: Vec::new(),
        recovery: None,
    };
    let got = tx.user_by_id(alice).expect("by id").expect("alice");
    assert_eq!(user_fields(&got), expected_alice);
    let got = tx.user_by_name("alice").expect("by name").expect("alice");
    assert_eq!(user_fields(&got), expected_alice);
    let got_bob = tx.user_by_id(bob).expect("by id").expect("bob");
    assert!(got_bob.must_change_password);
    assert_eq!(got_bob.role, Role::User);
    assert!(tx.user_by_id(99).expect("by id").is_none());
    assert!(tx.user_by_name("carol").expect("by name").is_none());
    assert_eq!(tx.user_count().expect("count"), 2);
    assert_eq!(tx.active_admin_count().expect("admins"), 1);

    tx.set_last_login(alice, 5_555).expect("last login");
    let mut changed = tx.user_by_id(bob).expect("by id").expect("bob");
    changed.role = Role::Admin;
    changed.status = UserStatus::Disabled;
    changed.credentials = credentials(7);
    changed.must_change_password = false;
    changed.rows_bound = false;
    changed.mac = vec![9; 16];
    changed.recovery = Some(RecoveryWrap {
        salt: vec![1; 16],
        wrapped_user_key: vec![2; 60],
        created_at: 1_003,
    });
    tx.update_user(&changed).expect("update");
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(
        tx.user_by_id(alice)
            .expect("by id")
            .expect("alice")
            .last_login_at,
        Some(5_555)
    );
    let c7 = credentials(7);
    assert_eq!(
        user_fields(&tx.user_by_id(bob).expect("by id").expect("bob")),
        UserFields {
            id: 2,
            username: "bob".into(),
            role: Role::Admin,
            status: UserStatus::Disabled,
            password_hash: c7.password_hash,
            kek_salt: c7.kek_salt,
            kek_params: c7.kek_params,
            wrapped_user_key: c7.wrapped_user_key,
            created_at: 1_002,
            last_login_at: None,
            must_change_password: false,
            rows_bound: false,
            mac: vec![9; 16],
            recovery: Some(RecoveryWrap {
                salt: vec![1; 16],
                wrapped_user_key: vec![2; 60],
                created_at: 1_003,
            }),
        }
    );
    // And it goes again.
    drop(tx);
    let mut tx = store.write().expect("write");
    let mut cleared = tx.user_by_id(bob).expect("by id").expect("bob");
    cleared.recovery = None;
    tx.update_user(&cleared).expect("update");
    tx.commit().expect("commit");
    let mut tx = store.read().expect("read");
    assert_eq!(
        tx.user_by_id(bob).expect("by id").expect("bob").recovery,
        None
    );
    // A disabled admin does not count.
    assert_eq!(tx.active_admin_count().expect("admins"), 1);
    assert_eq!(usernames(&tx.list_users().expect("list")), ["alice", "bob"]);
}

/// Names sort by their bytes; lookups ignore the case of ASCII letters only and prefer
/// the exact name; a duplicate name is [`StoreError::Duplicate`] and leaves the
/// transaction usable.
pub fn user_names_sort_bytewise_and_match_ignoring_ascii_case(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    for (i, name) in ["carol", "Zed", "Ärger", "Carol", "_x", "émile"]
        .iter()
        .enumerate()
    {
        add_user(&mut *tx, name, Role::User, i as u8);
    }
    let c = credentials(9);
    let dup = tx.insert_user(&NewUser {
        username: "carol",
        role: Role::User,
        credentials: &c,
        created_at: 1,
        must_change_password: false,
    });
    assert!(is_duplicate(dup), "a second 'carol' must be a duplicate");
    // The transaction goes on after a duplicate.
    assert_eq!(tx.user_count().expect("count"), 6);
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(
        usernames(&tx.list_users().expect("list")),
        ["Carol", "Zed", "_x", "carol", "Ärger", "émile"]
    );
    let name_of =
        |tx: &mut dyn Tx, q: &str| tx.user_by_name(q).expect("by name").map(|u| u.username);
    assert_eq!(name_of(&mut *tx, "carol").as_deref(), Some("carol"));
    assert_eq!(name_of(&mut *tx, "Carol").as_deref(), Some("Carol"));
    assert_eq!(name_of(&mut *tx, "zed").as_deref(), Some("Zed"));
    assert_eq!(name_of(&mut *tx, "_X").as_deref(), Some("_x"));
    assert_eq!(name_of(&mut *tx, "ÄRGER").as_deref(), Some("Ärger"));
    // Only ASCII letters fold.
    assert_eq!(name_of(&mut *tx, "ärger"), None);
    assert_eq!(name_of(&mut *tx, "Émile"), None);
    assert_eq!(name_of(&mut *tx, "ze"), None);
    assert_eq!(name_of(&mut *tx, "zed "), None);
}

/// Sessions: read back, revoked once, revoked per user (except one), expired copies of
/// the user key wiped, key copies replaced only while live.
pub fn sessions_lifecycle(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    for s in [
        session("s1", alice, 2_000),
        session("s2", alice, 3_000),
        session("s3", alice, 500),
        session("s4", alice, 5_000),
        session("s5", bob, 100),
        session("s6", bob, 9_000),
    ] {
        tx.insert_session(&s).expect("insert session");
    }
    assert!(is_duplicate(tx.insert_session(&session("s1", alice, 1))));
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    assert_eq!(
        session_fields(&tx.session("s1").expect("session").expect("s1")),
        session_fields(&session("s1", alice, 2_000))
    );
    assert!(tx.session("nope").expect("session").is_none());

    tx.set_session_user_key("s1", b"new copy")
        .expect("replace copy");
    assert_eq!(
        tx.session("s1")
            .expect("session")
            .expect("s1")
            .wrapped_user_key,
        b"new copy".to_vec()
    );
    assert!(tx.revoke_session("s1", 1_000).expect("revoke"));
    assert!(!tx.revoke_session("s1", 1_001).expect("revoke again"));
    assert!(!tx.revoke_session("nope", 1_001).expect("revoke missing"));
    let s1 = tx.session("s1").expect("session").expect("s1");
    assert_eq!(
        (s1.revoked_at, s1.wrapped_user_key),
        (Some(1_000), Vec::new())
    );
    // A revoked session's copy is not replaced.
    tx.set_session_user_key("s1", b"again")
        .expect("replace copy");
    assert_eq!(
        tx.session("s1")
            .expect("session")
            .expect("s1")
            .wrapped_user_key,
        Vec::<u8>::new()
    );

    // s3 expired (its copy is wiped, it is not revoked), s2 is kept, s4 is revoked.
    assert_eq!(
        tx.revoke_user_sessions(alice, Some("s2"), 1_000)
            .expect("revoke all"),
        1
    );
    let state = |tx: &mut dyn Tx, id: &str| {
        let s = tx.session(id).expect("session").expect("a session");
        (s.revoked_at, s.wrapped_user_key.is_empty())
    };
    assert_eq!(state(&mut *tx, "s2"), (None, false));
    assert_eq!(state(&mut *tx, "s3"), (None, true));
    assert_eq!(state(&mut *tx, "s4"), (Some(1_000), true));
    assert_eq!(state(&mut *tx, "s5"), (None, false));

    // Only bob's s5 still holds an expired copy.
    assert_eq!(tx.shred_expired_sessions(2_500).expect("shred"), 1);
    assert_eq!(state(&mut *tx, "s5"), (None, true));
    assert_eq!(state(&mut *tx, "s6"), (None, false));
    assert_eq!(tx.shred_expired_sessions(2_500).expect("shred again"), 0);

    assert_eq!(
        tx.revoke_user_sessions(bob, None, 3_000)
            .expect("revoke bob"),
        1
    );
    assert_eq!(state(&mut *tx, "s6"), (Some(3_000), true));
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    let dumped: Vec<Value> = dump_table(&mut *tx, &schema::SESSIONS)
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    assert_eq!(
        dumped,
        ["s1", "s2", "s3", "s4", "s5", "s6"].map(|s| Value::Text(s.into()))
    );
}

/// Keys per owner by name and id, listed by name bytewise, destroyed ones on request;
/// versions and lifecycle events in order.
pub fn keys_versions_and_events(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    let beta = add_key(&mut *tx, alice, "beta");
    let alpha = add_key(&mut *tx, alice, "alpha");
    let zeta = add_key(&mut *tx, alice, "Zeta");
    let bobs = add_key(&mut *tx, bob, "alpha");
    assert_eq!((beta, alpha, zeta, bobs), (1, 2, 3, 4));
    assert!(is_duplicate(tx.insert_key(&key_record(alice, "alpha", 1))));
    assert_eq!(
        tx.list_keys(alice, true).expect("list").len(),
        3,
        "the transaction goes on after a duplicate"
    );

    let mut settings = key_record(alice, "gamma", 2_500);
    settings.exportable = true;
    settings.rotation_period = Some(86_400);
    settings.expires_at = Some(99_999);
    settings.mac = vec![7; 16];
    let gamma = tx.insert_key(&settings).expect("insert key");
    assert_eq!(gamma, 5);
    settings.id = gamma;
    assert_eq!(
        tx.key_by_id(alice, gamma).expect("by id"),
        Some(settings.clone())
    );
    assert_eq!(
        tx.key_by_name(alice, "gamma").expect("by name"),
        Some(settings)
    );
    assert_eq!(tx.key_by_name(bob, "beta").expect("by name"), None);
    assert_eq!(tx.key_by_name(alice, "ALPHA").expect("by name"), None);
    assert_eq!(tx.key_by_id(bob, beta).expect("by id"), None);
    assert_eq!(
        tx.key_by_name(bob, "alpha").expect("by name").map(|k| k.id),
        Some(bobs)
    );

    let mut destroyed = tx.key_by_id(alice, beta).expect("by id").expect("beta");
    destroyed.status = KeyStatus::Destroyed;
    destroyed.exportable = true;
    destroyed.rotation_period = Some(60);
    destroyed.expires_at = Some(1);
    destroyed.min_decrypt_version = 2;
    destroyed.latest_version = 3;
    destroyed.mac = vec![3; 16];
    tx.update_key(&destroyed).expect("update key");
    assert_eq!(tx.key_by_id(alice, beta).expect("by id"), Some(destroyed));
    let names = |keys: Vec<KeyRecord>| keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
    assert_eq!(
        names(tx.list_keys(alice, false).expect("list")),
        ["Zeta", "alpha", "gamma"]
    );
    assert_eq!(
        names(tx.list_keys(alice, true).expect("list")),
        ["Zeta", "alpha", "beta", "gamma"]
    );
    assert_eq!(names(tx.list_keys(bob, false).expect("list")), ["alpha"]);

    tx.insert_key_version(&version(alpha, 2))
        .expect("version 2");
    tx.insert_key_version(&version(alpha, 1))
        .expect("version 1");
    assert!(is_duplicate(tx.insert_key_version(&version(alpha, 1))));
    assert_eq!(
        tx.key_version(alpha, 2)
            .expect("version")
            .as_ref()
            .map(version_fields),
        Some(version_fields(&version(alpha, 2)))
    );
    assert!(tx.key_version(alpha, 3).expect("version").is_none());
    let mut v1 = version(alpha, 1);
    v1.wrapped_material = None;
    v1.encryptions = 12;
    v1.bytes = 3_400;
    v1.mac = vec![1; 16];
    tx.update_key_version(&v1).expect("update version");
    assert_eq!(
        tx.key_versions(alpha)
            .expect("versions")
            .iter()
            .map(version_fields)
            .collect::<Vec<_>>(),
        vec![version_fields(&v1), version_fields(&version(alpha, 2))]
    );
    assert!(tx.key_versions(zeta).expect("versions").is_empty());

    let events = [
        KeyEvent {
            at: 10,
            event: "created".into(),
            version: Some(1),
            actor: "alice".into(),
            detail: "{}".into(),
        },
        KeyEvent {
            at: 5,
            event: "rotated".into(),
            version: None,
            actor: "admin".into(),
            detail: "{\"why\":\"test\"}".into(),
        },
    ];
    tx.insert_key_event(alpha, Some(alice), &events[0])
        .expect("event");
    tx.insert_key_event(alpha, None, &events[1]).expect("event");
    tx.insert_key_event(zeta, None, &events[1]).expect("event");
    assert_eq!(tx.key_events(alpha).expect("events"), events.to_vec());
    assert_eq!(tx.key_events(beta).expect("events"), Vec::new());
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    let rows = dump_table(&mut *tx, table("key_events"));
    assert_eq!(
        rows.iter()
            .map(|r| (r[0].clone(), r[5].clone()))
            .collect::<Vec<_>>(),
        vec![
            (Value::Int(1), Value::Int(alice)),
            (Value::Int(2), Value::Null),
            (Value::Int(3), Value::Null)
        ]
    );
}

/// Records by token, by live name and by most recent deletion; updates, data keys and
/// deletes.
pub fn records_by_reference_and_updates(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    let key = add_key(&mut *tx, alice, "k");
    let bobs_key = add_key(&mut *tx, bob, "k");
    assert_eq!(tx.next_record_id().expect("next id"), 1);

    let mut first = record(1, alice, "zt_one", Some("db"), key);
    first.deleted_at = Some(100);
    tx.insert_record(&first).expect("insert 1");
    assert_eq!(tx.next_record_id().expect("next id"), 2);
    let unnamed = record(2, alice, "zt_two", None, key);
    tx.insert_record(&unnamed).expect("insert 2");
    let mut second = record(3, alice, "zt_three", Some("db"), key);
    second.deleted_at = Some(200);
    tx.insert_record(&second).expect("insert 3");
    let bobs = record(4, bob, "zt_bob", Some("db"), bobs_key);
    tx.insert_record(&bobs).expect("insert 4");

    // By token, scoped to the owner.
    assert_eq!(
        tx.record_by_ref(alice, "zt_two").expect("ref"),
        Some(unnamed.clone())
    );
    assert_eq!(tx.record_by_ref(alice, "zt_bob").expect("ref"), None);
    assert_eq!(tx.record_by_ref(alice, "nothing").expect("ref"), None);
    // No live one: the most recently deleted.
    assert_eq!(
        tx.record_by_ref(alice, "db").expect("ref"),
        Some(second.clone())
    );
    let live = record(5, alice, "zt_five", Some("db"), key);
    tx.insert_record(&live).expect("insert 5");
    assert_eq!(
        tx.record_by_ref(alice, "db").expect("ref"),
        Some(live.clone())
    );
    assert_eq!(tx.record_by_ref(bob, "db").expect("ref"), Some(bobs));

    // A second live "db", a taken token: duplicates, and the transaction goes on.
    assert!(is_duplicate(tx.insert_record(&record(
        6,
        alice,
        "zt_six",
        Some("db"),
        key
    ))));
    assert!(is_duplicate(
        tx.insert_record(&record(6, alice, "zt_one", None, key))
    ));
    let mut restored = second.clone();
    restored.deleted_at = None;
    assert!(is_duplicate(tx.update_record(&restored)));
    assert_eq!(
        tx.record_by_ref(alice, "zt_three").expect("ref"),
        Some(second.clone())
    );
    assert_eq!(tx.next_record_id().expect("next id"), 6);

    // Every mutable field is saved.
    let mut changed = live.clone();
    changed.name = Some("renamed".into());
    changed.key_version = Some(2);
    changed.wrapped_dek = vec![42; 40];
    changed.ciphertext = b"new ciphertext".to_vec();
    changed.updated_at = 777;
    changed.expires_at = Some(888);
    changed.deleted_at = Some(999);
    changed.version = 2;
    changed.mac = vec![5; 16];
    tx.update_record(&changed).expect("update");
    assert_eq!(
        tx.record_by_ref(alice, "zt_five").expect("ref"),
        Some(changed)
    );
    // With the live one renamed, the deleted "db" can come back.
    tx.update_record(&restored).expect("restore");
    assert_eq!(
        tx.record_by_ref(alice, "db").expect("ref"),
        Some(restored.clone())
    );

    let mut rewrapped = unnamed.clone();
    rewrapped.key_version = Some(3);
    rewrapped.wrapped_dek = vec![33; 40];
    rewrapped.mac = vec![6; 16];
    // Only the data key, its version and the binding change.
    let mut ignored = rewrapped.clone();
    ignored.ciphertext = b"ignored".to_vec();
    ignored.updated_at = 1;
    tx.set_record_dek(&ignored).expect("set dek");
    assert_eq!(
        tx.record_by_ref(alice, "zt_two").expect("ref"),
        Some(rewrapped)
    );

    let mut below: Vec<(i64, Vec<u8>)> = tx
        .records_below_version(key, 3)
        .expect("below")
        .into_iter()
        .map(|r| (r.id, r.ciphertext))
        .collect();
    below.sort();
    assert_eq!(
        below,
        vec![(1, Vec::new()), (3, Vec::new()), (5, Vec::new())]
    );

    tx.delete_record(1).expect("delete");
    assert_eq!(tx.record_by_ref(alice, "zt_one").expect("ref"), None);
    tx.delete_record(1).expect("delete a missing record");
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(tx.record_by_ref(alice, "db").expect("ref"), Some(restored));
    assert_eq!(
        ids(&tx
            .list_records(
                alice,
                &RecordFilter {
                    ascending: true,
                    ..Default::default()
                }
            )
            .expect("list")),
        [2, 3, 5]
    );
}

/// A record id is never handed out again, even after the record with the highest id was
/// deleted.
pub fn record_ids_are_never_reused(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let key = add_key(&mut *tx, alice, "k");
    for id in 1..=3 {
        tx.insert_record(&record(id, alice, &format!("zt_{id}"), None, key))
            .expect("insert");
    }
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    tx.delete_record(3).expect("delete");
    tx.delete_record(2).expect("delete");
    assert_eq!(tx.next_record_id().expect("next id"), 4);
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    assert_eq!(tx.next_record_id().expect("next id"), 4);
    tx.insert_record(&record(4, alice, "zt_4", None, key))
        .expect("insert");
    assert_eq!(tx.next_record_id().expect("next id"), 5);
    tx.commit().expect("commit");
}

/// Password identities: ids, listing, updates, and the records they protect.
pub fn password_identities(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    let key = add_key(&mut *tx, alice, "k");
    let first = tx.insert_identity(&identity(alice, 1)).expect("identity");
    let other = tx.insert_identity(&identity(bob, 2)).expect("identity");
    let second = tx.insert_identity(&identity(alice, 3)).expect("identity");
    assert_eq!((first, other, second), (1, 2, 3));

    let protected = |id: i64, token: &str, identity_id: i64| {
        let mut r = record(id, alice, token, None, key);
        r.key_id = None;
        r.key_version = None;
        r.identity_id = Some(identity_id);
        r
    };
    tx.insert_record(&protected(1, "zt_p1", first))
        .expect("record");
    tx.insert_record(&record(2, alice, "zt_k", None, key))
        .expect("record");
    tx.insert_record(&protected(3, "zt_p3", first))
        .expect("record");
    tx.insert_record(&protected(4, "zt_p4", second))
        .expect("record");

    assert_eq!(tx.identity_record_count(first).expect("count"), 2);
    assert_eq!(tx.identity_record_count(other).expect("count"), 0);
    let mut of_first: Vec<(i64, Vec<u8>, Vec<u8>)> = tx
        .records_of_identity(first)
        .expect("records")
        .into_iter()
        .map(|r| (r.id, r.wrapped_dek, r.ciphertext))
        .collect();
    of_first.sort();
    assert_eq!(
        of_first,
        vec![(1, vec![1; 40], Vec::new()), (3, vec![3; 40], Vec::new())]
    );

    let mut expected = identity(alice, 1);
    expected.id = first;
    let mut expected_second = identity(alice, 3);
    expected_second.id = second;
    let listed: Vec<IdentityFields> = tx
        .identities(alice)
        .expect("identities")
        .iter()
        .map(identity_fields)
        .collect();
    assert_eq!(
        listed,
        vec![
            identity_fields(&expected),
            identity_fields(&expected_second)
        ]
    );

    let mut changed = expected.clone();
    changed.salt = vec![8; 16];
    changed.kdf = kdf(65_536);
    changed.wrapped_identity_key = vec![8; 60];
    changed.kek_scheme = 3;
    changed.mac = vec![8; 16];
    changed.created_at = 1;
    changed.owner_id = bob;
    tx.update_identity(&changed).expect("update");
    // The owner and creation time stay.
    changed.created_at = expected.created_at;
    changed.owner_id = alice;
    assert_eq!(
        identity_fields(&tx.identities(alice).expect("identities")[0]),
        identity_fields(&changed)
    );
    assert_eq!(tx.identities(bob).expect("identities").len(), 1);
    tx.commit().expect("commit");
}

/// Listing records: every filter, every order both ways (NULLs first ascending, ties
/// by id), limits and offsets, and values loaded only on request.
pub fn record_listing_filters_order_and_paging(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    let k1 = add_key(&mut *tx, alice, "k1");
    let k2 = add_key(&mut *tx, alice, "k2");
    let kb = add_key(&mut *tx, bob, "kb");
    // (id, name, key, created, updated, expires, deleted)
    type Spec<'a> = (
        i64,
        Option<&'a str>,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
    );
    let specs: [Spec<'_>; 5] = [
        (1, Some("b"), k1, 10, 60, None, None),
        (2, Some("B"), k2, 20, 50, Some(50), None),
        (3, None, k1, 30, 40, Some(150), None),
        (4, Some("a"), k1, 40, 20, None, Some(90)),
        (5, None, k2, 50, 20, Some(100), None),
    ];
    for (id, name, key, created, updated, expires, deleted) in specs {
        let mut r = record(id, alice, &format!("zt_{id}"), name, key);
        r.created_at = created;
        r.updated_at = updated;
        r.expires_at = expires;
        r.deleted_at = deleted;
        tx.insert_record(&r).expect("insert");
    }
    tx.insert_record(&record(6, bob, "zt_6", Some("a"), kb))
        .expect("insert");
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    let base = RecordFilter {
        now: 100,
        ascending: true,
        ..Default::default()
    };
    let mut list = |f: RecordFilter| ids(&tx.list_records(alice, &f).expect("list"));

    let orders = [
        (RecordOrder::Created, [1, 2, 3, 4, 5], [5, 4, 3, 2, 1]),
        (RecordOrder::Updated, [4, 5, 3, 2, 1], [1, 2, 3, 5, 4]),
        (RecordOrder::Name, [3, 5, 2, 4, 1], [1, 4, 2, 5, 3]),
        (RecordOrder::Expires, [1, 4, 2, 5, 3], [3, 5, 2, 4, 1]),
    ];
    for (order, up, down) in orders {
        let f = RecordFilter {
            order_by: order,
            ..base.clone()
        };
        assert_eq!(list(f.clone()), up, "{order:?} ascending");
        assert_eq!(
            list(RecordFilter {
                ascending: false,
                ..f
            }),
            down,
            "{order:?} descending"
        );
    }

    let with = |f: &dyn Fn(&mut RecordFilter)| {
        let mut filter = base.clone();
        f(&mut filter);
        filter
    };
    assert_eq!(
        list(with(&|f| {
            f.tokens = vec![
                "zt_4".into(),
                "zt_2".into(),
                "zt_6".into(),
                "zt_none".into(),
            ]
        })),
        [2, 4]
    );
    assert_eq!(list(with(&|f| f.key_id = Some(k2))), [2, 5]);
    assert_eq!(list(with(&|f| f.key_id = Some(kb))), Vec::<i64>::new());
    assert_eq!(list(with(&|f| f.deleted = Some(true))), [4]);
    assert_eq!(list(with(&|f| f.deleted = Some(false))), [1, 2, 3, 5]);
    assert_eq!(list(with(&|f| f.expired = Some(true))), [2, 5]);
    assert_eq!(list(with(&|f| f.expired = Some(false))), [1, 3, 4]);
    assert_eq!(
        list(with(&|f| {
            f.deleted = Some(false);
            f.expired = Some(false);
        })),
        [1, 3]
    );
    assert_eq!(
        list(with(&|f| {
            f.limit = Some(2);
            f.offset = 1;
        })),
        [2, 3]
    );
    assert_eq!(list(with(&|f| f.offset = 3)), [4, 5]);
    assert_eq!(list(with(&|f| f.limit = Some(0))), Vec::<i64>::new());
    assert_eq!(list(with(&|f| f.offset = 9)), Vec::<i64>::new());
    assert_eq!(
        list(with(&|f| {
            f.order_by = RecordOrder::Name;
            f.ascending = false;
            f.limit = Some(3);
        })),
        [1, 4, 2]
    );

    let without = tx.list_records(alice, &base).expect("list");
    assert!(without.iter().all(|r| r.ciphertext.is_empty()));
    assert_eq!(without[0].wrapped_dek, vec![1; 40]);
    let with_values = tx
        .list_records(
            alice,
            &RecordFilter {
                with_values: true,
                ..base.clone()
            },
        )
        .expect("list");
    assert_eq!(with_values[0].ciphertext, b"ciphertext of zt_1".to_vec());
    assert_eq!(with_values[4].token, "zt_5");
    assert_eq!(ids(&tx.list_records(bob, &base).expect("list")), [6]);
}

/// Usage grouped by key, user, operation and UTC day, bytewise, for one user or all,
/// since a time.
pub fn usage_report_groups(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "Bob", Role::User, 2);
    let carol = add_user(&mut *tx, "carol", Role::User, 3);
    let k_one = add_key(&mut *tx, alice, "k-one");
    let k_alpha = add_key(&mut *tx, bob, "Alpha");
    for u in [
        usage(0, alice, Some(k_one), "encrypt", 10),
        usage(86_399, alice, Some(k_one), "decrypt", 20),
        usage(86_400, bob, Some(k_alpha), "encrypt", 5),
        usage(1_700_000_000, bob, None, "export", 0),
        usage(1_700_000_001, alice, None, "encrypt", 7),
    ] {
        tx.insert_usage(&u).expect("usage");
    }
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    let owned = |v: &[(&str, i64, i64)]| {
        v.iter()
            .map(|(g, n, b)| (g.to_string(), *n, *b))
            .collect::<Vec<_>>()
    };
    let mut report = |by, user, since| tx.usage_report(by, user, since).expect("report");
    assert_eq!(
        report(UsageGroup::Key, None, None),
        owned(&[("-", 2, 7), ("Alpha", 1, 5), ("k-one", 2, 30)])
    );
    assert_eq!(
        report(UsageGroup::User, None, None),
        owned(&[("Bob", 2, 5), ("alice", 3, 37)])
    );
    assert_eq!(
        report(UsageGroup::Op, None, None),
        owned(&[("decrypt", 1, 20), ("encrypt", 3, 22), ("export", 1, 0)])
    );
    assert_eq!(
        report(UsageGroup::Day, None, None),
        owned(&[
            ("1970-01-01", 2, 30),
            ("1970-01-02", 1, 5),
            ("2023-11-14", 2, 7)
        ])
    );
    assert_eq!(
        report(UsageGroup::Op, Some(alice), Some(86_399)),
        owned(&[("decrypt", 1, 20), ("encrypt", 1, 7)])
    );
    assert_eq!(
        report(UsageGroup::Day, None, Some(1_700_000_001)),
        owned(&[("2023-11-14", 1, 7)])
    );
    assert_eq!(report(UsageGroup::Key, Some(carol), None), Vec::new());
    let events = dump_table(&mut *tx, table("usage_events"));
    assert_eq!(
        events.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        (1..=5).map(Value::Int).collect::<Vec<_>>()
    );
    assert_eq!(events[3][3], Value::Null);
}

/// The audit log: appended rows, the head, lookups, every filter, scans that stop early,
/// and the head row kept in step.
pub fn audit_log_and_head(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut entries = Vec::new();
    let mut prev = vec![0u8; 16];
    let specs: [(Option<i64>, &str, &str, Outcome); 5] = [
        (Some(1), "alice", "user.add", Outcome::Ok),
        (Some(2), "bob", "key.create", Outcome::Ok),
        (Some(2), "bob", "key.rotate", Outcome::Denied),
        (None, "mallory", "login", Outcome::Failed),
        (Some(1), "alice", "KEY.upper", Outcome::Ok),
    ];
    for (i, (actor_id, actor, action, outcome)) in specs.into_iter().enumerate() {
        let mut e = entry(i as i64 + 1, prev.clone(), actor_id, actor, action);
        e.outcome = outcome;
        if i == 4 {
            e.state = vec![0xAB; 32];
        }
        prev = e.mac.clone();
        entries.push(e);
    }

    let mut tx = store.write().expect("write");
    for e in &entries[..4] {
        tx.insert_audit(e).expect("append");
    }
    assert!(!tx.audit_has_state().expect("state"));
    assert!(is_duplicate(tx.insert_audit(&entries[1])));
    assert_eq!(
        tx.audit_head().expect("head"),
        Some((4, entries[3].mac.clone()))
    );
    tx.insert_audit(&entries[4]).expect("append");
    assert!(tx.audit_has_state().expect("state"));
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(
        tx.audit_head().expect("head"),
        Some((5, entries[4].mac.clone()))
    );
    assert_eq!(
        dump_table(&mut *tx, table("audit_head")),
        vec![vec![
            Value::Int(1),
            Value::Int(5),
            Value::Blob(entries[4].mac.clone())
        ]]
    );
    assert_eq!(tx.audit_entry(3).expect("entry"), Some(entries[2].clone()));
    assert_eq!(tx.audit_entry(99).expect("entry"), None);

    let seqs = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    let mut list = |f: AuditFilter| seqs(tx.list_audit(&f).expect("list"));
    assert_eq!(list(AuditFilter::default()), [1, 2, 3, 4, 5]);
    assert_eq!(
        list(AuditFilter {
            actor_id: Some(2),
            ..Default::default()
        }),
        [2, 3]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("alice".into()),
            ..Default::default()
        }),
        [1, 5]
    );
    assert_eq!(
        list(AuditFilter {
            actor: Some("Alice".into()),
            ..Default::default()
        }),
        Vec::<i64>::new()
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("key.create".into()),
            ..Default::default()
        }),
        [2]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("key.".into()),
            ..Default::default()
        }),
        [2, 3, 5]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some("key".into()),
            ..Default::default()
        }),
        Vec::<i64>::new()
    );
    assert_eq!(
        list(AuditFilter {
            outcome: Some(Outcome::Denied),
            ..Default::default()
        }),
        [3]
    );
    assert_eq!(
        list(AuditFilter {
            since: Some(300),
            ..Default::default()
        }),
        [3, 4, 5]
    );
    assert_eq!(
        list(AuditFilter {
            limit: Some(2),
            ..Default::default()
        }),
        [4, 5]
    );
    assert_eq!(
        list(AuditFilter {
            limit: Some(0),
            ..Default::default()
        }),
        Vec::<i64>::new()
    );
    assert_eq!(
        list(AuditFilter {
            actor_id: Some(1),
            limit: Some(1),
            ..Default::default()
        }),
        [5]
    );
    assert_eq!(
        tx.list_audit(&AuditFilter {
            actor: Some("mallory".into()),
            ..Default::default()
        })
        .expect("list"),
        vec![entries[3].clone()]
    );

    let mut seen = Vec::new();
    tx.scan_audit(&mut |e| {
        seen.push(e);
        true
    })
    .expect("scan");
    assert_eq!(seen, entries);
    let mut first_two = Vec::new();
    tx.scan_audit(&mut |e| {
        first_two.push(e.seq);
        first_two.len() < 2
    })
    .expect("scan");
    assert_eq!(first_two, [1, 2]);
}

/// Row bindings are set per row kind; the scan visits every bound row (records without
/// ciphertext) and stops when asked; unbound rows are an owner's rows without a binding.
pub fn row_bindings_scan_and_unbound_rows(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let bob = add_user(&mut *tx, "bob", Role::User, 2);
    let ka = add_key(&mut *tx, alice, "ka");
    let kb = add_key(&mut *tx, bob, "kb");
    let kc = add_key(&mut *tx, alice, "kc");
    tx.insert_key_version(&version(ka, 1)).expect("version");
    tx.insert_key_version(&version(ka, 2)).expect("version");
    tx.insert_key_version(&version(kb, 1)).expect("version");
    tx.insert_record(&record(1, alice, "zt_a", None, ka))
        .expect("record");
    tx.insert_record(&record(2, bob, "zt_b", None, kb))
        .expect("record");
    tx.insert_record(&record(3, alice, "zt_c", None, ka))
        .expect("record");
    let ia = tx.insert_identity(&identity(alice, 1)).expect("identity");
    let ib = tx.insert_identity(&identity(bob, 2)).expect("identity");
    tx.insert_session(&session("s", alice, 10))
        .expect("session");
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    let bind = [
        RowId::User(alice),
        RowId::User(bob),
        RowId::Key(kb),
        RowId::Key(kc),
        RowId::KeyVersion(ka, 2),
        RowId::KeyVersion(kb, 1),
        RowId::Record(2),
        RowId::Record(3),
        RowId::Identity(ib),
        RowId::Session("s".into()),
    ];
    for (i, row) in bind.iter().enumerate() {
        tx.set_row_mac(row, &[i as u8 + 1; 16]).expect("bind");
    }
    tx.commit().expect("commit");

    let mut tx = store.read().expect("read");
    assert_eq!(
        tx.session("s").expect("session").expect("s").mac,
        vec![10u8; 16]
    );
    let mut scanned = Vec::new();
    tx.scan_rows(&mut |row| {
        scanned.push(row);
        true
    })
    .expect("scan");
    let mut seen: Vec<(RowId, Vec<u8>)> = scanned
        .iter()
        .map(|row| match row {
            StoredRow::User(u) => (RowId::User(u.id), u.mac.clone()),
            StoredRow::Key(k) => (RowId::Key(k.id), k.mac.clone()),
            StoredRow::KeyVersion(owner, v) => {
                let expected_owner = if v.key_id == kb { bob } else { alice };
                assert_eq!(*owner, expected_owner, "owner of a key version");
                (RowId::KeyVersion(v.key_id, v.version), v.mac.clone())
            }
            StoredRow::Record(r) => {
                assert!(
                    r.ciphertext.is_empty(),
                    "scanned records carry no ciphertext"
                );
                assert_eq!(r.wrapped_dek, vec![r.id as u8; 40]);
                (RowId::Record(r.id), r.mac.clone())
            }
            StoredRow::Identity(i) => (RowId::Identity(i.id), i.mac.clone()),
            StoredRow::ServiceGrant(g) => (RowId::ServiceGrant(g.id), g.mac.clone()),
            StoredRow::RecordShare(s) => (RowId::RecordShare(s.id), s.signature.clone()),
            StoredRow::KeyShare(s) => (RowId::KeyShare(s.id), s.signature.clone()),
            StoredRow::Group(g) => (RowId::Group(g.id), g.signature.clone()),
            StoredRow::GroupMember(m) => (RowId::GroupMember(m.id), m.signature.clone()),
            StoredRow::RecordWrite(w) => (RowId::RecordWrite(w.id), w.signature.clone()),
            StoredRow::RecordTransfer(t) => (RowId::RecordTransfer(t.id), t.signature.clone()),
        })
        .collect();
    seen.sort();
    let mac_of = |row: &RowId| {
        bind.iter()
            .position(|b| b == row)
            .map_or(Vec::new(), |i| vec![i as u8 + 1; 16])
    };
    let mut expected: Vec<(RowId, Vec<u8>)> = [
        RowId::User(alice),
        RowId::User(bob),
        RowId::Key(ka),
        RowId::Key(kb),
        RowId::Key(kc),
        RowId::KeyVersion(ka, 1),
        RowId::KeyVersion(ka, 2),
        RowId::KeyVersion(kb, 1),
        RowId::Record(1),
        RowId::Record(2),
        RowId::Record(3),
        RowId::Identity(ia),
        RowId::Identity(ib),
    ]
    .into_iter()
    .map(|r| {
        let mac = mac_of(&r);
        (r, mac)
    })
    .collect();
    expected.sort();
    assert_eq!(seen, expected);

    let mut visits = 0;
    tx.scan_rows(&mut |_| {
        visits += 1;
        false
    })
    .expect("scan");
    assert_eq!(visits, 1);

    let mut unbound: Vec<(RowId, usize)> = tx
        .unbound_rows(alice)
        .expect("unbound")
        .into_iter()
        .map(|row| match row {
            StoredRow::User(u) => (RowId::User(u.id), 0),
            StoredRow::Key(k) => (RowId::Key(k.id), 0),
            StoredRow::KeyVersion(owner, v) => {
                assert_eq!(owner, alice);
                (RowId::KeyVersion(v.key_id, v.version), 0)
            }
            StoredRow::Record(r) => (RowId::Record(r.id), r.ciphertext.len()),
            StoredRow::Identity(i) => (RowId::Identity(i.id), 0),
            StoredRow::ServiceGrant(g) => (RowId::ServiceGrant(g.id), 0),
            StoredRow::RecordShare(s) => (RowId::RecordShare(s.id), 0),
            StoredRow::KeyShare(s) => (RowId::KeyShare(s.id), 0),
            StoredRow::Group(g) => (RowId::Group(g.id), 0),
            StoredRow::GroupMember(m) => (RowId::GroupMember(m.id), 0),
            StoredRow::RecordWrite(w) => (RowId::RecordWrite(w.id), 0),
            StoredRow::RecordTransfer(t) => (RowId::RecordTransfer(t.id), 0),
        })
        .collect();
    unbound.sort();
    assert_eq!(
        unbound,
        vec![
            (RowId::Key(ka), 0),
            (RowId::KeyVersion(ka, 1), 0),
            // Unbound records come with their ciphertext.
            (RowId::Record(1), "ciphertext of zt_a".len()),
            (RowId::Identity(ia), 0),
        ]
    );
    assert!(tx.unbound_rows(bob).expect("unbound").is_empty());
}

/// Unique rules are [`StoreError::Duplicate`], foreign keys [`StoreError::Reference`],
/// checks [`StoreError::Invalid`]; nothing of a failed transaction stays.
pub fn constraint_kinds(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::User, 1);
    let key = add_key(&mut *tx, alice, "k");
    tx.commit().expect("commit");

    let mut tx = store.write().expect("write");
    assert!(is_duplicate(tx.insert_key(&key_record(alice, "k", 1))));
    drop(tx);

    let mut tx = store.write().expect("write");
    assert!(is_reference(tx.insert_session(&session("s", 99, 10))));
    drop(tx);

    let mut tx = store.write().expect("write");
    assert!(is_reference(tx.insert_key(&key_record(99, "k", 1))));
    drop(tx);

    let mut tx = store.write().expect("write");
    assert!(is_reference(tx.insert_key_version(&version(99, 1))));
    drop(tx);

    let mut tx = store.write().expect("write");
    assert!(is_reference(
        tx.insert_record(&record(1, alice, "zt_x", None, 99))
    ));
    drop(tx);

    // A record wrapped by neither a key nor an identity breaks a check.
    let mut tx = store.write().expect("write");
    let mut neither = record(1, alice, "zt_y", None, key);
    neither.key_id = None;
    assert!(matches!(
        tx.insert_record(&neither),
        Err(StoreError::Invalid { .. })
    ));
    drop(tx);

    let mut tx = store.read().expect("read");
    assert!(tx.session("s").expect("session").is_none());
    assert_eq!(tx.list_keys(alice, true).expect("keys").len(), 1);
    assert_eq!(tx.next_record_id().expect("next id"), 1);
}

/// A dropped transaction leaves nothing; a committed one is seen by every later
/// transaction of every connection; a read transaction sees one snapshot.
pub fn rollback_commit_and_snapshots(backend: &dyn Backend) {
    let mut stores = backend.fresh(2);
    let mut b = stores.pop().expect("second store");
    let mut a = stores.pop().expect("first store");

    let mut tx = a.write().expect("write");
    add_user(&mut *tx, "ghost", Role::User, 1);
    assert_eq!(tx.user_count().expect("count"), 1);
    drop(tx);
    assert_eq!(b.read().expect("read").user_count().expect("count"), 0);
    assert_eq!(a.read().expect("read").user_count().expect("count"), 0);

    let mut tx = a.write().expect("write");
    add_user(&mut *tx, "alice", Role::User, 1);
    tx.commit().expect("commit");

    let mut snapshot = b.read().expect("read");
    assert_eq!(snapshot.user_count().expect("count"), 1);
    let mut tx = a.write().expect("write");
    add_user(&mut *tx, "bob", Role::User, 2);
    tx.commit().expect("commit");
    assert_eq!(
        snapshot.user_count().expect("count"),
        1,
        "one snapshot per read"
    );
    assert!(snapshot.user_by_name("bob").expect("by name").is_none());
    drop(snapshot);

    let mut tx = b.read().expect("read");
    assert_eq!(tx.user_count().expect("count"), 2);
    let names: Vec<String> = tx
        .list_users()
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    drop(tx);

    // A write transaction sees what was committed before it began.
    let mut tx = b.write().expect("write");
    assert_eq!(tx.user_count().expect("count"), 2);
    tx.commit().expect("commit");
}

/// Fills a database with some rows of every table.
fn populate(store: &mut dyn Storage) {
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::Admin, 1);
    let bob = add_user_flagged(&mut *tx, "bob", Role::User, 2, true);
    tx.set_last_login(alice, 77).expect("login");
    tx.set_meta("Zeta", b"z").expect("meta");
    tx.insert_session(&session("s-a", alice, 10_000))
        .expect("session");
    tx.insert_session(&session("s-b", bob, 1)).expect("session");
    let ia = tx.insert_identity(&identity(alice, 5)).expect("identity");
    let ka = add_key(&mut *tx, alice, "ka");
    let kb = add_key(&mut *tx, bob, "kb");
    tx.insert_key_version(&version(ka, 1)).expect("version");
    let mut destroyed = version(ka, 2);
    destroyed.wrapped_material = None;
    tx.insert_key_version(&destroyed).expect("version");
    tx.insert_key_version(&version(kb, 1)).expect("version");
    let event = KeyEvent {
        at: 1,
        event: "created".into(),
        version: Some(1),
        actor: "alice".into(),
        detail: "{}".into(),
    };
    tx.insert_key_event(ka, Some(alice), &event).expect("event");
    tx.insert_key_event(kb, None, &event).expect("event");
    let mut r1 = record(1, alice, "zt_1", Some("first"), ka);
    r1.expires_at = Some(5);
    tx.insert_record(&r1).expect("record");
    let mut r2 = record(2, alice, "zt_2", None, ka);
    r2.key_id = None;
    r2.key_version = None;
    r2.identity_id = Some(ia);
    r2.deleted_at = Some(9);
    tx.insert_record(&r2).expect("record");
    tx.insert_record(&record(3, bob, "zt_3", Some("first"), kb))
        .expect("record");
    tx.insert_usage(&usage(1, alice, Some(ka), "encrypt", 3))
        .expect("usage");
    let mut failed = usage(2, bob, None, "decrypt", 0);
    failed.outcome = Outcome::Failed;
    failed.record_id = Some(3);
    tx.insert_usage(&failed).expect("usage");
    let mut prev = vec![0u8; 16];
    for seq in 1..=3 {
        let mut e = entry(seq, prev.clone(), Some(alice), "alice", "test.fill");
        e.state = vec![seq as u8; 8];
        prev = e.mac.clone();
        tx.insert_audit(&e).expect("audit");
    }
    tx.set_row_mac(&RowId::User(alice), &[1; 16]).expect("bind");
    tx.commit().expect("commit");
}

/// Every row copied through dump and load, ids and bindings kept, reads back identically
/// (with an edit on the way: a backup blanks the sessions' key copies).
pub fn copy_rows_round_trip(backend: &dyn Backend) {
    let mut source = open(backend);
    let mut target = open(backend);
    populate(&mut *source);
    let source_id = source.read().expect("read").database_id().expect("id");
    assert_ne!(
        target.read().expect("read").database_id().expect("id"),
        source_id
    );

    let copied = {
        let mut from = source.read().expect("read");
        let mut to = target.write().expect("write");
        let n = schema::copy_rows(&mut *from, &mut *to, &mut |table, row| {
            if table.name == schema::SESSIONS.name
                && let Some(i) = table.position("wrapped_user_key")
            {
                row[i] = Value::Blob(Vec::new());
            }
            true
        })
        .expect("copy");
        to.commit().expect("commit");
        n
    };

    let mut expected = dump_all(&mut *source);
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(copied, total as u64);
    for row in expected.get_mut("sessions").expect("sessions").iter_mut() {
        row[5] = Value::Blob(Vec::new());
    }
    assert_eq!(dump_all(&mut *target), expected);
    assert_eq!(
        target.counts().expect("counts"),
        source.counts().expect("counts")
    );
    assert_eq!(
        target.integrity_check().expect("check"),
        Vec::<String>::new()
    );

    let mut tx = target.write().expect("write");
    assert_eq!(tx.database_id().expect("id"), source_id);
    assert_eq!(tx.audit_head().expect("head"), Some((3, vec![3; 16])));
    assert_eq!(tx.next_record_id().expect("next id"), 4);
    // Ids handed out after a copy follow the copied ones.
    assert_eq!(tx.insert_key(&key_record(1, "later", 1)).expect("key"), 3);
    assert_eq!(add_user(&mut *tx, "carol", Role::User, 3), 3);
    assert_eq!(tx.insert_identity(&identity(1, 1)).expect("identity"), 2);
    tx.commit().expect("commit");

    // A row that does not fit its table is refused before it reaches the target.
    let mut other = open(backend);
    let mut from = source.read().expect("read");
    let mut to = other.write().expect("write");
    let refused = schema::copy_rows(&mut *from, &mut *to, &mut |table, row| {
        if table.name == "users" {
            row[1] = Value::Null;
        }
        true
    });
    assert!(matches!(refused, Err(StoreError::Invalid { .. })));
}

/// Row counts and the backend's own check.
pub fn counts_and_integrity(backend: &dyn Backend) {
    let mut store = open(backend);
    populate(&mut *store);
    assert_eq!(
        store.counts().expect("counts"),
        Counts {
            users: 2,
            keys: 2,
            records: 3,
            audit_entries: 3
        }
    );
    assert_eq!(
        store.integrity_check().expect("check"),
        Vec::<String>::new()
    );
    assert_eq!(store.schema_version().expect("version"), LATEST);
    let mut tx = store.read().expect("read");
    assert_eq!(tx.user_count().expect("users"), 2);
    assert_eq!(tx.active_admin_count().expect("admins"), 1);
    drop(tx);
    store.close().expect("close");
}

/// Writers on their own connections append to the audit chain at once, each reading the
/// head and appending after it: the chain ends up contiguous, every write in it once, each
/// row after the one it read (lost races are retried, as the vault's write path does).
pub fn many_writers(backend: &dyn Backend) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let mut stores = backend.fresh(WRITERS + 1);
    let mut check = stores.pop().expect("a store to check with");

    fn append(store: &mut dyn Storage, writer: usize, n: usize) -> StoreResult<()> {
        let mut tx = store.write()?;
        let (seq, prev) = tx
            .audit_head()?
            .map_or((1, vec![0u8; 16]), |(seq, mac)| (seq + 1, mac));
        let mut e = entry(
            seq,
            prev,
            Some(writer as i64),
            &format!("writer {writer}"),
            "test.write",
        );
        e.mac = format!("{writer}/{n}").into_bytes();
        tx.insert_audit(&e)?;
        tx.commit()
    }

    std::thread::scope(|scope| {
        for (writer, mut store) in stores.into_iter().enumerate() {
            scope.spawn(move || {
                for n in 0..EACH {
                    let mut lost = 0;
                    loop {
                        match append(&mut *store, writer, n) {
                            Ok(()) => break,
                            Err(StoreError::Retryable { .. }) if lost < 100 => lost += 1,
                            Err(e) => panic!("writer {writer}, write {n}: {e}"),
                        }
                    }
                }
            });
        }
    });

    let mut tx = check.read().expect("read");
    let mut chain = Vec::new();
    tx.scan_audit(&mut |e| {
        chain.push(e);
        true
    })
    .expect("scan");
    let total = WRITERS * EACH;
    assert_eq!(
        chain.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>()
    );
    let mut prev = vec![0u8; 16];
    for e in &chain {
        assert_eq!(e.prev_mac, prev, "entry {} follows the head it read", e.seq);
        prev = e.mac.clone();
    }
    let mut macs: Vec<&[u8]> = chain.iter().map(|e| e.mac.as_slice()).collect();
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), total, "every write is in the chain once");
    assert_eq!(
        tx.audit_head().expect("head"),
        Some((total as i64, prev.clone()))
    );
    assert_eq!(
        dump_table(&mut *tx, table("audit_head")),
        vec![vec![
            Value::Int(1),
            Value::Int(total as i64),
            Value::Blob(prev)
        ]]
    );
}

/// A service account's row keeps its role and owner; grants are unique per service and
/// listed by pattern (and by owner); data keys for a service are replaced per record,
/// listed and removed, and go with a hard-deleted record; a user's sessions are listed
/// newest first.
pub fn service_accounts(backend: &dyn Backend) {
    let mut store = open(backend);
    let mut tx = store.write().expect("write");
    let alice = add_user(&mut *tx, "alice", Role::Admin, 1);
    let svc = add_user(&mut *tx, "ci", Role::User, 2);
    let mut row = tx.user_by_id(svc).expect("by id").expect("ci");
    row.role = Role::Service;
    row.owner_id = Some(alice);
    tx.update_user(&row).expect("update");
    let got = tx.user_by_name("ci").expect("by name").expect("ci");
    assert_eq!((got.role, got.owner_id), (Role::Service, Some(alice)));
    assert_eq!(tx.active_admin_count().expect("admins"), 1);

    let grant = |pattern: &str, at: i64| ServiceGrant {
        id: 0,
        service_id: svc,
        owner_id: alice,
        pattern: pattern.to_string(),
        created_at: at,
        mac: vec![7; 16],
    };
    let g1 = tx
        .insert_service_grant(&grant("prod/*", 10))
        .expect("grant");
    let g2 = tx
        .insert_service_grant(&grant("app/db", 11))
        .expect("grant");
    assert_ne!(g1, g2);
    assert!(is_duplicate(tx.insert_service_grant(&grant("prod/*", 12))));
    let listed = tx.service_grants(svc).expect("grants");
    assert_eq!(
        listed
            .iter()
            .map(|g| (g.id, g.pattern.as_str(), g.created_at))
            .collect::<Vec<_>>(),
        [(g2, "app/db", 11), (g1, "prod/*", 10)]
    );
    assert_eq!(listed[0].mac, vec![7; 16]);
    assert_eq!(tx.grants_of_owner(alice).expect("of owner"), listed);
    assert!(tx.grants_of_owner(svc).expect("of owner").is_empty());
    tx.delete_service_grant(g2).expect("delete");
    assert_eq!(tx.service_grants(svc).expect("grants").len(), 1);

    let key = add_key(&mut *tx, alice, "k");
    for id in 1..=2 {
        let r = record(
            id,
            alice,
            &format!("zt_{id}"),
            Some(&format!("prod/{id}")),
            key,
        );
        tx.insert_record(&r).expect("record");
    }
    let wrapped = |record_id: i64, version: i64, tag: u8| ServiceRecordKey {
        service_id: svc,
        record_id,
        version,
        wrapped_dek: vec![tag; 60],
    };
    tx.put_service_record_key(&wrapped(1, 1, 1)).expect("put");
    tx.put_service_record_key(&wrapped(2, 1, 2)).expect("put");
    tx.put_service_record_key(&wrapped(1, 2, 3))
        .expect("replace");
    assert_eq!(
        tx.service_record_key(svc, 1).expect("get"),
        Some(wrapped(1, 2, 3))
    );
    assert_eq!(tx.service_record_key(alice, 1).expect("get"), None);
    assert_eq!(tx.service_record_ids(svc).expect("ids"), [1, 2]);
    assert_eq!(tx.delete_service_record_keys(svc, Some(1)).expect("del"), 1);
    assert_eq!(tx.delete_service_record_keys(svc, Some(1)).expect("del"), 0);
    assert_eq!(tx.service_record_ids(svc).expect("ids"), [2]);
    tx.delete_record(2).expect("hard delete");
    assert!(tx.service_record_ids(svc).expect("ids").is_empty());
    tx.put_service_record_key(&wrapped(1, 1, 4)).expect("put");
    assert_eq!(tx.delete_service_record_keys(svc, None).expect("all"), 1);

    tx.insert_session(&session("old", svc, 1_000))
        .expect("session");
    let mut newer = session("new", svc, 2_000);
    newer.created_at += 5;
    tx.insert_session(&newer).expect("session");
    tx.insert_session(&session("hers", alice, 1_000))
        .expect("session");
    let ids: Vec<String> = tx
        .user_sessions(svc)
        .expect("sessions")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["new", "old"]);
    tx.commit().expect("commit");
}
