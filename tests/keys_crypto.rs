//! Keys and encryption end to end: round trips, rotation and rewrap, key states,
//! ownership, tampering, expiry and rotation checks, export/import, usage rows, hashing.

use std::path::{Path, PathBuf};

use crate::common::*;

const CHUNK: usize = 64 * 1024;
const HEADER_LEN: usize = 30 + 61 + 8;

fn setup() -> Env {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    env
}

fn path(env: &Env, name: &str) -> PathBuf {
    env.dir.path().join(name)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn encrypt_file(env: &Env, plain: &[u8], name: &str) -> PathBuf {
    let p = path(env, name);
    let r = env.run(&["encrypt", "--key", "k", "-o", p.to_str().unwrap()], plain);
    r.ok();
    p
}

fn decrypt(env: &Env, ct: &Path) -> Run {
    let mut c = env.command();
    c.args(["decrypt", ct.to_str().unwrap()]);
    let out = c.output().unwrap();
    out.into()
}

fn decrypt_bytes(env: &Env, ct: &Path) -> (i32, Vec<u8>) {
    let mut c = env.command();
    c.args(["decrypt", ct.to_str().unwrap()]);
    let out = c.output().unwrap();
    (out.status.code().unwrap(), out.stdout)
}

fn key_version_in(ct: &[u8]) -> u32 {
    u32::from_be_bytes(ct[13..17].try_into().unwrap())
}

#[test]
fn armored_text_round_trip() {
    let env = setup();
    let armored = env.run(&["encrypt", "--key", "k", "--armor"], b"hello");
    armored.ok();
    assert!(
        armored
            .stdout
            .starts_with("-----BEGIN ZENCRYPT MESSAGE-----\n")
    );
    assert!(armored.stdout.ends_with("-----END ZENCRYPT MESSAGE-----\n"));
    let plain = env.run(&["decrypt"], armored.stdout.as_bytes());
    plain.ok();
    assert_eq!(plain.stdout, "hello");
    assert_eq!(
        plain.stderr,
        "Decrypted: 5 bytes from stdin with key k (version 1).\n"
    );
}

#[test]
fn binary_round_trips_are_byte_exact_around_chunk_boundaries() {
    let env = setup();
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
        let plain = data(len);
        let ct = encrypt_file(&env, &plain, &format!("m{len}.zc"));
        let bytes = std::fs::read(&ct).unwrap();
        let chunks = len / CHUNK + usize::from(len % CHUNK != 0 || len == 0);
        assert_eq!(bytes.len(), HEADER_LEN + len + 16 * chunks, "len {len}");
        let (code, out) = decrypt_bytes(&env, &ct);
        assert_eq!(code, 0, "len {len}");
        assert_eq!(out, plain, "len {len}");
        let piped = env.run(&["decrypt", "-"], &bytes);
        assert_eq!(piped.code, 0);
    }
}

