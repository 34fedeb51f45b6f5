//! `db migrate`: a shared database with an older schema is upgraded only on purpose, after
//! a backup of it as it was.

use crate::common::*;

/// The latest schema version.
const LATEST: i64 = 13;

#[test]
fn a_database_at_the_latest_version_is_left_alone() {
    let env = Env::new();
    env.signup("alice");
    let before = env.column::<i64>("SELECT count(*) FROM audit_log")[0];
    let r = env.run(&["--json", "db", "migrate"], b"");
    r.ok();
    assert_eq!(
        r.json(),
        serde_json::json!({ "from": LATEST, "to": LATEST, "backup": null })
    );
    assert_eq!(
        r.stderr,
        format!(
            "The schema is at version {LATEST}, the latest this zencrypt knows; nothing was changed.\n"
        )
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM audit_log")[0],
        before
    );
    assert!(!env.data_dir().join("backups").exists());
}

#[test]
fn an_older_shared_schema_is_named_untouched_then_backed_up_and_migrated() {
    let env = Env::new();
    let Some(pg) = &env.pg else {
        // A file is upgraded when it is opened: the test is about a shared database.
        return;
    };
    env.signup("alice");
    env.run(&["data", "put", "--name", "prod/db"], b"s3cret")
        .ok();
    // The database as an earlier release left it: no audit head, record versions or
    // recovery keys or keypairs, version 5. (Alice's row is bound again without her recovery key, as
    // an earlier release bound it; her next write of the row records its state.)
    forget_recovery_key(&pg.url, "alice", "prod/db");
    psql(&pg.url, OLDER_SCHEMA);
    let entries = env.column::<i64>("SELECT count(*) FROM audit_log")[0];

    let r = env.run(&["data", "get", "prod/db"], b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the database at {} has schema version 5, older than this zencrypt's ({LATEST}); an administrator runs `zencrypt db migrate` (which writes a backup first) to upgrade it; nothing was changed",
            pg.url
        )
    );
    assert_eq!(
        env.column::<i64>("SELECT version FROM zencrypt_schema"),
        [5]
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM audit_log")[0],
        entries
    );

    let backup = env.dir.path().join("before.db");
    let r = env.run(
        &[
            "--json",
            "db",
            "migrate",
            "--backup",
            backup.to_str().unwrap(),
        ],
        b"",
    );
    r.ok();
    assert_eq!(
        r.json(),
        serde_json::json!({ "from": 5, "to": LATEST, "backup": backup.to_str().unwrap() })
    );
    assert_eq!(
        r.stderr,
        format!(
            "Backed up the database as it was (schema 5) to {} (0600).\nMigrated the schema from version 5 to {LATEST}.\n",
            backup.display()
        )
    );
    assert_eq!(mode(&backup), 0o600);
    // Built beside it and moved into place: nothing else is left there.
    let beside: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".zencrypt-staging"))
        .collect();
    assert!(beside.is_empty(), "{beside:?}");
    // The backup is the database as it was: schema 5, every entry, no session key copy.
    let file = rusqlite::Connection::open(&backup).unwrap();
    let version: i64 = file
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let count = |sql: &str| -> i64 { file.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM audit_log"), entries);
    assert_eq!(
        count("SELECT count(*) FROM sqlite_master WHERE name = 'audit_head'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM sessions WHERE length(wrapped_user_key) > 0"),
        0
    );
    assert_eq!(count("SELECT count(*) FROM records"), 1);
    drop(file);

    assert_eq!(
        env.column::<i64>("SELECT version FROM zencrypt_schema"),
        [LATEST]
    );
    assert_eq!(
        env.run(&["data", "get", "prod/db"], b"").ok().stdout,
        "s3cret"
    );
    // An account from before recovery keys has none until it makes one.
    assert_eq!(
        env.run(&["--json", "account", "recovery-key"], b"")
            .ok()
            .json()["recovery_key"],
        false
    );
    env.run(
        &["account", "recovery-key", "--rotate", "--password-stdin"],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    // The record, rebound as the earlier release bound it, records its state at its next
    // write too.
    env.run(&["data", "update", "prod/db"], b"s3cret").ok();
    let v = env.run(&["--json", "audit", "verify"], b"").ok().json();
    assert_eq!(v["ok"], true, "{v}");
    let rows = audit_rows(&env, &env.token("alice"), &["--action", "db.migrate"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["actor"], "alice");
    assert_eq!(
        rows[0]["detail"],
        serde_json::json!({ "from": 5, "to": LATEST, "backup": backup.to_str().unwrap() })
    );

    // The backup opens as a vault of its own on a machine that never saw the database.
    let other = env.dir.path().join("elsewhere");
    let b = backup.to_str().unwrap();
    let elsewhere = [("HOME", other.to_str().unwrap()), ("ZENCRYPT_DB", b)];
    env.run_with(
        &["login", "--username", "alice", "--password-stdin"],
        format!("{}\n", pw("alice")).as_bytes(),
        &elsewhere,
    )
    .ok();
    assert_eq!(
        env.run_with(&["data", "get", "prod/db"], b"", &elsewhere)
            .ok()
            .stdout,
        "s3cret"
    );

    // An existing file is never written over, and nothing is migrated without a backup.
    forget_recovery_key(&pg.url, "alice", "prod/db");
    psql(&pg.url, OLDER_SCHEMA);
    // A client with another audit key writes no backup and migrates nothing.
    let elsewhere_backup = env.dir.path().join("wrong-key.db");
    let r = env.run_with(
        &[
            "db",
            "migrate",
            "--backup",
            elsewhere_backup.to_str().unwrap(),
        ],
        b"",
        &[(
            "ZENCRYPT_AUDIT_KEY",
            "another-teams-audit-key-0123456789abcdef",
        )],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: the audit key (ZENCRYPT_AUDIT_KEY"),
        "{}",
        r.stderr
    );
    assert!(!elsewhere_backup.exists());
    assert_eq!(
        env.column::<i64>("SELECT version FROM zencrypt_schema"),
        [5]
    );
    let r = env.run(&["db", "migrate", "--backup", b], b"");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!("error: {b} already exists: name a file that does not\n")
    );
    assert_eq!(
        env.column::<i64>("SELECT version FROM zencrypt_schema"),
        [5]
    );
    env.run(&["db", "migrate", "--no-backup"], b"").ok();
    assert_eq!(
        env.column::<i64>("SELECT version FROM zencrypt_schema"),
        [LATEST]
    );
}

/// What turns the schema back into version 5's.
const OLDER_SCHEMA: &str = "DROP TABLE record_transfers; DROP TABLE record_writes; DROP TABLE key_shares; DROP TABLE record_shares; DROP TABLE group_members; DROP TABLE groups; DROP TABLE audit_head; DROP TABLE record_versions; \
    DROP TABLE service_record_keys; DROP TABLE service_grants; \
    ALTER TABLE users DROP COLUMN recovery_salt, DROP COLUMN recovery_wrapped_key, \
    DROP COLUMN recovery_created_at, DROP COLUMN owner_id, DROP COLUMN public_key, \
    DROP COLUMN signing_key, DROP COLUMN wrapped_keypair, DROP COLUMN key_pins; \
    ALTER TABLE records DROP COLUMN value_hash, DROP COLUMN share_digest; \
    ALTER TABLE keys DROP COLUMN share_digest; \
    UPDATE zencrypt_schema SET version = 5";

/// Rebinds `user`'s row without a recovery key or keypair, and their record `record`
/// without a value hash, as a release before them bound it (the test knows the audit key
/// of the suite's PostgreSQL installations, and the user's password).
fn forget_recovery_key(url: &str, user: &str, record: &str) {
    use zencrypt_core::crypto::kdf::derive_key;
    use zencrypt_core::crypto::mac::MacKey;
    use zencrypt_core::crypto::{Aad, aead};
    use zencrypt_core::ids::UserId;
    use zencrypt_core::integrity::{OwnerKey, encode_record, encode_user, row_mac};
    use zencrypt_core::storage::Storage;
    let mut store =
        zencrypt_postgres::PgStore::open(&zencrypt_postgres::PgOptions::new(url), false).unwrap();
    let mut tx = store.write().unwrap();
    let mut row = tx.user_by_name(user).unwrap().unwrap();
    let c = &row.credentials;
    let kek = derive_key(c.kek_params, pw(user).as_bytes(), &c.kek_salt).unwrap();
    let user_key =
        aead::unwrap_key(&kek, &Aad::new("user-key").int(row.id), &c.wrapped_user_key).unwrap();
    let owner = OwnerKey::derive(UserId(row.id), &user_key);
    let mut rec = tx.record_by_ref(row.id, record).unwrap().unwrap();
    rec.value_hash = None;
    rec.mac = row_mac(owner.mac_key(), &encode_record(&rec));
    tx.update_record(&rec).unwrap();
    row.recovery = None;
    row.keys = None;
    row.pins = None;
    row.mac = row_mac(
        &MacKey::new(PG_AUDIT_KEY.as_bytes().to_vec()),
        &encode_user(&row),
    );
    tx.update_user(&row).unwrap();
    tx.commit().unwrap();
}
