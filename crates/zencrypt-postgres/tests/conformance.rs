//! The storage conformance suite against PostgreSQL (see `support` for the server), and
//! the catalogue against the schema.

use crate::support;

use zencrypt_core::storage::conformance::{self, CatalogueTable};
use zencrypt_core::storage::schema::ColumnType;

zencrypt_core::conformance_tests!(support::server());

/// The tables and columns in PostgreSQL's catalogue are those of `schema::TABLES`.
#[test]
fn catalogue_matches_the_schema() {
    let Some(server) = support::server() else {
        return;
    };
    let db = server.fresh_db();
    let mut c = server.client(&db);
    let rows = c
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name <> 'zencrypt_schema' ORDER BY table_name, ordinal_position",
            &[],
        )
        .expect("catalogue");
    let mut found: Vec<CatalogueTable> = Vec::new();
    for r in &rows {
        let (table, column, kind, nullable): (String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let kind = match kind.as_str() {
            "bigint" => ColumnType::Int,
            "text" => ColumnType::Text,
            "bytea" => ColumnType::Blob,
            other => panic!("{table}.{column} has type {other}"),
        };
        if found.last().is_none_or(|t| t.0 != table) {
            found.push((table, Vec::new()));
        }
        if let Some(t) = found.last_mut() {
            t.1.push((column, kind, nullable == "YES"));
        }
    }
    conformance::assert_catalogue(found);
}
