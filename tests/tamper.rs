//! Someone who can write the database file, but holds no password and not the audit key,
//! edits it with SQL as an attacker would: every edit is refused by the next command
//! that reads the row (exit 7, naming it), or found by `audit verify`.

use crate::common::*;
use serde_json::Value;

fn tampered(row: &str) -> String {
    format!(
        "error: {row} failed its integrity check: it was changed outside zencrypt (restore the database from a backup)\n"
    )
}

fn exec(env: &Env, sql: &str) {
    env.exec(sql);
}

#[track_caller]
fn refused(env: &Env, args: &[&str], row: &str) {
    let r = env.run(args, b"");
    assert_eq!(r.code, 7, "{args:?}: {}", r.stderr);
    assert_eq!(r.stderr, tampered(row), "{args:?}");
    assert!(r.stdout.is_empty());
}

/// `audit verify --json` as an admin, from a client that never saw the chain (so the
/// witness does not answer first).
fn verify(env: &Env) -> (i32, Value) {
    env.forget_witness();
    let r = env.run(&["audit", "verify", "--json"], b"");
    (r.code, r.json())
}

fn setup() -> Env {
    setup_on(Env::new())
}

/// [`setup`] on a given installation (`Env::sqlite()` for tests of the file).
fn setup_on(env: Env) -> Env {
    env.signup("alice");
    env.run(&["data", "put", "--name", "prod"], b"prod-value")
        .ok();
    env.run(&["data", "put", "--name", "dev"], b"dev-value")
        .ok();
    env
}

#[test]
fn a_record_rolled_back_after_an_update_is_refused_or_found() {
    let env = setup();
    exec(
        &env,
        "CREATE TABLE old AS SELECT * FROM records WHERE name = 'prod'",
    );
    env.run(&["data", "update", "prod"], b"new-value").ok();
    // The old value, data key and version without the old binding: refused on read.
    exec(
        &env,
        "UPDATE records SET (wrapped_dek, ciphertext, version, updated_at) = \
         (SELECT wrapped_dek, ciphertext, version, updated_at FROM old) WHERE name = 'prod'",
    );
    refused(&env, &["data", "get", "prod"], "records row 1");
    // The whole older row, binding included, is a valid old state: the audit log's
    // record of the row's latest state gives it away.
    exec(
        &env,
        "UPDATE records SET (wrapped_dek, ciphertext, version, updated_at, row_mac) = \
         (SELECT wrapped_dek, ciphertext, version, updated_at, row_mac FROM old) \
         WHERE name = 'prod'; DROP TABLE old",
    );
    let (code, v) = verify(&env);
    assert_eq!(code, 7);
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], Value::Null);
    assert_eq!(v["first_bad_row"], "records row 1");
    let r = env.run(&["audit", "verify"], b"");
    assert_eq!(
        r.stderr,
        "error: records row 1 is not in the state its latest audit entry recorded (changed or rolled back)\n"
    );
}

#[test]
fn swapped_names_are_refused() {
    let env = setup();
    exec(
        &env,
        "UPDATE records SET name = 'x' WHERE name = 'prod';
         UPDATE records SET name = 'prod' WHERE name = 'dev';
         UPDATE records SET name = 'dev' WHERE name = 'x';",
    );
    refused(&env, &["data", "get", "prod"], "records row 2");
    // Listed newest first: dev's row is the first one read.
    refused(&env, &["data", "list"], "records row 2");
}

#[test]
fn expired_and_deleted_records_stay_so() {
    let env = setup();
    env.run(
        &["data", "put", "--name", "brief", "--expires-in", "1s"],
        b"v",
    )
    .ok();
    env.run(&["data", "rm", "dev"], b"").ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(env.run(&["data", "get", "brief"], b"").code, 5);
    exec(
        &env,
        "UPDATE records SET expires_at = NULL WHERE name = 'brief'",
    );
    refused(&env, &["data", "get", "brief"], "records row 3");
    exec(
        &env,
        "UPDATE records SET deleted_at = NULL WHERE name = 'dev'",
    );
    refused(&env, &["data", "get", "dev"], "records row 2");
}

