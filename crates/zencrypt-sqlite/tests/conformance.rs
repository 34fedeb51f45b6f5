//! The storage conformance suite against SQLite: each case gets its own database file in
//! a directory of its own.

use std::sync::Mutex;

use tempfile::TempDir;
use zencrypt_core::storage::Storage;
use zencrypt_core::storage::conformance::{self, Backend, CatalogueTable};
use zencrypt_core::storage::schema::ColumnType;
use zencrypt_sqlite::SqliteStore;

/// Fresh database files, removed with the backend.
struct Sqlite {
    dirs: Mutex<Vec<TempDir>>,
}

fn sqlite() -> Option<Sqlite> {
    Some(Sqlite {
        dirs: Mutex::new(Vec::new()),
    })
}

impl Backend for Sqlite {
    fn fresh(&self, connections: usize) -> Vec<Box<dyn Storage + Send>> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("zencrypt.db");
        let stores = (0..connections)
            .map(|_| {
                Box::new(SqliteStore::open(&path).expect("open the database"))
                    as Box<dyn Storage + Send>
            })
            .collect();
        self.dirs.lock().expect("directories").push(dir);
        stores
    }
}

zencrypt_core::conformance_tests!(sqlite());

/// The tables and columns in SQLite's catalogue are those of `schema::TABLES`.
#[test]
fn catalogue_matches_the_schema() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("zencrypt.db");
    drop(SqliteStore::open(&path).expect("create the database"));
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    let mut tables = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' \
             AND name NOT IN ('sqlite_sequence', 'zencrypt_schema') ORDER BY name",
        )
        .expect("prepare");
    let names: Vec<String> = tables
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .expect("tables");
    let mut found: Vec<CatalogueTable> = Vec::new();
    for name in names {
        let mut columns = conn
            .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid")
            .expect("prepare");
        let columns = columns
            .query_map([&name], |r| {
                let kind: String = r.get(1)?;
                let not_null: i64 = r.get(2)?;
                let pk: i64 = r.get(3)?;
                Ok((r.get::<_, String>(0)?, kind, not_null != 0 || pk != 0))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .expect("columns")
            .into_iter()
            .map(|(column, kind, not_null)| {
                let kind = match kind.as_str() {
                    "INTEGER" => ColumnType::Int,
                    "TEXT" => ColumnType::Text,
                    "BLOB" => ColumnType::Blob,
                    other => panic!("{name}.{column} has type {other}"),
                };
                (column, kind, !not_null)
            })
            .collect();
        found.push((name, columns));
    }
    conformance::assert_catalogue(found);
}
