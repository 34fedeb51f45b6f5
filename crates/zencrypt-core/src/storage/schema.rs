//! The tables and columns of the latest schema, the same on every backend, and rows as
//! plain values: what a copy or a backup moves, and what the schema test compares each
//! backend's catalogue with.

use std::fmt;

use super::{StoreError, StoreResult, Tx};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer (booleans are 0 and 1).
    Int,
    /// UTF-8 text.
    Text,
    /// Bytes.
    Blob,
}

/// One column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: &'static str,
    /// Type.
    pub kind: ColumnType,
    /// Whether it may be NULL.
    pub nullable: bool,
}

/// One table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// Name.
    pub name: &'static str,
    /// Every column, in the order rows are dumped and loaded.
    pub columns: &'static [Column],
    /// The primary key's columns: rows are dumped in this order.
    pub key: &'static [&'static str],
    /// The migrations create this table's rows (meta, the audit head): loading a row
    /// replaces the one with the same key instead of adding one.
    pub replace: bool,
}

impl Table {
    /// The column names, comma-separated, for SQL.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The position of a column.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Int,
        nullable: false,
    }
}

const fn int_null(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Int,
        nullable: true,
    }
}

const fn text(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Text,
        nullable: false,
    }
}

const fn text_null(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Text,
        nullable: true,
    }
}

const fn blob(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Blob,
        nullable: false,
    }
}

const fn blob_null(name: &'static str) -> Column {
    Column {
        name,
        kind: ColumnType::Blob,
        nullable: true,
    }
}

/// The `sessions` table (a backup blanks its key copies).
pub const SESSIONS: Table = Table {
    name: "sessions",
    columns: &[
        text("id"),
        int("user_id"),
        int("created_at"),
        int("expires_at"),
        int_null("revoked_at"),
        blob("wrapped_user_key"),
        blob("row_mac"),
    ],
    key: &["id"],
    replace: false,
};

/// Empties a session row's copy of the user key: sessions never travel with a backup or a
/// copy, so a token revoked later cannot open one.
pub fn blank_session_key(table: &Table, row: &mut [Value]) {
    blank_session_key_in(table.name, table.columns.iter().map(|c| c.name), row);
}

/// [`blank_session_key`] for a row of `table` with these `columns`, in their order (a
/// table as an older schema has it).
pub fn blank_session_key_in<'a>(
    table: &str,
    mut columns: impl Iterator<Item = &'a str>,
    row: &mut [Value],
) {
    if table == SESSIONS.name
        && let Some(cell) = columns
            .position(|c| c == "wrapped_user_key")
            .and_then(|i| row.get_mut(i))
    {
        *cell = Value::Blob(Vec::new());
    }
}