#[test]
fn key_settings_cannot_be_edited() {
    for (sql, args) in [
        (
            "UPDATE keys SET exportable = 1",
            &["key", "export", "k"][..],
        ),
        (
            "UPDATE keys SET status = 'active' WHERE status = 'disabled'",
            &["key", "show", "k"][..],
        ),
        (
            "UPDATE keys SET min_decrypt_version = 1",
            &["key", "show", "k"][..],
        ),
        (
            "UPDATE key_versions SET wrapped_material = NULL WHERE version = 1",
            &["key", "show", "k"][..],
        ),
    ] {
        let env = Env::new();
        env.signup("alice");
        env.run(&["key", "create", "k"], b"").ok();
        env.run(&["key", "rotate", "k"], b"").ok();
        env.run(&["key", "set", "k", "--min-decrypt-version", "2"], b"")
            .ok();
        env.run(&["key", "disable", "k"], b"").ok();
        exec(&env, sql);
        let row = if sql.contains("key_versions") {
            "key_versions row 1/1"
        } else {
            "keys row 1"
        };
        refused(&env, args, row);
    }
}

#[test]
fn roles_and_status_cannot_be_edited() {
    let env = Env::new();
    env.signup("alice");
    env.signup("bob");
    env.signup("carol");
    env.login("alice");
    env.run(&["user", "disable", "carol"], b"").ok();
    exec(
        &env,
        "UPDATE users SET role = 'admin' WHERE username = 'bob'",
    );
    let bob = env.run_with(&["user", "list"], b"", &[]);
    assert_eq!(bob.code, 7);
    let r = env.run(
        &["login", "--username", "bob", "--password-stdin"],
        format!("{}\n", pw("bob")).as_bytes(),
    );
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr, tampered("users row 2"));
    exec(
        &env,
        "UPDATE users SET status = 'active' WHERE username = 'carol'",
    );
    let r = env.run(
        &["login", "--username", "carol", "--password-stdin"],
        format!("{}\n", pw("carol")).as_bytes(),
    );
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr, tampered("users row 3"));
}

#[test]
fn a_session_cannot_be_stretched() {
    let env = setup();
    exec(&env, "UPDATE sessions SET expires_at = expires_at + 86400");
    refused(&env, &["whoami"], "a sessions row");
}

#[test]
fn an_emptied_audit_log_is_a_failure() {
    let env = setup();
    exec(&env, "DELETE FROM audit_log");
    // Refused at open by every client, whether it saw the log or not.
    for forget in [false, true] {
        if forget {
            env.forget_witness();
        }
        let r = env.run(&["whoami"], b"");
        assert_eq!(r.code, 7);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            "error: audit chain is broken at seq 1: the audit log is empty, but the database has users (its rows were removed)"
        );
    }
}

#[test]
fn a_planted_weak_password_identity_is_not_adopted() {
    let env = setup();
    let rp = env.dir.path().join("rp");
    std::fs::write(&rp, "record-password-1\n").unwrap();
    let rp = rp.to_str().unwrap();
    exec(
        &env,
        &format!(
            "INSERT INTO password_identities (id, owner_id, salt, kdf_m_kib, kdf_t, kdf_p, \
             wrapped_identity_key, created_at, row_mac, kek_scheme) VALUES (1, 1, {}, 8, 1, 1, {}, 0, {}, 1)",
            env.blob("00112233445566778899aabbccddeeff"),
            env.blob("00"),
            env.blob("")
        ),
    );
    let r = env.run(
        &[
            "data",
            "put",
            "--name",
            "p",
            "--protect",
            "--password-file",
            rp,
        ],
        b"secret",
    );
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr, tampered("password_identities row 1"));
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM records WHERE name = 'p'"),
        [0]
    );
}

/// A database written by the previous release (schema 4): alice, with a key, a record
/// and a password-protected record, and bob with a record.
fn old_database() -> Env {
    let env = Env::sqlite()
        .with(
            "ZENCRYPT_AUDIT_KEY",
            "fixture-audit-key-0123456789abcdef0123",
        )
        .with(
            "ZENCRYPT_JWT_SECRET",
            "fixture-jwt-secret-0123456789abcdef01234",
        );
    std::fs::create_dir_all(env.data_dir()).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v4.db"),
        env.db(),
    )
    .unwrap();
    env
}

