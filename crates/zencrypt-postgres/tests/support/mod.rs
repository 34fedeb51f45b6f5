//! The PostgreSQL server the tests use: `ZENCRYPT_TEST_DB_URL` names a database on it to
//! connect to for administration (e.g. `postgres://postgres@127.0.0.1:5432/postgres`; a
//! user that may create databases, without TLS). Unset, the tests are skipped with a note,
//! except under CI (`CI` set), where they fail.
//!
//! Every test works in databases of its own, dropped when the test ends. Databases with
//! zencrypt's schema are copied from a template made once per schema (and per version of
//! the PostgreSQL SQL), under an advisory lock so that concurrent test processes make it
//! once.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use postgres::{Client, NoTls};
use zencrypt_core::crypto;
use zencrypt_core::storage::Storage;
use zencrypt_core::storage::conformance::Backend;
use zencrypt_core::storage::migrations::{LATEST, MIGRATIONS};
use zencrypt_postgres::{PgOptions, PgStore};

/// The version table as the backend creates it (for building older schemas by hand).
pub const VERSION_TABLE: &str = "CREATE TABLE zencrypt_schema (\
     application TEXT COLLATE \"C\" PRIMARY KEY CHECK (application = 'zencrypt'), \
     version BIGINT NOT NULL)";

/// A key for `pg_advisory_lock` that only these tests use.
const TEMPLATE_LOCK: i64 = 0x7a65_6e63_7465_7374;

/// The server, and the databases a test made on it (dropped with it).
pub struct Server {
    admin_url: String,
    made: Mutex<Vec<String>>,
}

/// The server from `ZENCRYPT_TEST_DB_URL`, or `None` (with a note) when it is not set.
pub fn server() -> Option<Server> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the tests find their server in the environment"
    )]
    let (url, ci) = (
        std::env::var("ZENCRYPT_TEST_DB_URL").ok(),
        std::env::var_os("CI").is_some(),
    );
    match url.filter(|u| !u.is_empty()) {
        Some(admin_url) => Some(Server {
            admin_url,
            made: Mutex::new(Vec::new()),
        }),
        None if ci => panic!(
            "ZENCRYPT_TEST_DB_URL is not set: under CI the PostgreSQL tests need a server \
             (e.g. ZENCRYPT_TEST_DB_URL=postgres://postgres@127.0.0.1:5432/postgres)"
        ),
        None => {
            static NOTE: Once = Once::new();
            NOTE.call_once(|| {
                note(
                    "ZENCRYPT_TEST_DB_URL is not set, so the PostgreSQL tests are skipped \
                     (e.g. ZENCRYPT_TEST_DB_URL=postgres://postgres@127.0.0.1:5432/postgres)",
                );
            });
            None
        }
    }
}

/// Prints a note to the standard error itself, which the test harness does not capture,
/// so that it shows.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "note: {text}");
}

