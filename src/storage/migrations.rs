//! The schema, as append-only numbered migrations recorded in `PRAGMA user_version`.
//! A released migration is never edited; changes go in a new one at the end.

/// Every migration, oldest first; migration `i` takes the schema to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1_ACCOUNTS_SESSIONS_AUDIT];

/// The latest schema version this binary knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

const V1_ACCOUNTS_SESSIONS_AUDIT: &str = "
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('user', 'auditor', 'admin')),
    status           TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    kek_salt         BLOB NOT NULL,
    kek_m_kib        INTEGER NOT NULL,
    kek_t            INTEGER NOT NULL,
    kek_p            INTEGER NOT NULL,
    wrapped_user_key BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    last_login_at    INTEGER
) STRICT;

CREATE TABLE sessions (
    id               TEXT PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users(id),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    wrapped_user_key BLOB NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor_id INTEGER,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    detail   TEXT NOT NULL,
    prev_mac BLOB NOT NULL,
    mac      BLOB NOT NULL
) STRICT;
CREATE INDEX audit_by_actor ON audit_log(actor_id, seq);
";

#[cfg(test)]
mod tests {
    use super::*;

    /// Each migration applies on top of the ones before it, and none is empty.
    #[test]
    fn migrations_apply_in_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert!(!m.trim().is_empty(), "migration {} is empty", i + 1);
            conn.execute_batch(m)
                .unwrap_or_else(|e| panic!("migration {} fails: {e}", i + 1));
        }
        for table in ["users", "sessions", "audit_log"] {
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
