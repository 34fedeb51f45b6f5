//! Measures what a one-shot command pays on PostgreSQL: connecting (with the schema
//! check), a one-row read transaction, an empty write transaction (which locks the audit
//! head), many inserts in one transaction, and one statement sent three ways (prepared
//! per call, typed, prepared once).
//!
//! `cargo run --release -p zencrypt-postgres --example latency -- URL [ROUNDS]`, where URL
//! names a zencrypt database (or an empty one, which gets the schema). Nothing else is
//! written.

use std::error::Error;
use std::time::{Duration, Instant};

use postgres::types::Type;
use postgres::{Client, NoTls};
use zencrypt_core::crypto::kdf::KdfParams;
use zencrypt_core::model::{Credentials, Outcome, Role, UsageEvent};
use zencrypt_core::storage::{NewUser, Storage};
use zencrypt_postgres::{PgOptions, PgStore};

/// Runs `f` `rounds` times and returns the median and the 90th percentile.
fn measure(
    rounds: usize,
    mut f: impl FnMut() -> Result<(), Box<dyn Error>>,
) -> Result<(Duration, Duration), Box<dyn Error>> {
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((times[rounds / 2], times[rounds * 9 / 10]))
}

fn report(what: &str, (median, p90): (Duration, Duration)) {
    println!(
        "{what:<52} median {:>8.3} ms   p90 {:>8.3} ms",
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: latency URL [ROUNDS] (URL names a zencrypt database)")?;
    let rounds: usize = args.next().map_or(Ok(200), |r| r.parse())?;
    if rounds == 0 {
        return Err("ROUNDS must be at least 1".into());
    }
    let opts = PgOptions::new(url.clone());
    let mut store = PgStore::open(&opts, true)?;
    let version = store.server_version()?;
    println!(
        "{} (PostgreSQL {version}, TLS {}), {rounds} rounds",
        store.redacted_url(),
        store.tls_state()
    );

    report(
        "connect and check the schema (PgStore::open)",
        measure(rounds.min(50), || {
            PgStore::open(&opts, false)?;
            Ok(())
        })?,
    );
    report(
        "read transaction, one row (BEGIN, SELECT, COMMIT)",
        measure(rounds, || {
            let mut tx = store.read()?;
            tx.database_id()?;
            tx.commit()?;
            Ok(())
        })?,
    );
    report(
        "write transaction, nothing written (lock, COMMIT)",
        measure(rounds, || {
            store.write()?.commit()?;
            Ok(())
        })?,
    );

    let credentials = Credentials {
        password_hash: "h".into(),
        kek_salt: vec![1; 16],
        kek_params: KdfParams {
            m_kib: 1,
            t: 1,
            p: 1,
        },
        wrapped_user_key: vec![2; 60],
    };
    report(
        "2000 usage rows in one write transaction (rolled back)",
        measure(rounds.min(5), || {
            let mut tx = store.write()?;
            let user_id = tx.insert_user(&NewUser {
                username: "latency",
                role: Role::User,
                credentials: &credentials,
                created_at: 0,
                must_change_password: false,
            })?;
            for at in 0..2000 {
                tx.insert_usage(&UsageEvent {
                    at,
                    user_id,
                    key_id: None,
                    key_version: None,
                    record_id: None,
                    operation: "encrypt".into(),
                    bytes: 1,
                    outcome: Outcome::Ok,
                })?;
            }
            Ok(())
        })?,
    );

    let Ok(mut client) = Client::connect(&url, NoTls) else {
        println!("(the statement comparison needs a connection without TLS)");
        return Ok(());
    };
    let sql = "SELECT value FROM meta WHERE key = $1";
    let key = "database_id";
    report(
        "statement prepared per call (Client::query)",
        measure(rounds, || {
            client.query(sql, &[&key])?;
            Ok(())
        })?,
    );
    report(
        "statement with typed parameters (Client::query_typed)",
        measure(rounds, || {
            client.query_typed(sql, &[(&key, Type::TEXT)])?;
            Ok(())
        })?,
    );
    let prepared = client.prepare(sql)?;
    report(
        "statement prepared once (Client::query on a Statement)",
        measure(rounds, || {
            client.query(&prepared, &[&key])?;
            Ok(())
        })?,
    );
    Ok(())
}
