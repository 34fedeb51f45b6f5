//! Usage reports, audit tooling, database care and completions end to end.

use crate::common::*;
use serde_json::{Value, json};

fn count_of(rows: &Value, field: &str, value: &str) -> i64 {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[field] == value)
        .map(|r| r["count"].as_i64().unwrap())
        .unwrap_or(0)
}

#[test]
fn usage_by_operation_user_and_role() {
    let env = Env::new();
    env.signup("alice");
    let alice = env.token("alice");
    env.as_token(&alice, &["key", "create", "k"]).ok();
    let mut cts = Vec::new();
    for i in 0..3 {
        let r = env.run_with(
            &["encrypt", "--key", "k", "--armor"],
            format!("m{i}").as_bytes(),
            &[("ZENCRYPT_TOKEN", &alice)],
        );
        r.ok();
        cts.push(r.stdout);
    }
    for ct in &cts[..2] {
        env.run_with(&["decrypt"], ct.as_bytes(), &[("ZENCRYPT_TOKEN", &alice)])
            .ok();
    }
    env.signup("bob");
    let bob = env.token("bob");
    env.as_token(&bob, &["key", "create", "b"]).ok();
    env.run_with(
        &["encrypt", "--key", "b", "--armor"],
        b"bob",
        &[("ZENCRYPT_TOKEN", &bob)],
    )
    .ok();

    let a = env.as_token(&alice, &["usage", "--by", "op", "--json"]);
    a.ok();
    let a = a.json();
    assert!(count_of(&a, "op", "encrypt") >= 3, "{a}");
    assert!(count_of(&a, "op", "decrypt") >= 2, "{a}");
    // alice is an admin: by user she sees both.
    let by_user = env
        .as_token(&alice, &["usage", "--by", "user", "--json"])
        .json();
    assert_eq!(count_of(&by_user, "user", "alice"), 5);
    assert_eq!(count_of(&by_user, "user", "bob"), 1);
    let only_alice = env
        .as_token(
            &alice,
            &["usage", "--by", "op", "--user", "alice", "--json"],
        )
        .json();
    assert_eq!(count_of(&only_alice, "op", "encrypt"), 3);

    let b = env
        .as_token(&bob, &["usage", "--by", "user", "--json"])
        .json();
    assert_eq!(b, json!([{ "user": "bob", "count": 1, "bytes": 3 }]));
    assert_eq!(env.as_token(&bob, &["usage", "--user", "alice"]).code, 4);

    env.signup("carol");
    env.as_token(&alice, &["user", "role", "carol", "auditor"])
        .ok();
    let carol = env.token("carol");
    let c = env
        .as_token(&carol, &["usage", "--by", "user", "--json"])
        .json();
    assert_eq!(count_of(&c, "user", "alice"), 5);
    assert_eq!(count_of(&c, "user", "bob"), 1);
    let table = env.as_token(&alice, &["usage", "--by", "key"]);
    table.ok();
    assert!(
        table.stdout.starts_with("KEY  COUNT  BYTES\n"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("\nk    5      "), "{}", table.stdout);
}

#[test]
fn checkpoints_detect_truncation() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "first"], b"").ok();
    let cp = env.run(&["audit", "checkpoint"], b"");
    cp.ok();
    let doc: Value = serde_json::from_str(cp.stdout.trim()).unwrap();
    assert!(doc["seq"].as_i64().unwrap() >= 2);
    assert_eq!(doc["mac"].as_str().unwrap().len(), 64);
    let file = env.dir.path().join("head.json");
    std::fs::write(&file, &cp.stdout).unwrap();
    let f = file.to_str().unwrap();
    env.run(&["key", "create", "k"], b"").ok();
    env.run(&["audit", "verify", "--checkpoint", f], b"").ok();

    let seq = doc["seq"].as_i64().unwrap();
    env.exec(&format!("DELETE FROM audit_log WHERE seq >= {seq}"));
    // This client saw the longer chain and refuses the shortened one outright.
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 7);
    assert!(
        r.stderr.starts_with(&format!(
            "error: the database's audit log ends at seq {} (this client has seen it up to seq {}): it was rolled back, truncated or replaced by an older copy\nhint: if the database was restored",
            seq - 1,
            seq + 3
        )),
        "{}",
        r.stderr
    );
    // A client that never saw it: the checkpoint names the truncation.
    env.forget_witness();
    let r = env.run(&["audit", "verify", "--checkpoint", f, "--json"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(r.json()["ok"], false);
    assert_eq!(r.json()["first_bad_seq"], seq);
    assert!(
        r.stderr.contains("the log ends before the checkpoint"),
        "{}",
        r.stderr
    );
    // Without the checkpoint the shortened chain is whole, but the key made after the cut
    // is a row the log does not vouch for.
    env.forget_witness();
    let r = env.run(&["audit", "verify", "--json"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(r.json()["first_bad_seq"], Value::Null);
    assert_eq!(r.json()["first_bad_row"], "keys row 1");
    let bad = env.dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let r = env.run(
        &["audit", "verify", "--checkpoint", bad.to_str().unwrap()],
        b"",
    );
    assert_eq!(r.code, 2);
}

// About the file: `db backup` writes a copy of the database file, whose mode and contents it checks.
#[test]
fn backups_are_private_and_usable_and_status_counts_match() {
    let env = Env::sqlite();
    env.signup("alice");
    env.signup("bob");
    env.login("alice");
    env.run(&["key", "create", "k"], b"").ok();
    env.run(&["data", "put", "--name", "x"], b"value").ok();
    let st = env.run(&["db", "status", "--json"], b"");
    st.ok();
    let st = st.json();
    let audit_rows: i64 = env
        .sql()
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(st["users"], 2);
    assert_eq!(st["keys"], 2, "k and the default key");
    assert_eq!(st["records"], 1);
    assert_eq!(st["schema_version"], 13);
    assert_eq!(st["integrity"], "ok");
    assert_eq!(
        st["audit_entries"].as_i64().unwrap() + 1,
        audit_rows,
        "the status check itself is audited"
    );

    let backup = env.dir.path().join("backups/copy.db");
    let b = backup.to_str().unwrap();
    // A backup that cannot be audited (here: the wrong audit key) leaves no copy behind.
    let unaudited = env.run_with(
        &["db", "backup", b],
        b"",
        &[(
            "ZENCRYPT_AUDIT_KEY",
            "c29tZS1vdGhlci1hdWRpdC1rZXktb2YtMzItYnl0ZXM=",
        )],
    );
    assert_eq!(unaudited.code, 2, "{}", unaudited.stderr);
    assert!(!backup.exists());
    env.run(&["db", "backup", b], b"").ok();
    assert_eq!(mode(&backup), 0o600);
    let again = env.run(&["db", "backup", b], b"");
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr,
        format!("error: cannot open the database at {b}: the file exists; choose a new path\n")
    );
    // Nothing but the copy is left in its directory (the private staging directory is gone).
    let left: Vec<String> = std::fs::read_dir(backup.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["copy.db"]);
    let copied_keys: i64 = rusqlite::Connection::open(&backup)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sessions WHERE length(wrapped_user_key) > 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(copied_keys, 0, "no session can open the backup");
    let link = env.dir.path().join("link.db");
    std::os::unix::fs::symlink(env.dir.path().join("elsewhere.db"), &link).unwrap();
    let r = env.run(&["db", "backup", link.to_str().unwrap()], b"");
    assert_eq!(r.code, 1, "a dangling symlink is not followed");
    assert!(!env.dir.path().join("elsewhere.db").exists());
    // The copy is an older state of the same database: refused until accepted on purpose.
    let refused = env.run(&["--db", b, "db", "status"], b"");
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    let r = env.run(&["--db", b, "audit", "accept-head"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: confirmation to accept the audit log as it is now is needed and there is no terminal to ask for it\nhint: pass --yes\n"
    );
    env.run(&["--db", b, "audit", "accept-head", "--yes"], b"")
        .ok();
    let copy = env.run(&["--db", b, "db", "status", "--json"], b"");
    copy.ok();
    assert_eq!(copy.json()["records"], 1);
    assert_eq!(copy.json()["users"], 2);
    // The copy is a working database: alice can log in and read her record there.
    env.run(
        &[
            "--db",
            b,
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    let v = env.run(&["--db", b, "data", "get", "x"], b"");
    v.ok();
    assert_eq!(v.stdout, "value");
    // The copy and the original are two histories of one database: this client now
    // follows the copy's, and the original must be accepted again to go back to it.
    assert_eq!(env.run(&["db", "status"], b"").code, 7);
    env.run(&["audit", "accept-head", "--yes"], b"").ok();
    // Sessions are kept per database id, which the copy shares: the login to the copy
    // replaced the saved session of the original.
    let r = env.run(&["audit", "list"], b"");
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: session has been revoked\nhint: run `zencrypt login`\n"
    );
    env.login("alice");
    let accepted = env.run(
        &["audit", "list", "--action", "audit.accept-head", "--json"],
        b"",
    );
    let rows = accepted.ok().json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["actor"], format!("uid {}", rustix_uid()));
    // Only admins back up.
    let bob = env.token("bob");
    let r = env.as_token(
        &bob,
        &[
            "db",
            "backup",
            env.dir.path().join("b2.db").to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 4);
}

#[test]
fn audit_exports_hold_no_secret() {
    let env = Env::new();
    env.signup("alice");
    let token = env.token("alice");
    let value = "the-stored-value-9f8e7d";
    env.run(&["data", "put", "--name", "v"], value.as_bytes())
        .ok();
    let pwf = env.dir.path().join("rp");
    std::fs::write(&pwf, "record-password-77\n").unwrap();
    env.run(
        &[
            "data",
            "put",
            "--protect",
            "--password-file",
            pwf.to_str().unwrap(),
        ],
        b"p-value-66",
    )
    .ok();
    env.run(&["data", "get", "v"], b"").ok();
    env.run(
        &["login", "--username", "alice", "--password-stdin"],
        b"wrong-password-55\n",
    );
    for format in ["jsonl", "csv"] {
        let r = env.run(&["audit", "export", "--format", format], b"");
        r.ok();
        assert!(r.stdout.lines().count() > 5, "{format}");
        for secret in [
            pw("alice").as_str(),
            value,
            "p-value-66",
            "record-password-77",
            "wrong-password-55",
            token.as_str(),
            token.split('.').nth(2).unwrap(),
        ] {
            assert!(
                !r.stdout.contains(secret),
                "{format} export contains {secret}"
            );
        }
    }
    let csv = env.run(&["audit", "export", "--format", "csv"], b"");
    assert!(
        csv.stdout
            .starts_with("seq,at,actor,action,target,outcome,detail,prev_mac,mac\n")
    );
}

#[test]
fn completions_need_nothing() {
    let env = Env::new();
    // The scripts call zencrypt back (`ZENCRYPT_COMPLETE=SHELL zencrypt -- WORDS`).
    for (shell, marker) in [
        (
            "bash",
            "complete -o nospace -o bashdefault -o nosort -F _clap_complete_zencrypt zencrypt",
        ),
        ("zsh", "#compdef zencrypt"),
        (
            "fish",
            "complete --keep-order --exclusive --command zencrypt",
        ),
    ] {
        let r = env.run(&["completions", shell], b"");
        r.ok();
        assert!(r.stdout.contains(marker), "{shell}: {}", r.stdout);
        assert!(
            r.stdout.contains(&format!("ZENCRYPT_COMPLETE=\"{shell}\""))
                || r.stdout.contains(&format!("ZENCRYPT_COMPLETE={shell}")),
            "{shell}: {}",
            r.stdout
        );
    }
    assert!(!env.database_made());
}

#[test]
fn every_command_has_help_with_an_example() {
    let env = Env::new();
    for cmd in [
        vec!["signup"],
        vec!["login"],
        vec!["logout"],
        vec!["whoami"],
        vec!["passwd"],
        vec!["user", "list"],
        vec!["user", "add"],
        vec!["key", "create"],
        vec!["key", "rotate"],
        vec!["encrypt"],
        vec!["decrypt"],
        vec!["rewrap"],
        vec!["hash"],
        vec!["data", "put"],
        vec!["data", "get"],
        vec!["data", "import"],
        vec!["usage"],
        vec!["audit", "verify"],
        vec!["audit", "export"],
        vec!["db", "status"],
        vec!["db", "backup"],
        vec!["completions"],
    ] {
        let mut args = cmd.clone();
        args.push("--help");
        let r = env.run(&args, b"");
        r.ok();
        assert!(r.stdout.contains("Example"), "{cmd:?} has no example");
    }
}

/// The uid this test (and the zencrypt it runs) runs as.
fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid()
}