#[test]
fn rotation_rewrap_and_minimum_decryption_version() {
    let env = setup();
    let v1 = encrypt_file(&env, b"version one", "v1.zc");
    let r = env.run(&["key", "rotate", "k", "--json"], b"");
    r.ok();
    assert_eq!(r.json()["rotated"][0]["version"], 2);
    assert_eq!(decrypt(&env, &v1).stdout, "version one");

    let rewrapped = path(&env, "v1-rewrapped.zc");
    env.run(
        &[
            "rewrap",
            v1.to_str().unwrap(),
            "-o",
            rewrapped.to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    let before = std::fs::read(&v1).unwrap();
    let after = std::fs::read(&rewrapped).unwrap();
    assert_eq!(key_version_in(&before), 1);
    assert_eq!(key_version_in(&after), 2);
    assert_eq!(
        before[HEADER_LEN..],
        after[HEADER_LEN..],
        "the body is untouched"
    );
    assert_eq!(decrypt(&env, &rewrapped).stdout, "version one");

    env.run(&["key", "set", "k", "--min-decrypt-version", "2"], b"")
        .ok();
    let old = decrypt(&env, &v1);
    assert_eq!(old.code, 6);
    assert_eq!(old.stdout, "");
    assert_eq!(
        old.stderr,
        "error: key 'k' no longer decrypts version 1 (minimum decryption version is 2)\n"
    );
    assert_eq!(decrypt(&env, &rewrapped).code, 0);
    let bad = env.run(&["key", "set", "k", "--min-decrypt-version", "3"], b"");
    assert_eq!(bad.code, 2);
}

#[test]
fn rewrap_follows_the_rules_of_encryption() {
    let env = setup();
    for (name, flag, value) in [
        ("short", "--expires-in", "2s"),
        ("fast", "--rotate-every", "1s"),
    ] {
        env.run(&["key", "create", name, flag, value], b"").ok();
        let p = path(&env, &format!("{name}.zc"));
        env.run(
            &["encrypt", "--key", name, "-o", p.to_str().unwrap()],
            b"payload",
        )
        .ok();
    }
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let out = path(&env, "out.zc");
    let rewrap = |name: &str| {
        let input = path(&env, &format!("{name}.zc"));
        env.run(
            &[
                "rewrap",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        )
    };
    // An expired key no longer encrypts, and a rewrap is an encryption of the data key.
    let expired = rewrap("short");
    assert_eq!(expired.code, 6);
    assert!(
        expired.stderr.starts_with("error: key 'short' expired at ")
            && expired
                .stderr
                .ends_with("; it can still decrypt, but not rewrap\n"),
        "{}",
        expired.stderr
    );
    assert!(!out.exists());
    // A due rotation happens first, and the new wrap counts against the new version.
    // (On a loaded machine the encryption itself may already have come after a due
    // rotation: the version it used is read from its header.)
    let before = key_version_in(&std::fs::read(path(&env, "fast.zc")).unwrap());
    rewrap("fast").ok();
    assert_eq!(key_version_in(&std::fs::read(&out).unwrap()), before + 1);
    assert_eq!(decrypt(&env, &out).stdout, "payload");
    let show = env.run(&["key", "show", "fast", "--json"], b"").json();
    let encryptions = |version| {
        show["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == version)
            .map(|v| v["encryptions"].clone())
    };
    assert_eq!(encryptions(before), Some(1.into()));
    assert_eq!(encryptions(before + 1), Some(1.into()));
    let audit = env
        .run(&["audit", "list", "--json", "--limit", "5"], b"")
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    // Oldest first: the failed rewrap, then the rotation written in the rewrap's own
    // transaction, before its record.
    assert_eq!(
        actions,
        [
            "crypto.rewrap",
            "key.rotate",
            "crypto.rewrap",
            "crypto.decrypt",
            "key.show"
        ]
    );
    assert_eq!(audit[0]["outcome"], "failed");
    assert_eq!(audit[0]["target"], "key#2");
    assert_eq!(
        audit[1]["detail"],
        serde_json::json!({ "version": before + 1, "reason": "automatic" })
    );
}

#[test]
fn disabled_and_destroyed_keys() {
    let env = setup();
    let ct = encrypt_file(&env, b"secret", "s.zc");
    env.run(&["key", "disable", "k"], b"").ok();
    let e = env.run(&["encrypt", "--key", "k"], b"x");
    assert_eq!(e.code, 6);
    assert_eq!(
        e.stderr,
        "error: key 'k' is disabled; run `zencrypt key enable k`\n"
    );
    assert_eq!(decrypt(&env, &ct).code, 6);
    env.run(&["key", "enable", "k"], b"").ok();
    assert_eq!(decrypt(&env, &ct).stdout, "secret");

    let refused = env.run(&["key", "destroy", "k"], b"");
    assert_eq!(refused.code, 2);
    assert_eq!(
        refused.stderr,
        "error: confirmation to destroy a key is needed and there is no terminal to ask for it\nhint: pass --yes\n"
    );
    env.run(&["key", "rotate", "k"], b"").ok();
    env.run(&["key", "destroy", "k", "--yes"], b"").ok();
    let d = decrypt(&env, &ct);
    assert_eq!(d.code, 6);
    assert_eq!(d.stdout, "");
    assert_eq!(d.stderr, "error: key 'k' has been destroyed\n");
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM key_versions WHERE wrapped_material IS NOT NULL"),
        [0],
        "no material remains"
    );
    let events: Vec<String> = env
        .run(&["key", "history", "k", "--json"], b"")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        ["created", "disabled", "enabled", "rotated", "destroyed"]
    );
    assert_eq!(
        env.run(&["key", "list", "--json"], b"").json(),
        serde_json::json!([])
    );
    assert_eq!(
        env.run(&["key", "list", "--all", "--json"], b"").json()[0]["status"],
        "destroyed"
    );
}

#[test]
fn other_users_can_neither_use_nor_see_your_keys() {
    let env = setup();
    let ct = encrypt_file(&env, b"alice only", "a.zc");
    env.signup("bob");
    let e = env.run(&["encrypt", "--key", "k"], b"x");
    assert_eq!(e.code, 5);
    assert_eq!(e.stdout, "");
    assert_eq!(e.stderr, "error: key 'k' not found\n");
    let d = decrypt(&env, &ct);
    assert_eq!(d.code, 5);
    assert_eq!(d.stdout, "");
    assert_eq!(
        d.stderr,
        "error: the key this was encrypted with is not one of your keys\n"
    );
    // Bob's own key of the same name does not open Alice's data either.
    env.run(&["key", "create", "k"], b"").ok();
    assert_eq!(decrypt(&env, &ct).code, 5);
}

#[test]
fn tampering_anywhere_is_detected_and_nothing_is_written() {
    let env = setup();
    let plain = data(2 * CHUNK + 100);
    let ct = std::fs::read(encrypt_file(&env, &plain, "t.zc")).unwrap();
    let body = HEADER_LEN;
    let chunk_ct = CHUNK + 16;
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for i in (0..HEADER_LEN).step_by(3).chain([HEADER_LEN - 1]) {
        let mut c = ct.clone();
        c[i] ^= 0x01;
        cases.push((format!("header byte {i}"), c));
    }
    for (what, at) in [
        ("first body byte", body),
        ("first tag", body + CHUNK + 3),
        ("middle chunk", body + chunk_ct + 500),
        ("last chunk", ct.len() - 30),
        ("last tag", ct.len() - 1),
    ] {
        let mut c = ct.clone();
        c[at] ^= 0x80;
        cases.push((what.to_string(), c));
    }
    for (what, cut) in [
        ("truncated at the first boundary", body + chunk_ct),
        ("truncated at the second boundary", body + 2 * chunk_ct),
        ("truncated inside a chunk", body + chunk_ct + 1000),
        ("truncated inside the last tag", ct.len() - 5),
        ("header only", body),
    ] {
        cases.push((what.to_string(), ct[..cut].to_vec()));
    }
    let mut appended = ct.clone();
    appended.extend_from_slice(b"extra");
    cases.push(("appended bytes".into(), appended));
    let mut swapped = ct.clone();
    swapped[body..body + chunk_ct].copy_from_slice(&ct[body + chunk_ct..body + 2 * chunk_ct]);
    swapped[body + chunk_ct..body + 2 * chunk_ct].copy_from_slice(&ct[body..body + chunk_ct]);
    cases.push(("swapped chunks".into(), swapped));

    let out = path(&env, "out.bin");
    for (what, bytes) in cases {
        let input = path(&env, "tampered.zc");
        std::fs::write(&input, &bytes).unwrap();
        let r = env.run(
            &[
                "decrypt",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        );
        assert_eq!(r.code, 7, "{what}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{what}");
        assert!(!out.exists(), "{what}: output left behind");
        let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{what}: {leftovers:?}");
    }
    // A small single-chunk message tampered and sent to stdout prints nothing.
    let mut small = std::fs::read(encrypt_file(&env, b"tiny", "tiny.zc")).unwrap();
    let last = small.len() - 1;
    small[last] ^= 1;
    let r = env.run(&["decrypt"], &small);
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "");
    let garbage = env.run(&["decrypt"], b"this is not a ciphertext at all");
    assert_eq!(garbage.code, 7);
    assert_eq!(
        garbage.stderr,
        "error: input is not a zencrypt ciphertext (bad magic)\n"
    );
}

#[test]
fn expiry_and_due_rotation() {
    let env = setup();
    // Expiry is kept in whole seconds: 2s leaves at least a second to encrypt in.
    env.run(&["key", "create", "short", "--expires-in", "2s"], b"")
        .ok();
    env.run(&["key", "create", "fast", "--rotate-every", "1s"], b"")
        .ok();
    env.run(&["key", "create", "slow", "--rotate-every", "90d"], b"")
        .ok();
    let early = env.run(
        &[
            "encrypt",
            "--key",
            "short",
            "-o",
            path(&env, "e.zc").to_str().unwrap(),
        ],
        b"before expiry",
    );
    early.ok();
    std::thread::sleep(std::time::Duration::from_millis(3100));

    let check = env.run(&["key", "check", "--json"], b"");
    check.ok();
    assert_eq!(
        check.json(),
        serde_json::json!({ "due": ["fast"], "expired": ["short"], "near_limit": [] })
    );
    let e = env.run(&["encrypt", "--key", "short"], b"x");
    assert_eq!(e.code, 6);
    assert!(
        e.stderr.starts_with("error: key 'short' expired at "),
        "{}",
        e.stderr
    );
    assert_eq!(decrypt(&env, &path(&env, "e.zc")).stdout, "before expiry");
    let events = env.run(&["key", "history", "short", "--json"], b"").json();
    assert_eq!(events[1]["event"], "expired-on-use");

    let r = env.run(&["key", "rotate", "--due", "--json"], b"");
    r.ok();
    assert_eq!(
        r.json(),
        serde_json::json!({ "rotated": [{ "name": "fast", "version": 2, "rewrapped": 0 }] })
    );
    let list = env.run(&["key", "list", "--json"], b"").json();
    let versions: Vec<(String, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["name"].as_str().unwrap().to_string(),
                k["latest_version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("fast".into(), 2),
            ("k".into(), 1),
            ("short".into(), 1),
            ("slow".into(), 1)
        ]
    );
}

#[test]
fn a_due_key_rotates_automatically_before_encrypting() {
    let env = setup();
    env.run(&["key", "create", "auto", "--rotate-every", "1s"], b"")
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = path(&env, "auto.zc");
    env.run(
        &["encrypt", "--key", "auto", "-o", out.to_str().unwrap()],
        b"data",
    )
    .ok();
    assert_eq!(key_version_in(&std::fs::read(&out).unwrap()), 2);
    let events = env.run(&["key", "history", "auto", "--json"], b"").json();
    assert_eq!(events[1]["event"], "rotated");
    assert_eq!(events[1]["detail"]["reason"], "due");
}

#[test]
fn export_and_import() {
    let env = setup();
    let e = env.run(&["key", "export", "k"], b"");
    assert_eq!(e.code, 6);
    assert_eq!(
        e.stderr,
        "error: key 'k' is not exportable (it was created without --exportable)\n"
    );
    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    env.run(
        &["key", "import", "imp", "--exportable"],
        format!("{hex}\n").as_bytes(),
    )
    .ok();
    let exported = env.run(&["key", "export", "imp"], b"");
    exported.ok();
    assert_eq!(
        exported.stdout,
        "ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=\n"
    );
    env.run(&["key", "import", "raw"], &[7u8; 32]).ok();
    env.run(&["key", "import", "b64"], exported.stdout.as_bytes())
        .ok();
    let bad = env.run(&["key", "import", "short"], b"abcdef");
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: a key must be 32 bytes: raw, as 64 hex digits, or as base64\n"
    );
    let dup = env.run(&["key", "create", "k"], b"");
    assert_eq!(dup.code, 6);
    assert_eq!(dup.stderr, "error: key 'k' already exists\n");
    // The exported secret never reaches the audit log or the key log.
    let audit = env.run(&["audit", "list", "--json", "--limit", "1000"], b"");
    assert!(!audit.stdout.contains("ABEiM0RV"));
    assert!(!audit.stdout.contains(hex));
}

#[test]
fn usage_rows_and_counters_follow_every_event() {
    let env = setup();
    let ct = encrypt_file(&env, b"12345", "u.zc");
    decrypt(&env, &ct);
    env.run(&["key", "rotate", "k"], b"").ok();
    env.run(
        &[
            "rewrap",
            ct.to_str().unwrap(),
            "-o",
            path(&env, "r.zc").to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    env.run(&["key", "create", "x", "--exportable"], b"").ok();
    env.run(&["key", "export", "x"], b"").ok();
    let mut tampered = std::fs::read(&ct).unwrap();
    let n = tampered.len();
    tampered[n - 1] ^= 1;
    assert_eq!(env.run(&["decrypt"], &tampered).code, 7);
    let of = |column: &str| format!("SELECT {column} FROM usage_events ORDER BY id");
    let rows: Vec<(String, i64, String)> = env
        .column::<String>(&of("operation"))
        .into_iter()
        .zip(env.column::<i64>(&of("bytes")))
        .zip(env.column::<String>(&of("outcome")))
        .map(|((operation, bytes), outcome)| (operation, bytes, outcome))
        .collect();
    assert_eq!(
        rows,
        [
            ("encrypt".into(), 5, "ok".into()),
            ("decrypt".into(), 5, "ok".into()),
            ("rewrap".into(), 0, "ok".into()),
            ("export".into(), 32, "ok".into()),
            ("decrypt".into(), 0, "failed".into()),
        ]
    );
    let show = env.run(&["key", "show", "k", "--json"], b"").json();
    assert_eq!(show["versions"][0]["encryptions"], 1);
    assert_eq!(show["versions"][0]["bytes"], 5);
    assert_eq!(show["min_decryption_version"], 1);
}

#[test]
fn hashing() {
    let env = Env::new(); // no account or session needed
    let r = env.run(&["hash"], b"abc");
    r.ok();
    assert_eq!(
        r.stdout,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    let ok = env.run(
        &[
            "hash",
            "verify",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ],
        b"abc",
    );
    ok.ok();
    let bad = env.run(
        &[
            "hash",
            "verify",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ],
        b"abd",
    );
    assert_eq!(bad.code, 7);
    assert_eq!(bad.stderr, "error: the input does not match the hash\n");
    let phc = env.run(&["hash", "--algo", "argon2id"], b"hunter22");
    phc.ok();
    let phc = phc.stdout.trim().to_string();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
    env.run(&["hash", "verify", &phc], b"hunter22").ok();
    assert_eq!(env.run(&["hash", "verify", &phc], b"hunter23").code, 7);
    assert!(!env.database_made(), "hashing never opens the database");
}

#[test]
fn counters_edited_in_the_file_are_refused() {
    let env = setup();
    env.exec("UPDATE key_versions SET encryptions = 5");
    let r = env.run(&["key", "check"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr,
        "error: key_versions row 1/1 failed its integrity check: it was changed outside zencrypt (restore the database from a backup)\n"
    );
}
