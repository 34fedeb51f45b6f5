//! What only the PostgreSQL backend does: creating the schema (once, however many
//! creators), refusing other schemas and other applications' databases untouched,
//! migrating, lock timeouts, read-only reads, TLS, and keeping the password out of sight.

use crate::support;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use zencrypt_core::crypto::kdf::KdfParams;
use zencrypt_core::model::{Credentials, Role, SessionRecord};
use zencrypt_core::storage::NewUser;
use zencrypt_core::storage::migrations::LATEST;
use zencrypt_core::storage::{Storage, StoreError};
use zencrypt_postgres::{PgOptions, PgStore, TlsMode};

fn open(server: &support::Server, db: &str) -> PgStore {
    PgStore::open(&server.options(db), false).expect("open")
}

fn credentials() -> Credentials {
    Credentials {
        password_hash: "$argon2id$hash".into(),
        kek_salt: vec![1; 16],
        kek_params: KdfParams {
            m_kib: 19_456,
            t: 2,
            p: 1,
        },
        wrapped_user_key: vec![2; 60],
    }
}

fn new_user<'a>(name: &'a str, credentials: &'a Credentials) -> NewUser<'a> {
    NewUser {
        username: name,
        role: Role::User,
        credentials,
        created_at: 1,
        must_change_password: false,
    }
}

#[test]
fn an_empty_database_gets_the_schema_only_when_asked() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.empty_db();
    let before = server.snapshot(&db);
    let err = PgStore::open(&server.options(&db), false).err();
    assert!(matches!(err, Some(StoreError::Missing { .. })), "{err:?}");
    assert_eq!(server.snapshot(&db), before, "nothing was created");

    let mut store = PgStore::open(&server.options(&db), true).expect("create");
    assert_eq!(store.schema_version().expect("version"), LATEST);
    assert_eq!(
        store.integrity_check().expect("check"),
        Vec::<String>::new()
    );
    let id = store.read().expect("read").database_id().expect("id");
    assert_eq!(id.len(), 16);
    drop(store);

    let mut again = open(&server, &db);
    assert_eq!(again.read().expect("read").database_id().expect("id"), id);
}

#[test]
fn concurrent_creators_install_the_schema_once() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.empty_db();
    let opts = server.options(&db);
    const CREATORS: usize = 6;
    let barrier = Barrier::new(CREATORS);
    let ids: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CREATORS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut store = PgStore::open(&opts, true).expect("open or create");
                    store.read().expect("read").database_id().expect("id")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("creator"))
            .collect()
    });
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one database id");
    let mut c = server.client(&db);
    let versions: Vec<(String, i64)> = c
        .query("SELECT application, version FROM zencrypt_schema", &[])
        .expect("versions")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(versions, vec![("zencrypt".to_string(), LATEST)]);
    let metas: i64 = c
        .query_one("SELECT count(*) FROM meta", &[])
        .expect("meta")
        .get(0);
    assert_eq!(metas, 1);
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.fresh_db();
    server
        .client(&db)
        .execute("UPDATE zencrypt_schema SET version = $1", &[&(LATEST + 1)])
        .expect("a newer version");
    let before = server.snapshot(&db);
    for create in [false, true] {
        match PgStore::open(&server.options(&db), create) {
            Err(StoreError::TooNew { found, known, .. }) => {
                assert_eq!((found, known), (LATEST + 1, LATEST));
            }
            other => panic!("expected TooNew, got {:?}", other.err()),
        }
    }
    match PgStore::migrate(&server.options(&db)) {
        Err(StoreError::TooNew { found, .. }) => assert_eq!(found, LATEST + 1),
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert_eq!(server.snapshot(&db), before);
}

