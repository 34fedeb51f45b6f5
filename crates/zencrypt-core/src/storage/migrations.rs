//! The schema, as one append-only numbered list of migrations with the SQL for each
//! backend. A released migration is never edited; changes go in a new one at the end.
//! Steps that must compute something (the row bindings of version 5) run in the vault
//! when it opens a database (see `Vault::open`), not here.

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The schema version this step takes the database to.
    pub version: i64,
    /// What the step does, for messages and `db status`.
    pub name: &'static str,
    /// The step on SQLite.
    pub sqlite: &'static str,
}

/// Every migration, oldest first; migration `i` takes the schema to version `i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts, sessions and the audit log",
        sqlite: V1_ACCOUNTS_SESSIONS_AUDIT,
    },
    Migration {
        version: 2,
        name: "keys and usage",
        sqlite: V2_KEYS_USAGE,
    },
    Migration {
        version: 3,
        name: "records",
        sqlite: V3_RECORDS,
    },
    Migration {
        version: 4,
        name: "session expiry index",
        sqlite: V4_SESSION_EXPIRY,
    },
    Migration {
        version: 5,
        name: "row bindings",
        sqlite: V5_ROW_BINDINGS,
    },
    Migration {
        version: 6,
        name: "the audit chain head",
        sqlite: V6_AUDIT_HEAD,
    },
];

/// The latest schema version this binary knows.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

const V1_ACCOUNTS_SESSIONS_AUDIT: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('database_id', randomblob(16));

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

const V2_KEYS_USAGE: &str = "
CREATE TABLE keys (
    id                  INTEGER PRIMARY KEY,
    owner_id            INTEGER NOT NULL REFERENCES users(id),
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'destroyed')),
    exportable          INTEGER NOT NULL CHECK (exportable IN (0, 1)),
    rotation_period     INTEGER,
    expires_at          INTEGER,
    min_decrypt_version INTEGER NOT NULL,
    latest_version      INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    UNIQUE (owner_id, name)
) STRICT;

CREATE TABLE key_versions (
    key_id           INTEGER NOT NULL REFERENCES keys(id),
    version          INTEGER NOT NULL,
    wrapped_material BLOB,
    created_at       INTEGER NOT NULL,
    encryptions      INTEGER NOT NULL DEFAULT 0,
    bytes            INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, version)
) STRICT;

CREATE TABLE key_events (
    id       INTEGER PRIMARY KEY,
    key_id   INTEGER NOT NULL REFERENCES keys(id),
    at       INTEGER NOT NULL,
    event    TEXT NOT NULL,
    version  INTEGER,
    actor_id INTEGER,
    actor    TEXT NOT NULL,
    detail   TEXT NOT NULL
) STRICT;
CREATE INDEX key_events_by_key ON key_events(key_id, id);

CREATE TABLE usage_events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    key_id      INTEGER,
    key_version INTEGER,
    record_id   INTEGER,
    operation   TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'failed'))
) STRICT;
CREATE INDEX usage_by_user ON usage_events(user_id, at);
";

const V3_RECORDS: &str = "
CREATE TABLE password_identities (
    id                   INTEGER PRIMARY KEY,
    owner_id             INTEGER NOT NULL REFERENCES users(id),
    salt                 BLOB NOT NULL,
    kdf_m_kib            INTEGER NOT NULL,
    kdf_t                INTEGER NOT NULL,
    kdf_p                INTEGER NOT NULL,
    wrapped_identity_key BLOB NOT NULL,
    created_at           INTEGER NOT NULL
) STRICT;
CREATE INDEX identities_by_owner ON password_identities(owner_id);

CREATE TABLE records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token       TEXT NOT NULL UNIQUE,
    owner_id    INTEGER NOT NULL REFERENCES users(id),
    name        TEXT,
    key_id      INTEGER REFERENCES keys(id),
    key_version INTEGER,
    identity_id INTEGER REFERENCES password_identities(id),
    wrapped_dek BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    deleted_at  INTEGER,
    version     INTEGER NOT NULL,
    CHECK ((key_id IS NULL) <> (identity_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX records_live_name ON records(owner_id, name)
    WHERE name IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX records_by_owner ON records(owner_id, created_at);
CREATE INDEX records_by_name ON records(owner_id, name);
CREATE INDEX records_by_key ON records(key_id, key_version);
CREATE INDEX records_by_identity ON records(identity_id);
";

/// Expired sessions' copies of the user key are wiped by every write; this index keeps
/// finding the ones still holding a copy cheap however many old sessions there are.
const V4_SESSION_EXPIRY: &str = "
CREATE INDEX sessions_holding_keys ON sessions(expires_at) WHERE length(wrapped_user_key) > 0;
";

/// Row bindings (see docs/threat-model.md, "Row integrity"): every security-relevant row
/// gets a MAC, audit rows carry digests of the row states they wrote, accounts made by an
/// administrator must change their password, record-password identities record how their
/// key-encryption key is made, and user names are looked up ignoring case. Sessions from
/// before have no binding: they are ended (their key copies wiped).
const V5_ROW_BINDINGS: &str = "
ALTER TABLE users ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0
    CHECK (must_change_password IN (0, 1));
ALTER TABLE users ADD COLUMN rows_bound INTEGER NOT NULL DEFAULT 0 CHECK (rows_bound IN (0, 1));
ALTER TABLE sessions ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE keys ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE key_versions ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE records ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE password_identities ADD COLUMN row_mac BLOB NOT NULL DEFAULT x'';
ALTER TABLE password_identities ADD COLUMN kek_scheme INTEGER NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN state BLOB NOT NULL DEFAULT x'';
CREATE INDEX users_by_folded_name ON users(username COLLATE NOCASE);
UPDATE sessions SET revoked_at = coalesce(revoked_at, CAST(strftime('%s', 'now') AS INTEGER)),
    wrapped_user_key = x'';
";

/// The audit chain's head in a one-row table: every write transaction locks this row
/// first (on SQLite the write lock already orders them; the row keeps both backends'
/// schemas alike and gives the head in one read).
const V6_AUDIT_HEAD: &str = "
CREATE TABLE audit_head (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    mac BLOB NOT NULL
) STRICT;
INSERT INTO audit_head (id, seq, mac)
    SELECT 1, coalesce(max(seq), 0), coalesce((SELECT mac FROM audit_log ORDER BY seq DESC LIMIT 1), x'')
    FROM audit_log;
";

#[cfg(test)]
mod tests {
    use super::*;

    /// The list is numbered 1, 2, 3, ... with no gap, and no step is empty.
    #[test]
    fn versions_are_contiguous() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(
                !m.sqlite.trim().is_empty(),
                "migration {} is empty",
                m.version
            );
        }
    }
}