/// Every table, parents before the rows that refer to them.
pub const TABLES: &[Table] = &[
    Table {
        name: "meta",
        columns: &[text("key"), blob("value")],
        key: &["key"],
        replace: true,
    },
    Table {
        name: "users",
        columns: &[
            int("id"),
            text("username"),
            text("password_hash"),
            text("role"),
            text("status"),
            blob("kek_salt"),
            int("kek_m_kib"),
            int("kek_t"),
            int("kek_p"),
            blob("wrapped_user_key"),
            int("created_at"),
            int_null("last_login_at"),
            blob("row_mac"),
            int("must_change_password"),
            int("rows_bound"),
            blob_null("recovery_salt"),
            blob_null("recovery_wrapped_key"),
            int_null("recovery_created_at"),
            int_null("owner_id"),
            text_null("public_key"),
            blob_null("signing_key"),
            blob_null("wrapped_keypair"),
            blob_null("key_pins"),
        ],
        key: &["id"],
        replace: false,
    },
    SESSIONS,
    Table {
        name: "password_identities",
        columns: &[
            int("id"),
            int("owner_id"),
            blob("salt"),
            int("kdf_m_kib"),
            int("kdf_t"),
            int("kdf_p"),
            blob("wrapped_identity_key"),
            int("created_at"),
            blob("row_mac"),
            int("kek_scheme"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "keys",
        columns: &[
            int("id"),
            int("owner_id"),
            text("name"),
            text("status"),
            int("exportable"),
            int_null("rotation_period"),
            int_null("expires_at"),
            int("min_decrypt_version"),
            int("latest_version"),
            int("created_at"),
            blob("row_mac"),
            blob_null("share_digest"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "key_versions",
        columns: &[
            int("key_id"),
            int("version"),
            blob_null("wrapped_material"),
            int("created_at"),
            int("encryptions"),
            int("bytes"),
            blob("row_mac"),
        ],
        key: &["key_id", "version"],
        replace: false,
    },
    Table {
        name: "key_events",
        columns: &[
            int("id"),
            int("key_id"),
            int("at"),
            text("event"),
            int_null("version"),
            int_null("actor_id"),
            text("actor"),
            text("detail"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "records",
        columns: &[
            int("id"),
            text("token"),
            int("owner_id"),
            text_null("name"),
            int_null("key_id"),
            int_null("key_version"),
            int_null("identity_id"),
            blob("wrapped_dek"),
            blob("ciphertext"),
            int("created_at"),
            int("updated_at"),
            int_null("expires_at"),
            int_null("deleted_at"),
            int("version"),
            blob("row_mac"),
            blob_null("value_hash"),
            blob_null("share_digest"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "record_versions",
        columns: &[
            int("record_id"),
            int("version"),
            int_null("key_id"),
            int_null("key_version"),
            int_null("identity_id"),
            blob("wrapped_dek"),
            blob("ciphertext"),
            int("written_at"),
            blob("row_mac"),
            blob_null("value_hash"),
        ],
        key: &["record_id", "version"],
        replace: false,
    },
    Table {
        name: "service_grants",
        columns: &[
            int("id"),
            int("service_id"),
            int("owner_id"),
            text("pattern"),
            int("created_at"),
            blob("row_mac"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "service_record_keys",
        columns: &[
            int("service_id"),
            int("record_id"),
            int("version"),
            blob("wrapped_dek"),
        ],
        key: &["service_id", "record_id"],
        replace: false,
    },
    Table {
        name: "groups",
        columns: &[
            int("id"),
            text("name"),
            int("manager_id"),
            text("recipient"),
            int("epoch"),
            blob("history"),
            blob("members_digest"),
            blob("signature"),
            int("created_at"),
            blob("handovers"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "group_members",
        columns: &[
            int("id"),
            int("group_id"),
            int("user_id"),
            int("epoch"),
            blob("wrapped_identity"),
            blob("signature"),
            int("added_at"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "key_shares",
        columns: &[
            int("id"),
            int("key_id"),
            text("key_name"),
            int("owner_id"),
            int_null("recipient_id"),
            int("version"),
            blob("wrapped_material"),
            blob("signature"),
            blob("grant_signature"),
            int("created_at"),
            int_null("group_id"),
            int_null("epoch"),
            int("can_write"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "record_shares",
        columns: &[
            int("id"),
            int("record_id"),
            int("owner_id"),
            int_null("recipient_id"),
            int("version"),
            blob("wrapped_dek"),
            blob("signature"),
            blob("grant_signature"),
            int("created_at"),
            int_null("group_id"),
            int_null("epoch"),
            int("can_write"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "record_writes",
        columns: &[
            int("id"),
            int("record_id"),
            int("owner_id"),
            int("writer_id"),
            int("base_version"),
            blob("ciphertext"),
            blob("wrapped_dek"),
            blob("signature"),
            int("created_at"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "record_transfers",
        columns: &[
            int("id"),
            int("record_id"),
            int("owner_id"),
            int("giver_id"),
            int("recipient_id"),
            int("version"),
            blob("wrapped_dek"),
            blob("signature"),
            int("created_at"),
            int_null("taken_at"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "usage_events",
        columns: &[
            int("id"),
            int("at"),
            int("user_id"),
            int_null("key_id"),
            int_null("key_version"),
            int_null("record_id"),
            text("operation"),
            int("bytes"),
            text("outcome"),
        ],
        key: &["id"],
        replace: false,
    },
    Table {
        name: "audit_log",
        columns: &[
            int("seq"),
            int("at"),
            int_null("actor_id"),
            text("actor"),
            text("action"),
            text("target"),
            text("outcome"),
            text("detail"),
            blob("prev_mac"),
            blob("mac"),
            blob("state"),
        ],
        key: &["seq"],
        replace: false,
    },
    Table {
        name: "audit_head",
        columns: &[int("id"), int("seq"), blob("mac")],
        key: &["id"],
        replace: true,
    },
];

/// One stored value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (wrapped keys and ciphertexts among them: shown by length only).
    Blob(Vec<u8>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("Null"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Value::Blob(b) => write!(f, "Blob({} bytes)", b.len()),
        }
    }
}

/// Whether a row has the shape of the table: one value per column, each of the column's
/// type or NULL where the column allows it.
pub fn check_row(table: &Table, row: &[Value]) -> StoreResult<()> {
    let bad = || StoreError::Invalid {
        what: format!("a row of {}", table.name),
    };
    if row.len() != table.columns.len() {
        return Err(bad());
    }
    for (c, v) in table.columns.iter().zip(row) {
        let ok = match (c.kind, v) {
            (_, Value::Null) => c.nullable,
            (ColumnType::Int, Value::Int(_))
            | (ColumnType::Text, Value::Text(_))
            | (ColumnType::Blob, Value::Blob(_)) => true,
            _ => false,
        };
        if !ok {
            return Err(bad());
        }
    }
    Ok(())
}

/// Copies every row of every table from one transaction to another, with ids, MACs and
/// the audit chain exactly as they are; `edit` may change a row on the way (a backup
/// blanks the sessions' key copies) or leave it out (by returning false). Returns how
/// many rows were copied. The target must hold no users, keys, records or audit entries.
pub fn copy_rows(
    from: &mut dyn Tx,
    to: &mut dyn Tx,
    edit: &mut dyn FnMut(&Table, &mut Vec<Value>) -> bool,
) -> StoreResult<u64> {
    let mut n = 0u64;
    for table in TABLES {
        from.dump(table, &mut |mut row| {
            if !edit(table, &mut row) {
                return Ok(());
            }
            check_row(table, &row)?;
            to.load(table, &row)?;
            n += 1;
            Ok(())
        })?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_its_key_among_its_columns() {
        for t in TABLES {
            for k in t.key {
                assert!(t.position(k).is_some(), "{}.{k}", t.name);
            }
        }
    }

    #[test]
    fn a_row_must_fit_its_table() {
        let meta = &TABLES[0];
        assert!(check_row(meta, &[Value::Text("k".into()), Value::Blob(vec![1])]).is_ok());
        assert!(check_row(meta, &[Value::Text("k".into()), Value::Null]).is_err());
        assert!(check_row(meta, &[Value::Int(1), Value::Blob(vec![])]).is_err());
        assert!(check_row(meta, &[Value::Text("k".into())]).is_err());
    }

    #[test]
    fn values_show_no_bytes() {
        let v = Value::Blob(b"secret".to_vec());
        assert_eq!(format!("{v:?}"), "Blob(6 bytes)");
        assert_eq!(format!("{:?}", Value::Text("pw".into())), "Text(2 bytes)");
    }
}