// About the file: it opens the schema-4 fixture file of the previous release.
#[test]
fn an_older_database_is_bound_in_place_and_verifies() {
    let env = old_database();
    env.login("alice");
    assert_eq!(
        env.run(&["data", "get", "note"], b"").ok().stdout,
        "alice-value"
    );
    let rp = env.dir.path().join("rp");
    std::fs::write(&rp, "record-password-1\n").unwrap();
    let r = env.run(
        &[
            "data",
            "get",
            "locked",
            "--password-file",
            rp.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.ok().stdout, "protected-value");
    let (code, v) = verify(&env);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true);
    // alice and bob; keys k and alice's and bob's default keys, one version each; three
    // records; one password identity.
    assert_eq!(v["rows_checked"], 12);
    let actions = env
        .run(&["audit", "list", "--json", "--limit", "1000"], b"")
        .json();
    let actions: Vec<&str> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .filter(|a| a.ends_with("bind-rows"))
        .collect();
    assert_eq!(actions, ["db.bind-rows", "account.bind-rows"]);
    // bob's rows are bound at his first session, and still need the upgrade's word.
    assert_eq!(
        env.column::<i64>("SELECT length(row_mac) FROM records WHERE owner_id = 2"),
        [0]
    );
    env.login("bob");
    assert_eq!(
        env.run(&["data", "get", "note"], b"").ok().stdout,
        "bob-value"
    );
    assert_eq!(
        env.column::<i64>("SELECT length(row_mac) FROM records WHERE owner_id = 2"),
        [16]
    );
}

// About the file: it edits the schema-4 fixture file of the previous release.
#[test]
fn an_older_row_changed_before_its_owner_returns_is_refused() {
    let env = old_database();
    env.login("alice");
    exec(
        &env,
        "UPDATE records SET name = 'renamed' WHERE owner_id = 2",
    );
    env.login("bob");
    refused(&env, &["data", "list"], "records row 3");
}

/// A snapshot of the database as it is now, and a way to put it back later.
fn snapshot(env: &Env, name: &str) -> std::path::PathBuf {
    let copy = env.dir.path().join(name);
    env.sql()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    copy
}

fn restore(env: &Env, copy: &std::path::Path) {
    for ext in ["db-wal", "db-shm"] {
        let _ = std::fs::remove_file(env.db().with_extension(ext));
    }
    std::fs::copy(copy, env.db()).unwrap();
}

