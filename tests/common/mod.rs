//! Shared end-to-end test helpers: every test gets its own temp home, a scrubbed
//! environment (no ZENCRYPT_*, HOME or XDG_* from the outside) and cheap argon2 settings.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use tempfile::TempDir;

/// Password used for test accounts, by name.
pub fn pw(user: &str) -> String {
    format!("{user}-correct-horse")
}

/// One isolated zencrypt installation.
pub struct Env {
    pub dir: TempDir,
    pub extra: Vec<(String, String)>,
    /// The PostgreSQL database of its own, when the suite runs on PostgreSQL.
    pub pg: Option<PgDatabase>,
}

/// The audit key every test client of a PostgreSQL database shares.
pub const PG_AUDIT_KEY: &str = "end-to-end-audit-key-0123456789abcdef01";

/// A database of one test's own on the server `ZENCRYPT_TEST_DB_URL` names, dropped
/// when the test ends.
pub struct PgDatabase {
    /// The server's administrative URL.
    admin: String,
    /// The database's name.
    pub name: String,
    /// The URL zencrypt is given.
    pub url: String,
}

impl PgDatabase {
    fn create(admin: &str) -> PgDatabase {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "zt_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        psql(admin, &format!("CREATE DATABASE {name}"));
        let mut url = url::Url::parse(admin).expect("ZENCRYPT_TEST_DB_URL is a URL");
        url.set_path(&format!("/{name}"));
        PgDatabase {
            admin: admin.to_string(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.admin.as_str(),
                "-qAtc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Runs one statement with psql, panicking with its message when it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// The PostgreSQL server the end-to-end suite runs on, when `ZENCRYPT_TEST_DB_URL` names
/// one.
/// Whether the suite runs in CI, where a test that cannot set up what it needs fails
/// instead of skipping.
#[allow(clippy::disallowed_methods)]
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

// The suite's own setting, read from the environment the tests run in.
#[allow(clippy::disallowed_methods)]
pub fn pg_server() -> Option<String> {
    std::env::var("ZENCRYPT_TEST_DB_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// What a finished command produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Env {
    /// An installation on the suite's backend: a file in the temp home, or a database of
    /// its own on the PostgreSQL server `ZENCRYPT_TEST_DB_URL` names.
    pub fn new() -> Self {
        let pg = pg_server().map(|admin| PgDatabase::create(&admin));
        let mut extra = Vec::new();
        if let Some(db) = &pg {
            extra.push(("ZENCRYPT_DB".to_string(), db.url.clone()));
            extra.push(("ZENCRYPT_AUDIT_KEY".to_string(), PG_AUDIT_KEY.to_string()));
        }
        Env {
            dir: tempfile::tempdir().unwrap(),
            extra,
            pg,
        }
    }

    /// An installation with a database file, whatever the suite's backend: for tests of
    /// the SQLite file itself.
    pub fn sqlite() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            extra: Vec::new(),
            pg: None,
        }
    }

    /// Whether this installation's database is on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.pg.is_some()
    }

    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.home().join(".local/share/zencrypt")
    }

    pub fn db(&self) -> PathBuf {
        self.data_dir().join("zencrypt.db")
    }

    /// Where this client keeps its witness of each database's audit chain.
    pub fn witness_dir(&self) -> PathBuf {
        self.home().join(".local/state/zencrypt/witness")
    }

    /// Forgets what this client saw of the audit chain, as a client on another machine
    /// would never have seen it.
    pub fn forget_witness(&self) {
        let _ = std::fs::remove_dir_all(self.witness_dir());
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.home().join(".local/state/zencrypt/sessions")
    }

    /// The command with a scrubbed environment.
    pub fn command(&self) -> Command {
        let mut c = Command::cargo_bin("zencrypt").unwrap();
        c.env_clear()
            .env("HOME", self.home())
            .env("ZENCRYPT_ARGON2_MEMORY_KIB", "64")
            .env("ZENCRYPT_ARGON2_ITERATIONS", "1")
            .current_dir(self.dir.path());
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    pub fn run_with(&self, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let mut a = assert_cmd::Command::from_std(c);
        a.write_stdin(stdin.to_vec());
        a.output().unwrap().into()
    }

    /// Runs zencrypt through a wrapper program: `wrapper... zencrypt args...`, with the
    /// same scrubbed environment (plus a PATH for the wrapper).
    pub fn run_wrapped(&self, wrapper: &[&str], args: &[&str], stdin: &[u8]) -> Run {
        let inner = self.command();
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..])
            .arg(inner.get_program())
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(self.dir.path());
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        let mut a = assert_cmd::Command::from_std(c);
        a.write_stdin(stdin.to_vec());
        a.output().unwrap().into()
    }

    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        self.run_with(args, stdin, &[])
    }

    pub fn signup(&self, user: &str) -> Run {
        let r = self.run(
            &["signup", "--username", user, "--password-stdin"],
            format!("{}\n", pw(user)).as_bytes(),
        );
        r.ok();
        r
    }

    pub fn login(&self, user: &str) -> Run {
        let r = self.run(
            &["login", "--username", user, "--password-stdin"],
            format!("{}\n", pw(user)).as_bytes(),
        );
        r.ok();
        r
    }

    /// Logs in and returns a token without touching the session file's owner.
    pub fn token(&self, user: &str) -> String {
        let r = self.run(
            &[
                "login",
                "--username",
                user,
                "--password-stdin",
                "--print-token",
            ],
            format!("{}\n", pw(user)).as_bytes(),
        );
        r.ok();
        r.stdout.trim().to_string()
    }

    /// Runs as the holder of `token`.
    pub fn as_token(&self, token: &str, args: &[&str]) -> Run {
        self.run_with(args, b"", &[("ZENCRYPT_TOKEN", token)])
    }

    /// A connection to the SQLite file, for tests about the file itself.
    pub fn sql(&self) -> rusqlite::Connection {
        assert!(
            !self.on_postgres(),
            "a test of the SQLite file must use Env::sqlite()"
        );
        rusqlite::Connection::open(self.db()).unwrap()
    }

    /// Runs SQL statements straight against the database, on either backend (the SQL must
    /// mean the same on both).
    pub fn exec(&self, sql: &str) {
        match &self.pg {
            Some(db) => {
                psql(&db.url, sql);
            }
            None => self.sql().execute_batch(sql).unwrap(),
        }
    }

    /// A bytes literal of this backend's SQL, from hex.
    pub fn blob(&self, hex: &str) -> String {
        if self.on_postgres() {
            format!("'\\x{hex}'::bytea")
        } else {
            format!("x'{hex}'")
        }
    }

    /// Whether zencrypt has made its database: the file, or on PostgreSQL any table in the
    /// test's own database (which exists, empty, from the start).
    pub fn database_made(&self) -> bool {
        match &self.pg {
            Some(db) => {
                psql(
                    &db.url,
                    "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
                )
                .trim()
                    != "0"
            }
            None => self.db().exists(),
        }
    }

    /// The first column of every row `query` returns, straight from the database, on
    /// either backend.
    pub fn column<T>(&self, query: &str) -> Vec<T>
    where
        T: rusqlite::types::FromSql + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        if let Some(db) = &self.pg {
            let out = psql(&db.url, query);
            return out
                .lines()
                .map(|l| l.parse::<T>().expect("a value of the column's type"))
                .collect();
        }
        self.sql()
            .prepare(query)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The first column of every row `query` returns, read as bytes (`None` for NULL),
    /// straight from the database, on either backend.
    pub fn blobs(&self, query: &str) -> Vec<Option<Vec<u8>>> {
        if let Some(db) = &self.pg {
            let out = Command::new("psql")
                .args([db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-qAt"])
                .args(["-P", "null=NULL", "-c", query])
                .env("PGOPTIONS", "-c bytea_output=hex")
                .output()
                .expect("psql runs");
            assert!(
                out.status.success(),
                "psql failed on {query}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| match l {
                    "NULL" => None,
                    _ => Some(unhex(l.strip_prefix("\\x").expect("a bytea in hex"))),
                })
                .collect();
        }
        self.sql()
            .prepare(query)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    /// The bytes of the one row, not NULL, that `query` returns.
    #[track_caller]
    pub fn blob_of(&self, query: &str) -> Vec<u8> {
        match &self.blobs(query)[..] {
            [Some(bytes)] => bytes.clone(),
            other => panic!("{query} returned {other:?}, not one value"),
        }
    }

    /// Adds every row of `table` in `from`'s database (of the same backend and schema)
    /// to this installation's.
    pub fn copy_rows(&self, from: &Env, table: &str) {
        match (&self.pg, &from.pg) {
            (Some(to), Some(from)) => {
                let rows = Command::new("psql")
                    .args([from.url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc"])
                    .arg(format!("COPY {table} TO STDOUT"))
                    .output()
                    .expect("psql runs");
                assert!(
                    rows.status.success(),
                    "{}",
                    String::from_utf8_lossy(&rows.stderr)
                );
                let mut c = assert_cmd::Command::new("psql");
                c.args([to.url.as_str(), "-v", "ON_ERROR_STOP=1", "-qc"])
                    .arg(format!("COPY {table} FROM STDIN"))
                    .write_stdin(rows.stdout);
                let out = c.output().expect("psql runs");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            (None, None) => {
                let conn = self.sql();
                conn.execute("ATTACH DATABASE ?1 AS other", [from.db().to_str().unwrap()])
                    .unwrap();
                conn.execute_batch(&format!(
                    "INSERT INTO {table} SELECT * FROM other.{table}; DETACH DATABASE other"
                ))
                .unwrap();
            }
            _ => panic!("rows are copied between installations of one backend"),
        }
    }

    /// Whether `secret` is anywhere in the database, as it is or in hex: in the SQLite
    /// file or its write-ahead log, or in a dump of the PostgreSQL database (which shows
    /// bytes columns in hex).
    pub fn stores(&self, secret: &[u8]) -> bool {
        let stored: Vec<Vec<u8>> = match &self.pg {
            Some(db) => {
                let out = Command::new("pg_dump")
                    .args(["--data-only", db.url.as_str()])
                    .output()
                    .expect("pg_dump runs");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                vec![out.stdout]
            }
            None => {
                let db = std::fs::read(self.db()).expect("the database file");
                let wal = std::fs::read(self.db().with_extension("db-wal")).unwrap_or_default();
                vec![db, wal]
            }
        };
        let hex = hex(secret).into_bytes();
        stored.iter().any(|bytes| {
            [secret, &hex[..]]
                .iter()
                .any(|s| bytes.windows(s.len()).any(|w| w == *s))
        })
    }

    /// The saved session file, for tests with exactly one.
    pub fn session_file(&self) -> PathBuf {
        let files: Vec<PathBuf> = std::fs::read_dir(self.sessions_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.into_iter().next().unwrap()
    }
}

/// Bytes as lowercase hex, as [`Env::blob`] takes them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex.
pub fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex: {hex}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The audit rows as JSON, as seen by `token`'s holder.
pub fn audit_rows(env: &Env, token: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["audit", "list", "--json", "--limit", "1000"];
    args.extend_from_slice(extra);
    let r = env.as_token(token, &args);
    r.ok();
    r.json().as_array().unwrap().clone()
}

impl Env {
    /// An insider who holds the audit key (a teammate, an administrator) rewrites a user
    /// row straight in the database and binds it again under the audit key, so the row
    /// MAC alone no longer tells.
    pub fn rebind_user(
        &self,
        user: &str,
        change: impl FnOnce(&mut zencrypt_core::model::UserRecord),
    ) {
        use base64::Engine;
        use zencrypt_core::crypto::mac::MacKey;
        use zencrypt_core::integrity::{encode_user, row_mac};
        use zencrypt_core::storage::Storage;
        let (mut store, key): (Box<dyn Storage>, Vec<u8>) = match &self.pg {
            Some(db) => (
                Box::new(
                    zencrypt_postgres::PgStore::open(
                        &zencrypt_postgres::PgOptions::new(&db.url),
                        false,
                    )
                    .unwrap(),
                ),
                PG_AUDIT_KEY.as_bytes().to_vec(),
            ),
            None => {
                let text = std::fs::read_to_string(self.data_dir().join("audit.key")).unwrap();
                (
                    Box::new(zencrypt_sqlite::SqliteStore::open(&self.db()).unwrap()),
                    base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .unwrap(),
                )
            }
        };
        let mut tx = store.write().unwrap();
        let mut row = tx.user_by_name(user).unwrap().unwrap();
        change(&mut row);
        row.mac = row_mac(&MacKey::new(key), &encode_user(&row));
        tx.update_user(&row).unwrap();
        tx.commit().unwrap();
    }
}

/// alice (the installation's admin: she signed up first), bob and carol, logged in: their
/// tokens.
pub fn three_users(env: &Env) -> (String, String, String) {
    env.signup("alice");
    env.signup("bob");
    env.signup("carol");
    (env.token("alice"), env.token("bob"), env.token("carol"))
}

/// `data get REFERENCE` as the holder of `token`.
pub fn get(env: &Env, token: &str, reference: &str) -> Run {
    env.as_token(token, &["data", "get", reference])
}

/// A user's id, from the database.
pub fn user_id(env: &Env, name: &str) -> i64 {
    env.column::<i64>(&format!("SELECT id FROM users WHERE username = '{name}'"))[0]
}

/// Stores `value` as record `name` for the holder of `token`; returns its token.
pub fn put_as(env: &Env, token: &str, name: &str, value: &[u8]) -> String {
    let r = env.run_with(
        &["data", "put", "--name", name, "-q"],
        value,
        &[("ZENCRYPT_TOKEN", token)],
    );
    r.ok();
    r.stdout.trim().to_string()
}

/// Encrypts `plain` (on stdin) as the holder of `token` with `args` (`--key K`, `--to U`,
/// ...) into the file `name` in the test's directory; returns its path.
pub fn encrypt_as(env: &Env, token: &str, args: &[&str], name: &str, plain: &[u8]) -> String {
    let out = env.dir.path().join(name);
    let out = out.to_str().unwrap().to_string();
    let mut all = vec!["encrypt", "-o", &out];
    all.extend_from_slice(args);
    env.run_with(&all, plain, &[("ZENCRYPT_TOKEN", token)]).ok();
    out
}