/// FNV-1a of the PostgreSQL SQL, so that a template made from other SQL is not reused.
fn schema_hash() -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for m in MIGRATIONS {
        for b in m.postgres.bytes().chain(VERSION_TABLE.bytes()) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

impl Server {
    /// A connection to the administration database.
    pub fn admin(&self) -> Client {
        Client::connect(&self.admin_url, NoTls).expect("connect to ZENCRYPT_TEST_DB_URL")
    }

    /// The server's URL with `db` as the database.
    pub fn url_for(&self, db: &str) -> String {
        with_database(&self.admin_url, db)
    }

    /// Options for `db`.
    pub fn options(&self, db: &str) -> PgOptions {
        PgOptions::new(self.url_for(db))
    }

    /// A connection to `db` for inspecting or preparing it.
    pub fn client(&self, db: &str) -> Client {
        Client::connect(&self.url_for(db), NoTls).expect("connect to a test database")
    }

    /// The template with the latest schema, made on first use.
    fn template(&self) -> &'static str {
        static TEMPLATE: OnceLock<String> = OnceLock::new();
        TEMPLATE.get_or_init(|| {
            let name = format!("zt_template_{LATEST}_{:08x}", schema_hash());
            let mut admin = self.admin();
            admin
                .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
                .expect("template lock");
            let exists = !admin
                .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .expect("look for the template")
                .is_empty();
            if !exists {
                let staging = format!("{name}_{}", crypto::random_id(4));
                create_database(&mut admin, &staging, None);
                let store = PgStore::open(&self.options(&staging), true).expect("install");
                Box::new(store).close().expect("close");
                rename_database(&mut admin, &staging, &name);
            }
            admin
                .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
                .expect("template unlock");
            name
        })
    }

    fn made(&self, name: String) -> String {
        self.made.lock().expect("databases").push(name.clone());
        name
    }

    /// A new database with the latest schema and an id of its own (a copy of the
    /// template would have the template's).
    pub fn fresh_db(&self) -> String {
        let template = self.template();
        let name = self.made(format!("zt_{}", crypto::random_id(8)));
        create_database(&mut self.admin(), &name, Some(template));
        let id = crypto::random_bytes::<16>().to_vec();
        self.client(&name)
            .execute(
                "UPDATE meta SET value = $1 WHERE key = 'database_id'",
                &[&id],
            )
            .expect("a database id of its own");
        name
    }

    /// A new database without any table.
    pub fn empty_db(&self) -> String {
        let name = self.made(format!("zt_{}", crypto::random_id(8)));
        create_database(&mut self.admin(), &name, None);
        name
    }

    /// A name no database has.
    pub fn missing_db(&self) -> String {
        format!("zt_missing_{}", crypto::random_id(8))
    }

    /// A new database with the schema up to `version`, as the backend of that time made
    /// it (the version table, the steps, the database id).
    pub fn db_at_version(&self, version: i64) -> String {
        let db = self.empty_db();
        let mut c = self.client(&db);
        let mut tx = c.transaction().expect("begin");
        tx.batch_execute(VERSION_TABLE).expect("version table");
        for m in MIGRATIONS.iter().take_while(|m| m.version <= version) {
            tx.batch_execute(m.postgres).expect("migration");
        }
        let id = crypto::random_bytes::<16>().to_vec();
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('database_id', $1)",
            &[&id],
        )
        .expect("database id");
        tx.execute(
            "INSERT INTO zencrypt_schema (application, version) VALUES ('zencrypt', $1)",
            &[&version],
        )
        .expect("version");
        tx.commit().expect("commit");
        db
    }

    /// Everything in `db` that zencrypt could change: its relations and every row.
    pub fn snapshot(&self, db: &str) -> Vec<String> {
        let mut c = self.client(db);
        let mut out = Vec::new();
        let relations = c
            .query(
                "SELECT c.relname::text, c.relkind::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() ORDER BY 1",
                &[],
            )
            .expect("relations");
        for r in &relations {
            let (name, kind): (String, String) = (r.get(0), r.get(1));
            out.push(format!("{kind} {name}"));
            if kind == "r" {
                let rows = c
                    .query(
                        &format!(
                            "SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') \
                             FROM \"{name}\" t"
                        ),
                        &[],
                    )
                    .expect("rows");
                out.push(rows[0].get::<_, String>(0));
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|e| e.into_inner()));
        if made.is_empty() {
            return;
        }
        if let Ok(mut admin) = Client::connect(&self.admin_url, NoTls) {
            for db in made {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
            }
        }
    }
}

impl Backend for Server {
    fn fresh(&self, connections: usize) -> Vec<Box<dyn Storage + Send>> {
        let db = self.fresh_db();
        (0..connections)
            .map(|_| {
                let store = PgStore::open(&self.options(&db), false).expect("open");
                Box::new(store) as Box<dyn Storage + Send>
            })
            .collect()
    }
}

/// `url` with its database name replaced by `db`.
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |q| &tail[q..]);
    format!("{scheme}://{authority}/{db}{query}")
}

/// Creates `name`, from `template` or else empty with a collation under which text sorts
/// unlike bytes (ICU en-US where the server has it), so that the tests show that order
/// never depends on the database's collation.
fn create_database(admin: &mut Client, name: &str, template: Option<&str>) {
    match template {
        Some(t) => admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {t}"))
            .expect("create a database"),
        None => {
            let icu = admin.batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            ));
            if icu.is_err() {
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .expect("create a database");
            }
        }
    }
}

/// Renames a database once the last connection to it has gone.
fn rename_database(admin: &mut Client, from: &str, to: &str) {
    for _ in 0..100 {
        if admin
            .batch_execute(&format!("ALTER DATABASE {from} RENAME TO {to}"))
            .is_ok()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("cannot rename {from} to {to}");
}
