//! `db audit-key rotate`: the chain continues under a new key from a hand-over entry, the
//! old key stops working, and the entries before the hand-over stay verifiable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::*;

/// Every client of the test's database uses the key in `file`.
fn use_key_file(env: &mut Env, file: &Path) {
    env.extra
        .retain(|(k, _)| k != "ZENCRYPT_AUDIT_KEY" && k != "ZENCRYPT_AUDIT_KEY_FILE");
    env.extra.push((
        "ZENCRYPT_AUDIT_KEY_FILE".into(),
        file.to_str().unwrap().into(),
    ));
}

/// A vault whose clients read the audit key from a file: alice (admin) with a record,
/// and bob (a user) with a session of his own.
fn team() -> (Env, String) {
    let mut env = Env::new();
    let old = env.dir.path().join("old.key");
    std::fs::write(&old, "the-first-team-audit-key-0123456789abcdef\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o600)).unwrap();
    use_key_file(&mut env, &old);
    env.signup("alice");
    env.run(&["data", "put", "--name", "prod/db"], b"s3cret")
        .ok();
    env.signup("bob");
    let bob = env.token("bob");
    env.login("alice");
    (env, bob)
}

/// Runs zencrypt as bob on another machine: a home of his own, the same database and key.
fn as_bob_elsewhere(env: &Env, args: &[&str], stdin: &[u8]) -> Run {
    let home = env.dir.path().join("other-home");
    let db = match &env.pg {
        Some(pg) => pg.url.clone(),
        None => env.db().to_str().unwrap().to_string(),
    };
    env.run_with(
        args,
        stdin,
        &[("HOME", home.to_str().unwrap()), ("ZENCRYPT_DB", &db)],
    )
}

/// bob logs in on his other machine, which from then on witnesses the chain.
fn bob_logs_in_elsewhere(env: &Env) {
    as_bob_elsewhere(
        env,
        &["login", "--username", "bob", "--password-stdin"],
        format!("{}\n", pw("bob")).as_bytes(),
    )
    .ok();
}

fn head(env: &Env) -> i64 {
    env.column::<i64>("SELECT max(seq) FROM audit_log")[0]
}

fn rotate(env: &Env, new: &Path) -> serde_json::Value {
    env.run(
        &[
            "--json",
            "db",
            "audit-key",
            "rotate",
            "--new-key-file",
            new.to_str().unwrap(),
        ],
        b"",
    )
    .ok()
    .json()
}

/// Rotates to a new key in `new.key` and points the test's clients at it; returns the
/// hand-over's seq.
fn switch_to_a_new_key(env: &mut Env) -> i64 {
    let new = env.dir.path().join("new.key");
    let handover = rotate(env, &new)["handover_seq"].as_i64().unwrap();
    use_key_file(env, &new);
    handover
}

#[test]
fn the_chain_continues_under_the_new_key_and_the_old_one_is_refused() {
    let (mut env, bob) = team();
    let before = head(&env);
    let new = env.dir.path().join("new.key");
    let r = rotate(&env, &new);
    // Authenticating the command wrote no entry; the hand-over follows the head.
    assert_eq!(r["handover_seq"], before + 1);
    assert_eq!(r["entries_before"], before);
    assert_eq!(r["users"], 2);
    // The live sessions: alice's sign-up and login, bob's sign-up and token.
    assert_eq!(r["sessions"], 4);
    assert_eq!(r["new_key_file"], new.to_str().unwrap());
    assert_eq!(mode(&new), 0o600);
    let text = std::fs::read_to_string(&new).unwrap();
    assert_eq!(text.trim().len(), 44, "32 bytes, base64");

    // A client still holding the old key is refused before it writes anything.
    let r = env.run(&["data", "get", "prod/db"], b"");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: the audit key (ZENCRYPT_AUDIT_KEY, ZENCRYPT_AUDIT_KEY_FILE, or audit.key in the data dir) is not the one this database's audit log is written with (if it was rotated, an administrator hands out the new one); nothing was changed\n"
    );
    assert_eq!(head(&env), before + 1);

    use_key_file(&mut env, &new);
    assert_eq!(
        env.run(&["data", "get", "prod/db"], b"").ok().stdout,
        "s3cret"
    );
    // Sessions were bound anew: bob's still works.
    assert!(
        env.as_token(&bob, &["whoami"])
            .ok()
            .stdout
            .starts_with("username: bob\nrole: user\n")
    );
    let v = env.run(&["--json", "audit", "verify"], b"").ok().json();
    assert_eq!(v["ok"], true, "{v}");
    // Every entry but the verification's own record, written after it.
    assert_eq!(v["checked"], head(&env) - 1, "{v}");
    let rows = audit_rows(&env, &env.token("alice"), &["--action", "audit.key-rotate"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["seq"], before + 1);
    assert_eq!(rows[0]["actor"], "alice");
    let detail = &rows[0]["detail"];
    for field in ["prefix_sha256", "database_id", "origin_id", "old_key_mac"] {
        assert_eq!(
            detail[field].as_str().map(str::len),
            Some(if field == "database_id" || field == "origin_id" {
                32
            } else {
                64
            }),
            "{field}: {detail}"
        );
    }
}

#[test]
fn an_entry_changed_before_the_hand_over_is_found_by_verify() {
    let (mut env, _) = team();
    let handover = switch_to_a_new_key(&mut env);
    env.exec("UPDATE audit_log SET target = 'someone-else' WHERE seq = 2");
    let r = env.run(&["audit", "verify"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: audit chain is broken at seq {handover}: the entries before this audit key hand-over are not the ones it recorded (one was changed)"
        )
    );
    // Removing the record of the hand-over leaves nothing that vouches for the start.
    env.exec("UPDATE audit_log SET target = 'prod/db' WHERE seq = 2");
    env.run(&["audit", "verify"], b"").ok();
    env.exec("DELETE FROM meta WHERE key = 'audit_key_epoch'");
    let r = env.run(&["data", "get", "prod/db"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: audit chain is broken at seq 1: row was modified (mac mismatch)"
    );
}

#[test]
fn a_client_that_last_saw_the_chain_before_the_hand_over_accepts_it() {
    let (mut env, _) = team();
    // Another member, in a home of their own, saw the chain before the rotation.
    bob_logs_in_elsewhere(&env);
    switch_to_a_new_key(&mut env);
    env.run(&["data", "put", "--name", "later"], b"v").ok();
    assert!(
        as_bob_elsewhere(&env, &["whoami"], b"")
            .ok()
            .stdout
            .starts_with("username: bob\n")
    );
}

#[test]
fn only_admins_rotate_and_a_refusal_leaves_no_key_behind() {
    let (env, bob) = team();
    let new = env.dir.path().join("new.key");
    let r = env.run_with(
        &[
            "db",
            "audit-key",
            "rotate",
            "--new-key-file",
            new.to_str().unwrap(),
        ],
        b"",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: permission denied: audit.key-rotate requires the admin role"
    );
    assert!(!new.exists());

    // A row changed outside zencrypt: nothing is rotated and the key file goes again.
    env.exec("UPDATE records SET version = 7");
    let r = env.run(
        &[
            "db",
            "audit-key",
            "rotate",
            "--new-key-file",
            new.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: records row 1 is not in the state its latest audit entry recorded (changed or rolled back)"
    );
    assert!(!new.exists());
    assert_eq!(
        env.column::<String>(
            "SELECT outcome FROM audit_log WHERE action = 'audit.key-rotate' ORDER BY seq"
        ),
        ["denied", "failed"]
    );

    // An existing file is never written over.
    env.exec("UPDATE records SET version = 1");
    std::fs::write(&new, "keep me").unwrap();
    let r = env.run(
        &[
            "db",
            "audit-key",
            "rotate",
            "--new-key-file",
            new.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: {} already exists: name a file that does not\n",
            new.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&new).unwrap(), "keep me");
}

#[test]
fn the_new_key_needs_a_file_of_its_own() {
    // Whether the key comes from the environment or from the data directory's audit.key.
    let (team, _) = team();
    let single = Env::sqlite();
    single.signup("alice");
    for env in [&team, &single] {
        let r = env.run(&["db", "audit-key", "rotate"], b"");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_eq!(
            r.stderr,
            "error: name a new file for the new key with --new-key-file PATH, then point ZENCRYPT_AUDIT_KEY_FILE at it for this database\n"
        );
    }
}

#[test]
fn a_copy_made_after_a_rotation_verifies() {
    let (mut env, _) = team();
    switch_to_a_new_key(&mut env);
    let copy: PathBuf = env.dir.path().join("copy.db");
    let c = copy.to_str().unwrap();
    env.run(&["db", "copy", "--to", c], b"").ok();
    env.run(
        &[
            "--db",
            c,
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    let v = env
        .run(&["--db", c, "--json", "audit", "verify"], b"")
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        env.run(&["--db", c, "data", "get", "prod/db"], b"")
            .ok()
            .stdout,
        "s3cret"
    );
}

#[test]
fn a_changed_identity_is_named_after_a_rotation_too() {
    let (mut env, _) = team();
    switch_to_a_new_key(&mut env);
    env.exec(&format!(
        "UPDATE meta SET value = {} WHERE key = 'database_id'",
        env.blob("00112233445566778899aabbccddeeff")
    ));
    env.forget_witness();
    let r = env.run(&["data", "get", "prod/db"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: this database's identity was changed (its audit log begins from another database id): it was swapped or rolled back; restore it from a backup"
    );
}

#[test]
fn a_witness_from_before_the_hand_over_still_catches_a_changed_entry() {
    let (mut env, _) = team();
    bob_logs_in_elsewhere(&env);
    let seen = head(&env);
    switch_to_a_new_key(&mut env);
    // An entry this client saw is rewritten after the hand-over sealed it.
    env.exec(&format!(
        "UPDATE audit_log SET target = 'someone-else' WHERE seq = {seen}"
    ));
    let r = as_bob_elsewhere(&env, &["whoami"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the database's audit log holds another entry at seq {seen} (this client has seen it up to seq {seen}): it was rolled back, truncated or replaced by an older copy"
        )
    );
}

#[test]
fn a_log_cut_back_to_before_the_hand_over_is_a_rollback_not_a_wrong_key() {
    let (mut env, _) = team();
    let handover = switch_to_a_new_key(&mut env);
    env.run(&["data", "get", "prod/db"], b"").ok();
    let seen = head(&env);
    // Someone with write access cuts the log back to the old key's part and removes the
    // record of the hand-over, as a departed holder of the old key would to carry on.
    env.exec(&format!(
        "DELETE FROM audit_log WHERE seq >= {handover}; \
         UPDATE audit_head SET seq = {last}, mac = (SELECT mac FROM audit_log WHERE seq = {last}); \
         DELETE FROM meta WHERE key IN ('audit_key_epoch', 'audit_key_check')",
        last = handover - 1
    ));
    let r = env.run(&["data", "get", "prod/db"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the database's audit log ends at seq {} (this client has seen it up to seq {seen}): it was rolled back, truncated or replaced by an older copy",
            handover - 1
        )
    );
}