#[test]
fn an_older_schema_needs_migration_untouched_and_migrates_on_purpose() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.db_at_version(4);
    let mut c = server.client(&db);
    c.batch_execute(
        "INSERT INTO users (id, username, password_hash, role, status, kek_salt, kek_m_kib, \
             kek_t, kek_p, wrapped_user_key, created_at) \
         VALUES (1, 'alice', 'h', 'admin', 'active', '\\x01', 19456, 2, 1, '\\x02', 10); \
         INSERT INTO sessions (id, user_id, created_at, expires_at, wrapped_user_key) \
         VALUES ('s1', 1, 10, 9999999999, '\\x0303'); \
         INSERT INTO audit_log (seq, at, actor_id, actor, action, target, outcome, detail, \
             prev_mac, mac) \
         VALUES (1, 10, 1, 'alice', 'user.add', 'alice', 'ok', '{}', '\\x00', '\\x11'), \
                (2, 11, 1, 'alice', 'login', 'alice', 'ok', '{}', '\\x11', '\\x22');",
    )
    .expect("rows of version 4");
    let before = server.snapshot(&db);
    for create in [false, true] {
        match PgStore::open(&server.options(&db), create) {
            Err(StoreError::NeedsMigration { found, latest, .. }) => {
                assert_eq!((found, latest), (4, LATEST));
            }
            other => panic!("expected NeedsMigration, got {:?}", other.err()),
        }
    }
    assert_eq!(server.snapshot(&db), before, "nothing was changed");

    assert_eq!(
        PgStore::migrate(&server.options(&db)).expect("migrate"),
        (4, LATEST)
    );
    assert_eq!(
        PgStore::migrate(&server.options(&db)).expect("migrate again"),
        (LATEST, LATEST)
    );
    let mut store = open(&server, &db);
    assert_eq!(
        store.integrity_check().expect("check"),
        Vec::<String>::new()
    );
    let mut tx = store.read().expect("read");
    // Version 5 ends the sessions from before (no binding) and wipes their key copies.
    let s1: SessionRecord = tx.session("s1").expect("session").expect("s1");
    assert!(s1.revoked_at.is_some());
    assert!(s1.wrapped_user_key.is_empty());
    let alice = tx.user_by_name("ALICE").expect("by name").expect("alice");
    assert_eq!(
        (
            alice.mac.len(),
            alice.must_change_password,
            alice.rows_bound
        ),
        (0, false, false)
    );
    // Version 6 starts the head at the last entry.
    assert_eq!(tx.audit_head().expect("head"), Some((2, vec![0x22])));
    drop(tx);
    let head: (i64, Vec<u8>) = {
        let row = c
            .query_one("SELECT seq, mac FROM audit_head WHERE id = 1", &[])
            .expect("head");
        (row.get(0), row.get(1))
    };
    assert_eq!(head, (2, vec![0x22]));
}

#[test]
fn every_older_schema_migrates_to_the_latest() {
    let Some(server) = support::server() else {
        return;
    };
    for version in 1..LATEST {
        let db = server.db_at_version(version);
        assert_eq!(
            PgStore::migrate(&server.options(&db)).expect("migrate"),
            (version, LATEST)
        );
        let mut store = open(&server, &db);
        assert_eq!(
            store.integrity_check().expect("check"),
            Vec::<String>::new(),
            "from version {version}"
        );
        let mut tx = store.write().expect("write");
        assert_eq!(
            tx.insert_user(&new_user("bob", &credentials()))
                .expect("user"),
            1
        );
        tx.commit().expect("commit");
    }
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.empty_db();
    server
        .client(&db)
        .batch_execute(
            "CREATE TABLE inventory (id BIGINT PRIMARY KEY, item TEXT); \
             INSERT INTO inventory VALUES (1, 'lamp')",
        )
        .expect("someone else's table");
    let before = server.snapshot(&db);
    for create in [false, true] {
        let err = PgStore::open(&server.options(&db), create).err();
        assert!(
            matches!(err, Some(StoreError::NotZencrypt { .. })),
            "{err:?}"
        );
    }
    let err = PgStore::migrate(&server.options(&db)).err();
    assert!(
        matches!(err, Some(StoreError::NotZencrypt { .. })),
        "{err:?}"
    );
    assert_eq!(server.snapshot(&db), before);

    let empty = server.empty_db();
    let err = PgStore::migrate(&server.options(&empty)).err();
    assert!(matches!(err, Some(StoreError::Missing { .. })), "{err:?}");
}

#[test]
fn a_missing_database_is_missing() {
    let Some(server) = support::server() else {
        return;
    };
    for create in [false, true] {
        let err = PgStore::open(&server.options(&server.missing_db()), create).err();
        assert!(matches!(err, Some(StoreError::Missing { .. })), "{err:?}");
    }
}

