//! Grows an audit log to a size worth verifying, for the benchmarks: used by
//! `benches/records.rs` and `examples/audit_fill.rs`.

use serde_json::json;
use zencrypt_core::chain::{Actor, append};
use zencrypt_core::crypto::mac::MacKey;
use zencrypt_core::events::AuditAction;
use zencrypt_core::model::Outcome;
use zencrypt_core::storage::Storage;

/// Appends rows (10,000 per transaction) until the log holds `total`; returns the count.
pub fn fill_audit(store: &mut dyn Storage, key: &MacKey, total: u64) -> u64 {
    let actor = Actor {
        id: None,
        name: "bench".into(),
    };
    loop {
        let mut tx = store.write().unwrap();
        let mut seq = tx.audit_head().unwrap().map_or(0, |h| h.0 as u64);
        if seq >= total {
            return seq;
        }
        let stop = total.min(seq + 10_000);
        while seq < stop {
            let detail = json!({ "filler": seq });
            seq = append(
                tx.as_mut(),
                key,
                &actor,
                AuditAction::DbStatus,
                "-",
                Outcome::Ok,
                &detail,
            )
            .unwrap()
            .0 as u64;
        }
        tx.commit().unwrap();
    }
}