// About the file: an older copy of the database file is put back at its path.
#[test]
fn an_older_copy_under_a_new_identity_is_refused() {
    let env = setup_on(Env::sqlite());
    let old = snapshot(&env, "old.db");
    env.run(&["data", "put", "--name", "later"], b"v").ok();
    restore(&env, &old);
    let r = env.run(&["data", "list"], b"");
    assert_eq!(r.code, 7);
    // A new id would escape the witness kept under the old one: the log's first entry
    // is bound to the id it began with.
    give_a_new_identity(&env);
    let r = env.run(&["data", "list"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr, IDENTITY_CHANGED);
}

const IDENTITY_CHANGED: &str = "error: this database's identity was changed (its audit log begins from another database id): it was swapped or rolled back; restore it from a backup\n";

/// Gives the database another id, and drops the audit key's check (which names the id).
fn give_a_new_identity(env: &Env) {
    exec(
        env,
        &format!(
            "UPDATE meta SET value = {} WHERE key = 'database_id';
             DELETE FROM meta WHERE key = 'audit_key_check';",
            env.blob("5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e")
        ),
    );
}

#[test]
fn a_new_identity_or_a_missing_first_entry_is_refused() {
    let env = setup();
    give_a_new_identity(&env);
    // Whether or not this client saw the database under its old id.
    for forget in [false, true] {
        if forget {
            env.forget_witness();
        }
        let r = env.run(&["data", "list"], b"");
        assert_eq!(r.code, 7);
        assert_eq!(r.stderr, IDENTITY_CHANGED);
    }
    // Without its first entry, or without any, it is refused too.
    exec(&env, "DELETE FROM audit_log WHERE seq = 1");
    let r = env.run(&["data", "list"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: audit chain is broken at seq 1: row 1 is missing"
    );
    exec(&env, "DELETE FROM audit_log");
    let r = env.run(&["data", "list"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: audit chain is broken at seq 1: the audit log is empty, but the database has users (its rows were removed)"
    );
}

// About the file: another vault's file is put at this one's path.
#[test]
fn another_database_swapped_in_at_the_same_path_is_refused() {
    let env = setup_on(Env::sqlite());
    let audit_key = std::fs::read(env.data_dir().join("audit.key")).unwrap();
    let jwt = std::fs::read(env.data_dir().join("jwt.secret")).unwrap();
    // Another vault written with the same client secrets (a teammate's, say).
    let other = Env::sqlite();
    std::fs::create_dir_all(other.data_dir()).unwrap();
    for (name, bytes) in [("audit.key", audit_key), ("jwt.secret", jwt)] {
        let path = other.data_dir().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    other.signup("alice");
    let copy = snapshot(&other, "other.db");
    restore(&env, &copy);
    let r = env.run(&["data", "list"], b"");
    assert_eq!(r.code, 7);
    assert!(
        r.stderr.starts_with(&format!(
            "error: the database at {} is not the one this client used there before (it has another identity)",
            env.db().display()
        )),
        "{}",
        r.stderr
    );
    // Accepted on purpose, it is used from then on.
    env.run(&["audit", "accept-head", "--yes"], b"").ok();
    env.login("alice");
    assert_eq!(
        env.run(&["data", "list", "--json"], b"").ok().json(),
        serde_json::json!([])
    );
}

// About the file: it keeps a copy of the schema-4 fixture file from before its upgrade.
#[test]
fn a_copy_from_before_the_upgrade_opens_nothing_written_after_it() {
    use zencrypt_core::crypto::kdf::{KdfParams, derive_key};
    use zencrypt_core::crypto::{Aad, aead};
    let env = old_database();
    let before = snapshot(&env, "before.db");
    env.login("alice");
    let rp = env.dir.path().join("rp");
    std::fs::write(&rp, "record-password-1\n").unwrap();
    let rp = rp.to_str().unwrap();
    // Opening the old identity replaces it; a new protected record uses the new one.
    env.run(&["data", "get", "locked", "--password-file", rp], b"")
        .ok();
    env.run(
        &[
            "data",
            "put",
            "--name",
            "after",
            "--protect",
            "--password-file",
            rp,
        ],
        b"written after the upgrade",
    )
    .ok();
    // Whoever kept the file from before, and knows the record password, opens the old
    // identity key...
    let old = rusqlite::Connection::open(&before).unwrap();
    let (owner, iid, salt, m, t, p, wrapped): (i64, i64, Vec<u8>, u32, u32, u32, Vec<u8>) = old
        .query_row(
            "SELECT owner_id, id, salt, kdf_m_kib, kdf_t, kdf_p, wrapped_identity_key \
             FROM password_identities",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )
        .unwrap();
    let kek = derive_key(KdfParams { m_kib: m, t, p }, b"record-password-1", &salt).unwrap();
    let old_key =
        aead::unwrap_key(&kek, &Aad::new("password-identity").int(owner), &wrapped).unwrap();
    // ...which opens no data key in the file as it is now, old record or new.
    let rows: Vec<(i64, i64, Vec<u8>)> = env
        .sql()
        .prepare("SELECT id, identity_id, wrapped_dek FROM records WHERE identity_id IS NOT NULL")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2);
    for (rid, identity, dek) in rows {
        let aad = Aad::new("record-dek-identity")
            .int(owner)
            .int(rid)
            .int(identity);
        assert!(
            aead::unwrap_key(&old_key, &aad, &dek).is_err(),
            "record {rid}"
        );
    }
    assert_eq!(iid, 1);
    assert_eq!(
        env.run(&["data", "get", "after", "--password-file", rp], b"")
            .ok()
            .stdout,
        "written after the upgrade"
    );
}