#[test]
fn a_held_audit_head_makes_other_writers_busy() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.fresh_db();
    let mut holder = open(&server, &db);
    let mut waiter = open(&server, &db);
    waiter.set_lock_timeout(Duration::from_millis(200));

    let mut held = holder.write().expect("write");
    let started = Instant::now();
    let err = waiter.write().err();
    let waited = started.elapsed();
    assert!(matches!(err, Some(StoreError::Busy { .. })), "{err:?}");
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Reads do not wait for writers.
    assert_eq!(waiter.read().expect("read").user_count().expect("count"), 0);
    held.insert_user(&new_user("alice", &credentials()))
        .expect("user");
    held.commit().expect("commit");

    let mut tx = waiter.write().expect("write after the holder committed");
    assert_eq!(tx.user_count().expect("count"), 1);
    tx.commit().expect("commit");
}

#[test]
fn reads_cannot_write_and_a_failed_statement_commits_nothing() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.fresh_db();
    let mut store = open(&server, &db);
    let c = credentials();
    let mut tx = store.read().expect("read");
    let err = tx.insert_user(&new_user("alice", &c)).err();
    assert!(matches!(err, Some(StoreError::ReadOnly { .. })), "{err:?}");
    drop(tx);

    // A foreign key violation ends the transaction on the server: committing it is an
    // error, not a silent rollback.
    let mut tx = store.write().expect("write");
    tx.insert_user(&new_user("alice", &c)).expect("user");
    let orphan = SessionRecord {
        id: "s".into(),
        user_id: 99,
        created_at: 1,
        expires_at: 2,
        revoked_at: None,
        wrapped_user_key: Vec::new(),
        mac: Vec::new(),
    };
    assert!(matches!(
        tx.insert_session(&orphan),
        Err(StoreError::Reference { .. })
    ));
    let err = tx.commit().err();
    assert!(matches!(err, Some(StoreError::Other { .. })), "{err:?}");
    assert_eq!(store.read().expect("read").user_count().expect("count"), 0);
    // The connection goes on.
    let mut tx = store.write().expect("write");
    tx.insert_user(&new_user("alice", &c)).expect("user");
    tx.commit().expect("commit");
    assert_eq!(store.counts().expect("counts").users, 1);
}

#[test]
fn damage_is_reported() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.fresh_db();
    let mut store = open(&server, &db);
    let mut c = server.client(&db);
    c.batch_execute("ALTER TABLE keys DROP COLUMN row_mac; ALTER TABLE keys ADD COLUMN extra TEXT")
        .expect("damage the schema");
    assert_eq!(
        store.integrity_check().expect("check"),
        vec![
            "column keys.row_mac is missing".to_string(),
            "column keys.extra is not zencrypt's".to_string()
        ]
    );

    let db = server.fresh_db();
    let mut store = open(&server, &db);
    let mut c = server.client(&db);
    c.batch_execute("DELETE FROM audit_head")
        .expect("remove the head");
    assert_eq!(
        store.integrity_check().expect("check"),
        vec!["audit_head does not hold exactly its one row".to_string()]
    );
    // Without the head row writers would not serialise: writes are refused.
    let err = store.write().err();
    assert!(matches!(err, Some(StoreError::Corrupt { .. })), "{err:?}");
}

