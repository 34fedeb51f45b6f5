//! The database file end to end: bad paths, foreign and newer files left untouched,
//! migrations, and the shell's refusal without a terminal.

use crate::common::*;

fn sha(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_directory_is_refused() {
    let env = Env::new();
    let dir = env.dir.path().join("adir");
    std::fs::create_dir(&dir).unwrap();
    let r = env.run(&["--db", dir.to_str().unwrap(), "whoami"], b"");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot open the database at {}: it is a directory; give the path of a database file\n",
            dir.display()
        )
    );
}

#[test]
fn an_unwritable_path_is_refused() {
    let env = Env::new();
    let r = env.run(
        &[
            "--db",
            "/proc/zencrypt-test/x.db",
            "signup",
            "--password-stdin",
        ],
        b"password-123\n",
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(
            "error: cannot open the database at /proc/zencrypt-test/x.db: cannot create /proc/zencrypt-test:"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn a_file_that_is_not_a_database_is_left_untouched() {
    let env = Env::new();
    let f = env.dir.path().join("notes.txt");
    std::fs::write(&f, b"these are my notes, not a database\n".repeat(200)).unwrap();
    let before = sha(&f);
    let r = env.run(
        &[
            "--db",
            f.to_str().unwrap(),
            "signup",
            "--username",
            "a",
            "--password-stdin",
        ],
        b"password-123\n",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "error: {} is not a zencrypt database (or it is corrupt); point --db or ZENCRYPT_DB at a zencrypt database, or at a new path to create one\n",
            f.display()
        )
    );
    assert_eq!(sha(&f), before);
}

#[test]
fn another_applications_sqlite_file_is_left_untouched() {
    let env = Env::new();
    let f = env.dir.path().join("other.sqlite");
    {
        let c = rusqlite::Connection::open(&f).unwrap();
        c.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
    }
    let before = sha(&f);
    let r = env.run(&["--db", f.to_str().unwrap(), "whoami"], b"");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not a zencrypt database"),
        "{}",
        r.stderr
    );
    assert_eq!(sha(&f), before);
}

// About the file: it sets the file's user_version and checks the file's bytes are unchanged.
#[test]
fn a_newer_schema_is_refused_untouched() {
    let env = Env::sqlite();
    env.signup("alice");
    env.sql().pragma_update(None, "user_version", 99).unwrap();
    let before = sha(&env.db());
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "error: the database at {} has schema version 99, newer than this zencrypt understands (13); upgrade zencrypt (the file was not changed)\n",
            env.db().display()
        )
    );
    assert_eq!(sha(&env.db()), before);
}

// About the file: it reads the file's user_version, journal mode and sqlite_master.
#[test]
fn a_new_database_is_migrated_and_configured() {
    let env = Env::sqlite();
    env.signup("alice");
    let c = env.sql();
    let version: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 13);
    let mode: String = c
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            "audit_head",
            "audit_log",
            "group_members",
            "groups",
            "key_events",
            "key_shares",
            "key_versions",
            "keys",
            "meta",
            "password_identities",
            "record_shares",
            "record_transfers",
            "record_versions",
            "record_writes",
            "records",
            "service_grants",
            "service_record_keys",
            "sessions",
            "sqlite_sequence",
            "usage_events",
            "users"
        ]
    );
    let stored: String = c
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{stored}"
    );
}

// About the file: it overwrites bytes of the database file.
#[test]
fn a_corrupt_database_is_reported() {
    let env = Env::sqlite();
    env.signup("alice");
    let mut bytes = std::fs::read(env.db()).unwrap();
    for b in &mut bytes[100..4096] {
        *b = 0xAB;
    }
    std::fs::write(env.db(), &bytes).unwrap();
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains(&env.db().display().to_string()),
        "{}",
        r.stderr
    );
}

#[test]
fn the_shell_needs_a_terminal() {
    let env = Env::new();
    let r = env.run(&[], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: interactive mode needs a terminal; run `zencrypt --help` for one-shot commands\n"
    );
    assert!(!env.database_made(), "nothing is created");
}

#[test]
fn bad_env_file_values_are_usage_errors() {
    let env = Env::new();
    let f = env.dir.path().join("bad.env");
    std::fs::write(&f, "ZENCRYPT_SIGNUP=sometimes\n").unwrap();
    let r = env.run(&["--env-file", f.to_str().unwrap(), "whoami"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: ZENCRYPT_SIGNUP must be open, admin-only or closed, not 'sometimes'\n"
    );
    // ./.env in the working directory is read too, and the environment wins over it.
    std::fs::write(env.dir.path().join(".env"), "ZENCRYPT_SIGNUP=closed\n").unwrap();
    env.signup("alice");
    let r = env.run(
        &["signup", "--username", "bob", "--password-stdin"],
        b"bob-password-1\n",
    );
    assert_eq!(r.code, 4);
    env.run_with(
        &["signup", "--username", "bob", "--password-stdin"],
        b"bob-password-1\n",
        &[("ZENCRYPT_SIGNUP", "open")],
    )
    .ok();
}

#[test]
fn help_and_version() {
    let env = Env::new();
    let r = env.run(&["--help"], b"");
    r.ok();
    assert!(r.stdout.contains("Exit codes: 0 ok, 1 runtime, 2 usage"));
    let r = env.run(&["--version"], b"");
    r.ok();
    assert_eq!(
        r.stdout,
        format!("zencrypt {}\n", env!("CARGO_PKG_VERSION"))
    );
    let r = env.run(&["frobnicate"], b"");
    assert_eq!(r.code, 2);
}

// About the file: it watches the size of the file's write-ahead log.
#[test]
fn overwriting_secrets_empties_the_write_ahead_log() {
    let env = Env::sqlite();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    // Another open connection keeps the log from being removed when zencrypt exits.
    let other = env.sql();
    let users: i64 = other
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
    let wal = env.db().with_extension("db-wal");
    env.run(&["key", "create", "k2"], b"").ok();
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    env.run(&["key", "destroy", "k", "--yes"], b"").ok();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    env.run(&["data", "put", "--name", "n"], b"v").ok();
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    env.run(&["logout"], b"").ok();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    drop(other);
}
