//! Grows a database's audit log to N rows so `scripts/bench` can time `audit verify`.
//!
//!   ZENCRYPT_AUDIT_KEY=... cargo run --release --example audit_fill -- DB_PATH N
//!
//! The key comes from the environment (never argv) and must be the database's audit key.

#[path = "../benches/support/fill.rs"]
mod fill;

use zencrypt_core::crypto::mac::MacKey;
use zencrypt_sqlite::SqliteStore;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, n] = &args[..] else {
        eprintln!("usage: audit_fill DB_PATH ROWS (with ZENCRYPT_AUDIT_KEY set)");
        std::process::exit(2);
    };
    #[allow(clippy::disallowed_methods)]
    let key = std::env::var("ZENCRYPT_AUDIT_KEY").expect("ZENCRYPT_AUDIT_KEY is set");
    let mut store = SqliteStore::open(std::path::Path::new(path)).expect("the database opens");
    let rows = fill::fill_audit(
        &mut store,
        &MacKey::new(key.into_bytes()),
        n.parse().expect("N"),
    );
    println!("{rows}");
}
