//! The schema, as one append-only numbered list of migrations with the SQL for each
//! backend. A released migration is never edited; changes go in a new one at the end.
//! Steps that must compute something (the row bindings of version 5) run in the vault
//! when it opens a database (see `Vault::open`), not here.
//!
//! Both backends end up with the tables and columns of [`super::schema::TABLES`]. On
//! PostgreSQL every integer is a BIGINT (booleans are 0 and 1, as on SQLite), bytes are
//! BYTEA and text columns are `COLLATE "C"` (they compare and sort bytewise, as on
//! SQLite). Ids are handed out inside write transactions (which serialise), so there are
//! no identity columns. The PostgreSQL backend keeps the schema version in a table of its
//! own (SQLite keeps it in `PRAGMA user_version`) and writes the random database id when
//! it applies version 1: both are its business, not this list's.

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The schema version this step takes the database to.
    pub version: i64,
    /// What the step does, for messages and `db status`.
    pub name: &'static str,
    /// The step on SQLite.
    pub sqlite: &'static str,
    /// The step on PostgreSQL.
    pub postgres: &'static str,
}

/// Every migration, oldest first; migration `i` takes the schema to version `i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts, sessions and the audit log",
        sqlite: V1_ACCOUNTS_SESSIONS_AUDIT,
        postgres: PG_V1_ACCOUNTS_SESSIONS_AUDIT,
    },
    Migration {
        version: 2,
        name: "keys and usage",
        sqlite: V2_KEYS_USAGE,
        postgres: PG_V2_KEYS_USAGE,
    },
    Migration {
        version: 3,
        name: "records",
        sqlite: V3_RECORDS,
        postgres: PG_V3_RECORDS,
    },
    Migration {
        version: 4,
        name: "session expiry index",
        sqlite: V4_SESSION_EXPIRY,
        postgres: PG_V4_SESSION_EXPIRY,
    },
    Migration {
        version: 5,
        name: "row bindings",
        sqlite: V5_ROW_BINDINGS,
        postgres: PG_V5_ROW_BINDINGS,
    },
    Migration {
        version: 6,
        name: "the audit chain head",
        sqlite: V6_AUDIT_HEAD,
        postgres: PG_V6_AUDIT_HEAD,
    },
    Migration {
        version: 7,
        name: "record versions",
        sqlite: V7_RECORD_VERSIONS,
        postgres: PG_V7_RECORD_VERSIONS,
    },
    Migration {
        version: 8,
        name: "recovery keys",
        sqlite: V8_RECOVERY_KEYS,
        postgres: PG_V8_RECOVERY_KEYS,
    },
    Migration {
        version: 9,
        name: "service accounts",
        sqlite: V9_SERVICE_ACCOUNTS,
        postgres: PG_V9_SERVICE_ACCOUNTS,
    },
    Migration {
        version: 10,
        name: "user keypairs",
        sqlite: V10_USER_KEYPAIRS,
        postgres: PG_V10_USER_KEYPAIRS,
    },
    Migration {
        version: 11,
        name: "record shares",
        sqlite: V11_RECORD_SHARES,
        postgres: PG_V11_RECORD_SHARES,
    },
    Migration {
        version: 12,
        name: "groups",
        sqlite: V12_GROUPS,
        postgres: PG_V12_GROUPS,
    },
    Migration {
        version: 13,
        name: "write shares and transfers",
        sqlite: V13_WRITE_SHARES,
        postgres: PG_V13_WRITE_SHARES,
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

/// Earlier values of a record (`data history`): each row is a record's whole encrypted
/// state at one version, with its own data key, bound to the record under the owner's
/// integrity key (docs/threat-model.md, "Row integrity"). Hard deletes remove them with
/// the record.
const V7_RECORD_VERSIONS: &str = "
CREATE TABLE record_versions (
    record_id   INTEGER NOT NULL REFERENCES records(id),
    version     INTEGER NOT NULL,
    key_id      INTEGER REFERENCES keys(id),
    key_version INTEGER,
    identity_id INTEGER REFERENCES password_identities(id),
    wrapped_dek BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    written_at  INTEGER NOT NULL,
    row_mac     BLOB NOT NULL,
    PRIMARY KEY (record_id, version),
    CHECK ((key_id IS NULL) <> (identity_id IS NULL))
) STRICT;
";

/// A second wrapping of each user key, under a key derived from a recovery code shown to
/// the user once; bound with the rest of the user row (docs/threat-model.md, "Account
/// recovery"). All three are set together or not at all.
const V8_RECOVERY_KEYS: &str = "
ALTER TABLE users ADD COLUMN recovery_salt BLOB;
ALTER TABLE users ADD COLUMN recovery_wrapped_key BLOB;
ALTER TABLE users ADD COLUMN recovery_created_at INTEGER;
";

/// Service accounts: a user row with the `service` role and an owner; the owner's grants
/// (bound under the owner's integrity key) and, per granted record, its current data key
/// wrapped under the service key (docs/threat-model.md, "Service accounts").
const V9_SERVICE_ACCOUNTS: &str = "
ALTER TABLE users ADD COLUMN owner_id INTEGER REFERENCES users(id);
CREATE TABLE service_grants (
    id         INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES users(id),
    owner_id   INTEGER NOT NULL REFERENCES users(id),
    pattern    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    row_mac    BLOB NOT NULL,
    UNIQUE (service_id, pattern)
) STRICT;
CREATE TABLE service_record_keys (
    service_id  INTEGER NOT NULL REFERENCES users(id),
    record_id   INTEGER NOT NULL REFERENCES records(id),
    version     INTEGER NOT NULL,
    wrapped_dek BLOB NOT NULL,
    PRIMARY KEY (service_id, record_id)
) STRICT;
";

/// Each user's keypair for sharing (an X25519 key as an age recipient, an Ed25519 signing
/// key, both private halves wrapped under the user key) and the fingerprints the user
/// pinned, sealed under the user key (docs/sharing.md). Bound with the rest of the row.
const V10_USER_KEYPAIRS: &str = "
ALTER TABLE users ADD COLUMN public_key TEXT;
ALTER TABLE users ADD COLUMN signing_key BLOB;
ALTER TABLE users ADD COLUMN wrapped_keypair BLOB;
ALTER TABLE users ADD COLUMN key_pins BLOB;
";

/// Records shared with other users: per record and recipient, the data key wrapped to the
/// recipient's X25519 key, under the owner's Ed25519 signature (docs/sharing.md); and the
/// hash of each value's ciphertext, bound with its row, since a recipient holds the data key.
const V11_RECORD_SHARES: &str = "
CREATE TABLE record_shares (
    id           INTEGER PRIMARY KEY,
    record_id    INTEGER NOT NULL REFERENCES records(id),
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    recipient_id INTEGER NOT NULL REFERENCES users(id),
    version      INTEGER NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    signature    BLOB NOT NULL,
    grant_signature BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (record_id, recipient_id)
) STRICT;
CREATE INDEX record_shares_by_recipient ON record_shares(recipient_id);
CREATE INDEX record_shares_by_owner ON record_shares(owner_id);
ALTER TABLE records ADD COLUMN value_hash BLOB;
ALTER TABLE records ADD COLUMN share_digest BLOB;
CREATE TABLE key_shares (
    id               INTEGER PRIMARY KEY,
    key_id           INTEGER NOT NULL REFERENCES keys(id),
    key_name         TEXT NOT NULL,
    owner_id         INTEGER NOT NULL REFERENCES users(id),
    recipient_id     INTEGER NOT NULL REFERENCES users(id),
    version          INTEGER NOT NULL,
    wrapped_material BLOB NOT NULL,
    signature        BLOB NOT NULL,
    grant_signature  BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    UNIQUE (key_id, recipient_id, version)
) STRICT;
CREATE INDEX key_shares_by_recipient ON key_shares(recipient_id);
ALTER TABLE keys ADD COLUMN share_digest BLOB;
ALTER TABLE record_versions ADD COLUMN value_hash BLOB;
";

const PG_V1_ACCOUNTS_SESSIONS_AUDIT: &str = r#"
CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE users (
    id               BIGINT PRIMARY KEY,
    username         TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash    TEXT COLLATE "C" NOT NULL,
    role             TEXT COLLATE "C" NOT NULL CHECK (role IN ('user', 'auditor', 'admin')),
    status           TEXT COLLATE "C" NOT NULL CHECK (status IN ('active', 'disabled')),
    kek_salt         BYTEA NOT NULL,
    kek_m_kib        BIGINT NOT NULL,
    kek_t            BIGINT NOT NULL,
    kek_p            BIGINT NOT NULL,
    wrapped_user_key BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    last_login_at    BIGINT
);

CREATE TABLE sessions (
    id               TEXT COLLATE "C" PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users(id),
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    revoked_at       BIGINT,
    wrapped_user_key BYTEA NOT NULL
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE audit_log (
    seq      BIGINT PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor_id BIGINT,
    actor    TEXT COLLATE "C" NOT NULL,
    action   TEXT COLLATE "C" NOT NULL,
    target   TEXT COLLATE "C" NOT NULL,
    outcome  TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('ok', 'denied', 'failed')),
    detail   TEXT COLLATE "C" NOT NULL,
    prev_mac BYTEA NOT NULL,
    mac      BYTEA NOT NULL
);
CREATE INDEX audit_by_actor ON audit_log(actor_id, seq);
"#;

const PG_V2_KEYS_USAGE: &str = r#"
CREATE TABLE keys (
    id                  BIGINT PRIMARY KEY,
    owner_id            BIGINT NOT NULL REFERENCES users(id),
    name                TEXT COLLATE "C" NOT NULL,
    status              TEXT COLLATE "C" NOT NULL
                        CHECK (status IN ('active', 'disabled', 'destroyed')),
    exportable          BIGINT NOT NULL CHECK (exportable IN (0, 1)),
    rotation_period     BIGINT,
    expires_at          BIGINT,
    min_decrypt_version BIGINT NOT NULL,
    latest_version      BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE key_versions (
    key_id           BIGINT NOT NULL REFERENCES keys(id),
    version          BIGINT NOT NULL,
    wrapped_material BYTEA,
    created_at       BIGINT NOT NULL,
    encryptions      BIGINT NOT NULL DEFAULT 0,
    bytes            BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, version)
);

CREATE TABLE key_events (
    id       BIGINT PRIMARY KEY,
    key_id   BIGINT NOT NULL REFERENCES keys(id),
    at       BIGINT NOT NULL,
    event    TEXT COLLATE "C" NOT NULL,
    version  BIGINT,
    actor_id BIGINT,
    actor    TEXT COLLATE "C" NOT NULL,
    detail   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX key_events_by_key ON key_events(key_id, id);

CREATE TABLE usage_events (
    id          BIGINT PRIMARY KEY,
    at          BIGINT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    key_id      BIGINT,
    key_version BIGINT,
    record_id   BIGINT,
    operation   TEXT COLLATE "C" NOT NULL,
    bytes       BIGINT NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('ok', 'failed'))
);
CREATE INDEX usage_by_user ON usage_events(user_id, at);
"#;

/// `records_id_high` stands in for SQLite's AUTOINCREMENT: it holds the highest record id
/// ever deleted, so an id is never handed out twice, even after a purge.
const PG_V3_RECORDS: &str = r#"
CREATE TABLE password_identities (
    id                   BIGINT PRIMARY KEY,
    owner_id             BIGINT NOT NULL REFERENCES users(id),
    salt                 BYTEA NOT NULL,
    kdf_m_kib            BIGINT NOT NULL,
    kdf_t                BIGINT NOT NULL,
    kdf_p                BIGINT NOT NULL,
    wrapped_identity_key BYTEA NOT NULL,
    created_at           BIGINT NOT NULL
);
CREATE INDEX identities_by_owner ON password_identities(owner_id);

CREATE TABLE records (
    id          BIGINT PRIMARY KEY,
    token       TEXT COLLATE "C" NOT NULL UNIQUE,
    owner_id    BIGINT NOT NULL REFERENCES users(id),
    name        TEXT COLLATE "C",
    key_id      BIGINT REFERENCES keys(id),
    key_version BIGINT,
    identity_id BIGINT REFERENCES password_identities(id),
    wrapped_dek BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    deleted_at  BIGINT,
    version     BIGINT NOT NULL,
    CHECK ((key_id IS NULL) <> (identity_id IS NULL))
);
CREATE UNIQUE INDEX records_live_name ON records(owner_id, name)
    WHERE name IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX records_by_owner ON records(owner_id, created_at);
CREATE INDEX records_by_name ON records(owner_id, name);
CREATE INDEX records_by_key ON records(key_id, key_version);
CREATE INDEX records_by_identity ON records(identity_id);
CREATE SEQUENCE records_id_high AS BIGINT MINVALUE 0 START WITH 0;
"#;

const PG_V4_SESSION_EXPIRY: &str = "
CREATE INDEX sessions_holding_keys ON sessions(expires_at) WHERE octet_length(wrapped_user_key) > 0;
";

/// As on SQLite; user names are looked up by `lower()` under the C collation, which folds
/// ASCII letters only, like SQLite's NOCASE.
const PG_V5_ROW_BINDINGS: &str = r#"
ALTER TABLE users ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE users ADD COLUMN must_change_password BIGINT NOT NULL DEFAULT 0
    CHECK (must_change_password IN (0, 1));
ALTER TABLE users ADD COLUMN rows_bound BIGINT NOT NULL DEFAULT 0 CHECK (rows_bound IN (0, 1));
ALTER TABLE sessions ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE keys ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE key_versions ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE records ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE password_identities ADD COLUMN row_mac BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE password_identities ADD COLUMN kek_scheme BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN state BYTEA NOT NULL DEFAULT ''::bytea;
CREATE INDEX users_by_folded_name ON users (lower(username COLLATE "C"));
UPDATE sessions SET revoked_at = coalesce(revoked_at, CAST(floor(extract(epoch FROM now())) AS BIGINT)),
    wrapped_user_key = ''::bytea;
"#;

const PG_V7_RECORD_VERSIONS: &str = "
CREATE TABLE record_versions (
    record_id   BIGINT NOT NULL REFERENCES records(id),
    version     BIGINT NOT NULL,
    key_id      BIGINT REFERENCES keys(id),
    key_version BIGINT,
    identity_id BIGINT REFERENCES password_identities(id),
    wrapped_dek BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    written_at  BIGINT NOT NULL,
    row_mac     BYTEA NOT NULL,
    PRIMARY KEY (record_id, version),
    CHECK ((key_id IS NULL) <> (identity_id IS NULL))
);
";

const PG_V8_RECOVERY_KEYS: &str = "
ALTER TABLE users ADD COLUMN recovery_salt BYTEA;
ALTER TABLE users ADD COLUMN recovery_wrapped_key BYTEA;
ALTER TABLE users ADD COLUMN recovery_created_at BIGINT;
";

const PG_V9_SERVICE_ACCOUNTS: &str = r#"
ALTER TABLE users ADD COLUMN owner_id BIGINT REFERENCES users(id);
CREATE TABLE service_grants (
    id         BIGINT PRIMARY KEY,
    service_id BIGINT NOT NULL REFERENCES users(id),
    owner_id   BIGINT NOT NULL REFERENCES users(id),
    pattern    TEXT COLLATE "C" NOT NULL,
    created_at BIGINT NOT NULL,
    row_mac    BYTEA NOT NULL,
    UNIQUE (service_id, pattern)
);
CREATE TABLE service_record_keys (
    service_id  BIGINT NOT NULL REFERENCES users(id),
    record_id   BIGINT NOT NULL REFERENCES records(id),
    version     BIGINT NOT NULL,
    wrapped_dek BYTEA NOT NULL,
    PRIMARY KEY (service_id, record_id)
);
"#;

const PG_V10_USER_KEYPAIRS: &str = r#"
ALTER TABLE users ADD COLUMN public_key TEXT COLLATE "C";
ALTER TABLE users ADD COLUMN signing_key BYTEA;
ALTER TABLE users ADD COLUMN wrapped_keypair BYTEA;
ALTER TABLE users ADD COLUMN key_pins BYTEA;
"#;

/// Groups (docs/sharing.md, "Groups"): a keypair per group, its private key wrapped to each
/// member, the rows signed by the group's manager; a share is for one user or one group (at
/// the epoch of the group key it is wrapped to). SQLite rebuilds the share tables, whose
/// recipient may now be empty.
const V12_GROUPS: &str = "
CREATE TABLE groups (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    manager_id     INTEGER NOT NULL REFERENCES users(id),
    recipient      TEXT NOT NULL,
    epoch          INTEGER NOT NULL,
    history        BLOB NOT NULL,
    members_digest BLOB NOT NULL,
    signature      BLOB NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE TABLE group_members (
    id               INTEGER PRIMARY KEY,
    group_id         INTEGER NOT NULL REFERENCES groups(id),
    user_id          INTEGER NOT NULL REFERENCES users(id),
    epoch            INTEGER NOT NULL,
    wrapped_identity BLOB NOT NULL,
    signature        BLOB NOT NULL,
    added_at         INTEGER NOT NULL,
    UNIQUE (group_id, user_id)
) STRICT;
CREATE INDEX group_members_by_user ON group_members(user_id);
CREATE TABLE record_shares_v12 (
    id           INTEGER PRIMARY KEY,
    record_id    INTEGER NOT NULL REFERENCES records(id),
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    recipient_id INTEGER REFERENCES users(id),
    version      INTEGER NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    signature    BLOB NOT NULL,
    grant_signature BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    group_id     INTEGER REFERENCES groups(id),
    epoch        INTEGER,
    UNIQUE (record_id, recipient_id),
    UNIQUE (record_id, group_id),
    CHECK ((recipient_id IS NULL) = (group_id IS NOT NULL)),
    CHECK ((group_id IS NULL) = (epoch IS NULL))
) STRICT;
INSERT INTO record_shares_v12 (id, record_id, owner_id, recipient_id, version, wrapped_dek,
    signature, grant_signature, created_at)
    SELECT id, record_id, owner_id, recipient_id, version, wrapped_dek, signature,
    grant_signature, created_at FROM record_shares;
DROP TABLE record_shares;
ALTER TABLE record_shares_v12 RENAME TO record_shares;
CREATE INDEX record_shares_by_recipient ON record_shares(recipient_id);
CREATE INDEX record_shares_by_owner ON record_shares(owner_id);
CREATE INDEX record_shares_by_group ON record_shares(group_id);
CREATE TABLE key_shares_v12 (
    id               INTEGER PRIMARY KEY,
    key_id           INTEGER NOT NULL REFERENCES keys(id),
    key_name         TEXT NOT NULL,
    owner_id         INTEGER NOT NULL REFERENCES users(id),
    recipient_id     INTEGER REFERENCES users(id),
    version          INTEGER NOT NULL,
    wrapped_material BLOB NOT NULL,
    signature        BLOB NOT NULL,
    grant_signature  BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    group_id         INTEGER REFERENCES groups(id),
    epoch            INTEGER,
    UNIQUE (key_id, recipient_id, version),
    UNIQUE (key_id, group_id, version),
    CHECK ((recipient_id IS NULL) = (group_id IS NOT NULL)),
    CHECK ((group_id IS NULL) = (epoch IS NULL))
) STRICT;
INSERT INTO key_shares_v12 (id, key_id, key_name, owner_id, recipient_id, version,
    wrapped_material, signature, grant_signature, created_at)
    SELECT id, key_id, key_name, owner_id, recipient_id, version, wrapped_material, signature,
    grant_signature, created_at FROM key_shares;
DROP TABLE key_shares;
ALTER TABLE key_shares_v12 RENAME TO key_shares;
CREATE INDEX key_shares_by_recipient ON key_shares(recipient_id);
CREATE INDEX key_shares_by_group ON key_shares(group_id);
";

/// Shares that allow writing (docs/sharing.md, "Write shares"): the grant says so, and a
/// recipient's new value waits in `record_writes`, signed by its writer, until the owner's
/// client takes it in as the record's next version. One waiting write per record. And
/// records handed to another user (`record_transfers`, docs/sharing.md, "Transfers"): the
/// data key wrapped to the new owner, signed by whoever gave it, until their client takes
/// it in as a record of theirs.
const V13_WRITE_SHARES: &str = "
ALTER TABLE groups ADD COLUMN handovers BLOB NOT NULL DEFAULT x'';
ALTER TABLE record_shares ADD COLUMN can_write INTEGER NOT NULL DEFAULT 0;
ALTER TABLE key_shares ADD COLUMN can_write INTEGER NOT NULL DEFAULT 0;
CREATE TABLE record_writes (
    id           INTEGER PRIMARY KEY,
    record_id    INTEGER NOT NULL UNIQUE REFERENCES records(id),
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    writer_id    INTEGER NOT NULL REFERENCES users(id),
    base_version INTEGER NOT NULL,
    ciphertext   BLOB NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    signature    BLOB NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX record_writes_by_owner ON record_writes(owner_id);
CREATE TABLE record_transfers (
    id           INTEGER PRIMARY KEY,
    record_id    INTEGER NOT NULL UNIQUE REFERENCES records(id),
    owner_id     INTEGER NOT NULL REFERENCES users(id),
    giver_id     INTEGER NOT NULL REFERENCES users(id),
    recipient_id INTEGER NOT NULL REFERENCES users(id),
    version      INTEGER NOT NULL,
    wrapped_dek  BLOB NOT NULL,
    signature    BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    taken_at     INTEGER
) STRICT;
CREATE INDEX record_transfers_by_recipient ON record_transfers(recipient_id);
CREATE INDEX record_transfers_by_owner ON record_transfers(owner_id);
";

const PG_V13_WRITE_SHARES: &str = "
ALTER TABLE groups ADD COLUMN handovers BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE record_shares ADD COLUMN can_write BIGINT NOT NULL DEFAULT 0;
ALTER TABLE key_shares ADD COLUMN can_write BIGINT NOT NULL DEFAULT 0;
CREATE TABLE record_writes (
    id           BIGINT PRIMARY KEY,
    record_id    BIGINT NOT NULL UNIQUE REFERENCES records(id),
    owner_id     BIGINT NOT NULL REFERENCES users(id),
    writer_id    BIGINT NOT NULL REFERENCES users(id),
    base_version BIGINT NOT NULL,
    ciphertext   BYTEA NOT NULL,
    wrapped_dek  BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX record_writes_by_owner ON record_writes(owner_id);
CREATE TABLE record_transfers (
    id           BIGINT PRIMARY KEY,
    record_id    BIGINT NOT NULL UNIQUE REFERENCES records(id),
    owner_id     BIGINT NOT NULL REFERENCES users(id),
    giver_id     BIGINT NOT NULL REFERENCES users(id),
    recipient_id BIGINT NOT NULL REFERENCES users(id),
    version      BIGINT NOT NULL,
    wrapped_dek  BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    taken_at     BIGINT
);
CREATE INDEX record_transfers_by_recipient ON record_transfers(recipient_id);
CREATE INDEX record_transfers_by_owner ON record_transfers(owner_id);
";

const PG_V12_GROUPS: &str = r#"
CREATE TABLE groups (
    id             BIGINT PRIMARY KEY,
    name           TEXT COLLATE "C" NOT NULL UNIQUE,
    manager_id     BIGINT NOT NULL REFERENCES users(id),
    recipient      TEXT COLLATE "C" NOT NULL,
    epoch          BIGINT NOT NULL,
    history        BYTEA NOT NULL,
    members_digest BYTEA NOT NULL,
    signature      BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE TABLE group_members (
    id               BIGINT PRIMARY KEY,
    group_id         BIGINT NOT NULL REFERENCES groups(id),
    user_id          BIGINT NOT NULL REFERENCES users(id),
    epoch            BIGINT NOT NULL,
    wrapped_identity BYTEA NOT NULL,
    signature        BYTEA NOT NULL,
    added_at         BIGINT NOT NULL,
    UNIQUE (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members(user_id);
ALTER TABLE record_shares ALTER COLUMN recipient_id DROP NOT NULL;
ALTER TABLE record_shares ADD COLUMN group_id BIGINT REFERENCES groups(id);
ALTER TABLE record_shares ADD COLUMN epoch BIGINT;
ALTER TABLE record_shares ADD UNIQUE (record_id, group_id);
ALTER TABLE record_shares ADD CHECK ((recipient_id IS NULL) = (group_id IS NOT NULL));
ALTER TABLE record_shares ADD CHECK ((group_id IS NULL) = (epoch IS NULL));
CREATE INDEX record_shares_by_group ON record_shares(group_id);
ALTER TABLE key_shares ALTER COLUMN recipient_id DROP NOT NULL;
ALTER TABLE key_shares ADD COLUMN group_id BIGINT REFERENCES groups(id);
ALTER TABLE key_shares ADD COLUMN epoch BIGINT;
ALTER TABLE key_shares ADD UNIQUE (key_id, group_id, version);
ALTER TABLE key_shares ADD CHECK ((recipient_id IS NULL) = (group_id IS NOT NULL));
ALTER TABLE key_shares ADD CHECK ((group_id IS NULL) = (epoch IS NULL));
CREATE INDEX key_shares_by_group ON key_shares(group_id);
"#;

const PG_V11_RECORD_SHARES: &str = r#"
CREATE TABLE record_shares (
    id           BIGINT PRIMARY KEY,
    record_id    BIGINT NOT NULL REFERENCES records(id),
    owner_id     BIGINT NOT NULL REFERENCES users(id),
    recipient_id BIGINT NOT NULL REFERENCES users(id),
    version      BIGINT NOT NULL,
    wrapped_dek  BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    grant_signature BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (record_id, recipient_id)
);
CREATE INDEX record_shares_by_recipient ON record_shares(recipient_id);
CREATE INDEX record_shares_by_owner ON record_shares(owner_id);
ALTER TABLE records ADD COLUMN value_hash BYTEA;
ALTER TABLE records ADD COLUMN share_digest BYTEA;
CREATE TABLE key_shares (
    id               BIGINT PRIMARY KEY,
    key_id           BIGINT NOT NULL REFERENCES keys(id),
    key_name         TEXT COLLATE "C" NOT NULL,
    owner_id         BIGINT NOT NULL REFERENCES users(id),
    recipient_id     BIGINT NOT NULL REFERENCES users(id),
    version          BIGINT NOT NULL,
    wrapped_material BYTEA NOT NULL,
    signature        BYTEA NOT NULL,
    grant_signature  BYTEA NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (key_id, recipient_id, version)
);
CREATE INDEX key_shares_by_recipient ON key_shares(recipient_id);
ALTER TABLE keys ADD COLUMN share_digest BYTEA;
ALTER TABLE record_versions ADD COLUMN value_hash BYTEA;
"#;

const PG_V6_AUDIT_HEAD: &str = "
CREATE TABLE audit_head (
    id  BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    mac BYTEA NOT NULL
);
INSERT INTO audit_head (id, seq, mac)
    SELECT 1, coalesce(max(seq), 0),
        coalesce((SELECT mac FROM audit_log ORDER BY seq DESC LIMIT 1), ''::bytea)
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

    /// Every step has SQL for both backends.
    #[test]
    fn every_step_has_sql_for_each_backend() {
        for m in MIGRATIONS {
            assert!(!m.sqlite.trim().is_empty(), "{}: no SQLite SQL", m.version);
            assert!(
                !m.postgres.trim().is_empty(),
                "{}: no PostgreSQL SQL",
                m.version
            );
        }
    }

    /// The PostgreSQL steps use only the three column types of the schema.
    #[test]
    fn postgres_steps_use_only_bigint_text_and_bytea() {
        for m in MIGRATIONS {
            for banned in [
                " INTEGER",
                " BLOB",
                " STRICT",
                "AUTOINCREMENT",
                "randomblob",
                "x''",
            ] {
                assert!(
                    !m.postgres.contains(banned),
                    "{}: PostgreSQL SQL contains {banned:?}",
                    m.version
                );
            }
        }
    }
}
