//! Record paths at scale: looking a record up by token among 100k, a whole audited
//! `data get` (read, decrypt, usage and audit rows, durable commit), and verifying a
//! 100k-row audit chain. Run with `cargo bench --bench records`.

#[path = "support/fill.rs"]
mod fill;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use zencrypt_core::config::SignupPolicy;
use zencrypt_core::crypto::kdf::KdfParams;
use zencrypt_core::crypto::mac::MacKey;
use zencrypt_core::records::PutOptions;
use zencrypt_core::storage::Storage;
use zencrypt_core::vault::{Policy, Vault};
use zencrypt_sqlite::SqliteStore;

const RECORDS: usize = 100_000;
const AUDIT_KEY: [u8; 32] = [3; 32];

fn vault(path: &std::path::Path) -> Vault {
    Vault::with_store(
        Box::new(SqliteStore::open(path).unwrap()),
        &[5u8; 64],
        MacKey::new(AUDIT_KEY.to_vec()),
        Policy {
            // Sign-up cost is not what is measured here.
            kdf: KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            signup: SignupPolicy::Open,
            session_ttl: 3600,
            history: 9,
        },
    )
    .unwrap()
}

fn records(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut v = vault(&path);
    let password = SecretString::from("bench-password-1");
    let login = v.signup("bench", &password, None).unwrap();
    let session = v.authenticate(&login.token).unwrap();
    let lines: String = (0..RECORDS)
        .map(|i| format!("{{\"value\":\"secret value number {i:08}\"}}\n"))
        .collect();
    let items = zencrypt_core::records::parse_import(lines.as_bytes()).unwrap();
    v.data_import(&session, &items, None, None).unwrap();
    let row = v
        .data_put(&session, b"the one", &PutOptions::default(), None)
        .unwrap();
    let token = row.token.clone();

    let mut g = c.benchmark_group("records");
    let mut reader = SqliteStore::open(&path).unwrap();
    g.bench_function("token lookup among 100k (read transaction)", |b| {
        b.iter(|| {
            let mut tx = reader.read().unwrap();
            black_box(
                tx.record_by_ref(session.user_id.0, &token)
                    .unwrap()
                    .unwrap(),
            )
        })
    });
    let refs = vec![token.clone()];
    g.bench_function("data get by token (audited, durable commit)", |b| {
        b.iter(|| black_box(v.data_get(&session, &refs, None).unwrap()))
    });
    g.finish();

    // Every data get above added an audit row: top the log up to 100k and verify it.
    let mut g = c.benchmark_group("audit");
    let rows = fill::fill_audit(
        &mut reader,
        &MacKey::new(AUDIT_KEY.to_vec()),
        RECORDS as u64,
    );
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);
    g.bench_function("verify the chain (100k rows)", |b| {
        b.iter(|| {
            let mut tx = reader.read().unwrap();
            let r = zencrypt_core::chain::verify(tx.as_mut(), &MacKey::new(AUDIT_KEY.to_vec()))
                .unwrap();
            assert!(r.first_bad.is_none());
            black_box(r.checked)
        })
    });
    g.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