#[test]
fn the_password_never_shows() {
    let Some(server) = support::server() else {
        return;
    };
    const SECRET: &str = "Pw-9f2c7b41e8";
    let db = server.fresh_db();
    let with_password = |db: &str| {
        let url = server.url_for(db);
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let rest = match rest.split_once('@') {
            Some((user, host)) => {
                format!("{}:{SECRET}@{host}", user.split(':').next().unwrap_or(user))
            }
            None => format!("postgres:{SECRET}@{rest}"),
        };
        format!("{scheme}://{rest}")
    };

    // The server trusts the connection, so the (wrong) password is accepted and unused.
    let store = PgStore::open(&PgOptions::new(with_password(&db)), false).expect("open");
    for shown in [
        store.location().to_string(),
        store.redacted_url().to_string(),
        format!("{store:?}"),
        format!("{:?}", PgOptions::new(with_password(&db))),
    ] {
        assert!(!shown.contains(SECRET), "{shown}");
    }
    assert_eq!(
        store.redacted_url(),
        server.url_for(&db).replace(&format!(":{SECRET}"), "")
    );

    let failures = [
        PgStore::open(&PgOptions::new(with_password(&server.missing_db())), false).err(),
        PgStore::open(
            &PgOptions::new(format!("postgres://u:{SECRET}@127.0.0.1:1/db")),
            false,
        )
        .err(),
        PgStore::open(
            &PgOptions {
                url: format!("postgres://u@127.0.0.1:1/db?password={SECRET}"),
                password: None,
                tls: None,
            },
            false,
        )
        .err(),
        PgStore::open(
            &PgOptions {
                url: server.url_for(&server.missing_db()),
                password: Some(SecretString::from(SECRET.to_string())),
                tls: Some(TlsMode::Disable),
            },
            false,
        )
        .err(),
        PgStore::migrate(&PgOptions::new(with_password(&server.missing_db()))).err(),
    ];
    for err in failures {
        let err = err.expect("refused");
        let shown = format!("{err} / {err:?}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
    let refused = PgStore::open(
        &PgOptions::new(format!("postgres://u:{SECRET}@127.0.0.1:1/db")),
        false,
    )
    .err();
    match refused {
        Some(StoreError::Unopenable { location, reason }) => {
            assert_eq!(location, "postgres://u@127.0.0.1:1/db");
            assert!(reason.contains("nothing accepts connections"), "{reason}");
        }
        other => panic!("expected Unopenable, got {other:?}"),
    }
}

#[test]
fn tls_require_encrypts_and_verify_full_checks_the_certificate() {
    let Some(server) = support::server() else {
        return;
    };
    let mut admin = server.admin();
    let ssl: String = admin
        .query_one("SELECT current_setting('ssl')", &[])
        .expect("ssl setting")
        .get(0);
    if ssl != "on" {
        support::note("the server has TLS off; the TLS test is skipped");
        return;
    }
    let db = server.fresh_db();
    let url = server.url_for(&db);
    let sep = if url.contains('?') { '&' } else { '?' };

    let require = format!("{url}{sep}sslmode=require&application_name=zencrypt-tls-check");
    let mut store = PgStore::open(&PgOptions::new(require), false).expect("open with TLS");
    assert_eq!(store.tls_state(), "on (not verified)");
    assert!(!store.server_version().expect("version").is_empty());
    let encrypted: bool = admin
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'zencrypt-tls-check'",
            &[],
        )
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted);
    drop(store);

    let plain = PgStore::open(&PgOptions::new(url.clone()), false).expect("open");
    let expected =
        if url.contains("127.0.0.1") || url.contains("localhost") || url.contains("[::1]") {
            "off"
        } else {
            "on (not verified)"
        };
    assert_eq!(plain.tls_state(), expected);

    // A test server's certificate is not signed by a public CA.
    let verify = PgOptions {
        url: url.clone(),
        password: None,
        tls: Some(TlsMode::VerifyFull { ca_file: None }),
    };
    match PgStore::open(&verify, false) {
        Err(StoreError::Unopenable { reason, .. }) => {
            assert!(reason.contains("TLS"), "{reason}");
        }
        other => panic!(
            "expected Unopenable, got {:?}",
            other.map(|s| s.tls_state())
        ),
    }

    // Where the server's certificate is readable here (a server on this machine), it is
    // its own CA, for the host name it was made for.
    let cert: String = admin
        .query_one("SELECT current_setting('ssl_cert_file')", &[])
        .expect("certificate file")
        .get(0);
    let loopback = url.contains("127.0.0.1") || url.contains("localhost");
    if loopback && std::fs::metadata(&cert).is_ok() {
        let by_name = url.replacen("127.0.0.1", "localhost", 1);
        let opts = PgOptions {
            url: by_name,
            password: None,
            tls: Some(TlsMode::VerifyFull {
                ca_file: Some(cert.into()),
            }),
        };
        match PgStore::open(&opts, false) {
            Ok(store) => {
                assert_eq!(store.tls_state(), "on (verified)");
                // The same certificate for an address it does not name is refused.
                let by_address = PgOptions {
                    url: opts.url.replacen("localhost", "127.0.0.1", 1),
                    ..opts.clone()
                };
                let err = PgStore::open(&by_address, false).err();
                assert!(
                    matches!(err, Some(StoreError::Unopenable { .. })),
                    "{err:?}"
                );
            }
            // A certificate that names another host, or is not fit to be its own CA.
            Err(StoreError::Unopenable { reason, .. }) => {
                support::note(&format!(
                    "verify-full against the server's own certificate failed: {reason}"
                ));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
