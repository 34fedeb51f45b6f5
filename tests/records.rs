//! Encrypted data records end to end.

use std::path::PathBuf;

use crate::common::*;
use serde_json::{Value, json};

fn setup() -> Env {
    let env = Env::new();
    env.signup("alice");
    env
}

fn put(env: &Env, args: &[&str], value: &[u8]) -> String {
    let mut a = vec!["data", "put"];
    a.extend_from_slice(args);
    let r = env.run(&a, value);
    r.ok();
    let token = r.stdout.trim_end().to_string();
    assert!(!token.contains('\n'));
    token
}

fn get_raw(env: &Env, reference: &str) -> (i32, Vec<u8>, String) {
    let out = env
        .command()
        .args(["data", "get", reference])
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pw_file(env: &Env, name: &str, password: &str) -> PathBuf {
    let p = env.dir.path().join(name);
    std::fs::write(&p, format!("{password}\n")).unwrap();
    p
}

#[test]
fn values_round_trip_byte_exact() {
    let env = setup();
    let big: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i * 7 % 256) as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("binary", vec![0, 0xff, 0, 1, 0xfe, b'\n', 0]),
        ("unicode", "pässwörd – 秘密 🔐\n".as_bytes().to_vec()),
        ("big", big),
    ];
    for (name, value) in &cases {
        let token = put(&env, &["--name", name], value);
        assert!(token.starts_with("zt_") && token.len() == 35, "{token}");
        let (code, out, err) = get_raw(&env, name);
        assert_eq!(code, 0, "{name}: {err}");
        assert_eq!(&out, value, "{name} by name");
        assert_eq!(get_raw(&env, &token).1, *value, "{name} by token");
    }
    // From a file and to a file.
    let src = env.dir.path().join("in.bin");
    std::fs::write(&src, &cases[1].1).unwrap();
    let token = put(&env, &["--file", src.to_str().unwrap()], b"");
    let dst = env.dir.path().join("out.bin");
    env.run(&["data", "get", &token, "-o", dst.to_str().unwrap()], b"")
        .ok();
    assert_eq!(std::fs::read(&dst).unwrap(), cases[1].1);
    // Batch JSON: text as value, binary as value_base64.
    let j = env.run(&["data", "get", "unicode", "binary", "--json"], b"");
    j.ok();
    let doc = j.json();
    assert_eq!(doc["records"][0]["value"], "pässwörd – 秘密 🔐\n");
    assert_eq!(doc["records"][1]["value_base64"], "AP8AAf4KAA==");
    assert_eq!(doc["missing"], json!([]));
}

#[test]
fn plaintext_never_reaches_the_database() {
    let env = setup();
    let secret = "correct-horse-battery-staple-0451";
    put(&env, &["--name", "s"], secret.as_bytes());
    env.run(&["data", "update", "s"], format!("{secret}-v2").as_bytes())
        .ok();
    assert!(
        !env.stores(secret.as_bytes()),
        "the database holds the plaintext"
    );
    // The search does see what the database holds, bytes columns included.
    let ciphertext = env.blob_of("SELECT ciphertext FROM records WHERE name = 's'");
    assert!(env.stores(&ciphertext));
}

#[test]
fn names_versions_and_tokens() {
    let env = setup();
    put(&env, &["--name", "db"], b"one");
    let dup = env.run(&["data", "put", "--name", "db"], b"two");
    assert_eq!(dup.code, 6);
    assert_eq!(
        dup.stderr,
        "error: a live record named 'db' already exists\nhint: `zencrypt data update db` replaces its value (the old one stays in `data history`), or choose another name\n"
    );

    let u = env.run(
        &["data", "update", "db", "--if-version", "1", "--json"],
        b"two",
    );
    u.ok();
    assert_eq!(u.json()["version"], 2);
    let stale = env.run(&["data", "update", "db", "--if-version", "1"], b"three");
    assert_eq!(stale.code, 6);
    assert_eq!(stale.stderr, "error: record 'db' is at version 2, not 1\n");
    assert_eq!(get_raw(&env, "db").1, b"two");

    for (len, code) in [("19", 2), ("65", 2)] {
        let r = env.run(&["data", "put", "--token-length", len], b"x");
        assert_eq!(r.code, code);
        assert!(
            r.stderr
                .starts_with("error: --token-length must be between 20 and 64")
        );
    }
    let t20 = put(&env, &["--token-length", "20"], b"x");
    assert_eq!(t20.len(), 20);
    let custom = put(&env, &["--token", "my-custom_token"], b"x");
    assert_eq!(custom, "my-custom_token");
    let taken = env.run(&["data", "put", "--token", "my-custom_token"], b"y");
    assert_eq!(taken.code, 6);
    assert_eq!(taken.stderr, "error: token 'my-custom_token' is taken\n");
    let bad = env.run(&["data", "put", "--token", "bad token!"], b"y");
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: invalid token 'bad token!': use 8-64 characters from A-Z a-z 0-9 _ -\n"
    );
}

#[test]
fn delete_restore_purge_and_expiry() {
    let env = setup();
    put(&env, &["--name", "a"], b"A");
    let b = put(&env, &["--name", "b"], b"B");
    put(&env, &["--name", "short", "--expires-in", "1s"], b"S");

    let rm = env.run(&["data", "rm", "a", "--json"], b"");
    rm.ok();
    assert_eq!(rm.json(), json!({ "count": 1 }));
    let (code, out, err) = get_raw(&env, "a");
    assert_eq!((code, out.len()), (5, 0));
    assert_eq!(
        err,
        "error: record 'a' has been deleted; restore it with `zencrypt data restore a`\n"
    );
    // A new live record may take the name; restoring the old one then conflicts.
    put(&env, &["--name", "a"], b"A2");
    let clash = env.run(&["data", "restore", "a"], b"");
    assert_eq!(clash.code, 6);
    env.run(&["data", "rm", "a"], b"").ok();
    // Deleting what is already deleted changes nothing and says so.
    let again = env.run(&["data", "rm", "a"], b"");
    assert_eq!(again.code, 5);
    assert_eq!(
        again.stderr,
        "error: record 'a' is already deleted; nothing was changed (`zencrypt data restore a` brings it back, `--hard` wipes it)\n"
    );

    let hard = env.run(&["data", "rm", &b, "--hard"], b"");
    assert_eq!(hard.code, 2);
    assert_eq!(
        hard.stderr,
        "error: confirmation is needed and there is no terminal to ask for it\nhint: pass --yes\n"
    );
    env.run(&["data", "rm", &b, "--hard", "--yes"], b"").ok();
    let (code, _, err) = get_raw(&env, &b);
    assert_eq!(code, 5);
    assert_eq!(err, format!("error: record '{b}' not found\n"));

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out, err) = get_raw(&env, "short");
    assert_eq!((code, out.len()), (5, 0));
    assert_eq!(err, "error: record 'short' has expired\n");
    let exported = env.run(&["data", "export"], b"");
    exported.ok();
    assert!(
        !exported.stdout.contains("\"short\""),
        "expired records are not exported"
    );
    let listed = env
        .run(&["data", "list", "--expired", "--json"], b"")
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "short");

    let p = env.run(&["data", "purge", "--expired", "--json"], b"");
    p.ok();
    assert_eq!(p.json(), json!({ "count": 1 }));
    // Wiping is destructive: --deleted needs --hard, and --hard needs --yes here.
    let p = env.run(&["data", "purge", "--deleted", "--json"], b"");
    assert_eq!(p.code, 2);
    assert_eq!(
        p.stderr,
        "{\"error\":{\"code\":\"usage\",\"message\":\"--deleted wipes records for good: add --hard to say so (without it, purge only soft-deletes expired records)\"}}\n"
    );
    for args in [
        &["data", "purge", "--deleted", "--hard"][..],
        &["data", "purge", "--expired", "--hard"],
    ] {
        let p = env.run(args, b"");
        assert_eq!(p.code, 2, "{args:?}");
        assert_eq!(
            p.stderr,
            "error: confirmation is needed and there is no terminal to ask for it\nhint: pass --yes\n"
        );
    }
    assert_eq!(
        env.run(&["data", "list", "--all", "--json"], b"")
            .json()
            .as_array()
            .unwrap()
            .len(),
        3,
        "nothing was wiped"
    );
    let p = env.run(
        &["data", "purge", "--deleted", "--hard", "--yes", "--json"],
        b"",
    );
    p.ok();
    assert_eq!(p.json(), json!({ "count": 3 }), "two 'a's and 'short'");
    let left = env.run(&["data", "list", "--all", "--json"], b"").json();
    assert_eq!(left.as_array().unwrap().len(), 0);
    let none = env.run(&["data", "purge"], b"");
    assert_eq!(none.code, 2);
}

#[test]
fn batch_get_reports_missing_and_expired() {
    let env = setup();
    put(&env, &["--name", "ok"], b"fine");
    put(&env, &["--name", "gone", "--expires-in", "1s"], b"x");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = env.run(&["data", "get", "ok", "gone", "nope"], b"");
    assert_eq!(r.code, 5);
    let doc = r.json();
    assert_eq!(doc["records"].as_array().unwrap().len(), 1);
    assert_eq!(doc["records"][0]["value"], "fine");
    assert_eq!(doc["missing"], json!(["nope"]));
    assert_eq!(doc["expired"], json!(["gone"]));
}

#[test]
fn swapped_ciphertexts_fail_integrity() {
    let env = setup();
    put(&env, &["--name", "one"], b"first value");
    put(&env, &["--name", "two"], b"second value");
    let blob = |name: &str| {
        env.blob_of(&format!(
            "SELECT ciphertext FROM records WHERE name = '{name}'"
        ))
    };
    let (one, two) = (blob("one"), blob("two"));
    env.exec(&format!(
        "UPDATE records SET ciphertext = {} WHERE name = 'one';
         UPDATE records SET ciphertext = {} WHERE name = 'two';",
        env.blob(&hex(&two)),
        env.blob(&hex(&one))
    ));
    for name in ["one", "two"] {
        let (code, out, err) = get_raw(&env, name);
        assert_eq!(code, 7, "{name}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("failed its integrity check"), "{err}");
    }
}

#[test]
fn password_protected_records() {
    let env = setup();
    let good = pw_file(&env, "good", "record-pass-1");
    let bad = pw_file(&env, "bad", "record-pass-x");
    let newpw = pw_file(&env, "new", "record-pass-2");
    let g = good.to_str().unwrap();
    for i in 0..3 {
        put(
            &env,
            &[
                "--protect",
                "--password-file",
                g,
                "--name",
                &format!("p{i}"),
            ],
            format!("v{i}").as_bytes(),
        );
    }
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM password_identities"),
        [1],
        "records sharing a password share one identity"
    );

    let r = env.run(
        &["data", "get", "p0", "p1", "p2", "--password-file", g],
        b"",
    );
    r.ok();
    let doc = r.json();
    let values: Vec<&str> = doc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["v0", "v1", "v2"]);

    let wrong = env.run(
        &[
            "data",
            "get",
            "p0",
            "--password-file",
            bad.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(wrong.code, 3);
    assert_eq!(wrong.stderr, "error: invalid password\n");
    let none = env.run(&["data", "get", "p0"], b"");
    assert_eq!(none.code, 2);
    assert_eq!(
        none.stderr,
        "error: a record password is needed and there is no terminal to ask for it\nhint: pass --password-file FILE (or set ZENCRYPT_RECORD_PASSWORD_FILE)\n"
    );
    let via_env = env.run_with(
        &["data", "get", "p1"],
        b"",
        &[("ZENCRYPT_RECORD_PASSWORD_FILE", g)],
    );
    via_env.ok();
    assert_eq!(via_env.stdout, "v1");

    let rekey = env.run(
        &[
            "data",
            "rekey",
            "--old-password-file",
            g,
            "--new-password-file",
            newpw.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    rekey.ok();
    assert_eq!(rekey.json(), json!({ "count": 3 }));
    assert_eq!(
        env.run(&["data", "get", "p2", "--password-file", g], b"")
            .code,
        3
    );
    let after = env.run(
        &[
            "data",
            "get",
            "p2",
            "--password-file",
            newpw.to_str().unwrap(),
        ],
        b"",
    );
    after.ok();
    assert_eq!(after.stdout, "v2");

    let mut ct = env.blob_of("SELECT ciphertext FROM records WHERE name = 'p0'");
    ct[20] ^= 0x01;
    env.exec(&format!(
        "UPDATE records SET ciphertext = {} WHERE name = 'p0'",
        env.blob(&hex(&ct))
    ));
    let t = env.run(
        &[
            "data",
            "get",
            "p0",
            "--password-file",
            newpw.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(t.code, 7);
}

#[test]
fn other_users_see_and_read_nothing() {
    let env = setup();
    let token = put(&env, &["--name", "mine"], b"alice's secret");
    env.signup("bob");
    assert_eq!(
        env.run(&["data", "list", "--all", "--json"], b"").json(),
        json!([])
    );
    let (code, out, err) = get_raw(&env, &token);
    assert_eq!((code, out.len()), (5, 0));
    assert_eq!(err, format!("error: record '{token}' not found\n"));
    assert_eq!(get_raw(&env, "mine").0, 5);
    // Not even an admin: alice is the admin, carol is a new admin-promoted user.
    env.signup("carol");
    let admin = env.token("alice");
    env.as_token(&admin, &["user", "role", "carol", "admin"])
        .ok();
    assert_eq!(get_raw(&env, &token).0, 5);
    assert_eq!(env.run(&["data", "list", "--json"], b"").json(), json!([]));
}

#[test]
fn passwd_keeps_every_record_readable() {
    let env = setup();
    put(&env, &["--name", "k"], b"key-wrapped");
    let input = format!("{}\n{}\n", pw("alice"), "a-new-account-password");
    env.run(&["passwd", "--password-stdin"], input.as_bytes())
        .ok();
    env.run(&["logout"], b"").ok();
    env.run(
        &["login", "--username", "alice", "--password-stdin"],
        b"a-new-account-password\n",
    )
    .ok();
    assert_eq!(get_raw(&env, "k").1, b"key-wrapped");
}

type Materials = Vec<(i64, i64, Option<Vec<u8>>)>;

fn materials(env: &Env) -> Materials {
    let of = |column: &str| format!("SELECT {column} FROM key_versions ORDER BY key_id, version");
    let ids = env.column::<i64>(&of("key_id"));
    let versions = env.column::<i64>(&of("version"));
    let materials = env.blobs(&of("wrapped_material"));
    assert_eq!(ids.len(), materials.len());
    ids.into_iter()
        .zip(versions)
        .zip(materials)
        .map(|((id, version), material)| (id, version, material))
        .collect()
}

#[test]
fn passwd_rewraps_only_the_user_key() {
    let env = setup();
    put(&env, &["--name", "k"], b"before");
    env.run(&["key", "rotate", "default"], b"").ok();
    let before = materials(&env);
    let input = format!("{}\n{}\n", pw("alice"), "a-new-account-password");
    env.run(&["passwd", "--password-stdin"], input.as_bytes())
        .ok();
    // O(1): no key version is touched, and everything reads as before.
    assert_eq!(materials(&env), before);
    assert_eq!(get_raw(&env, "k").1, b"before");
    let audit = env.run(&["audit", "list", "--json", "--action", "auth.passwd"], b"");
    assert_eq!(
        audit.json()[0]["detail"],
        json!({ "revoked_sessions": 0, "first_password": false })
    );
    // The new password opens the same user key from a fresh login.
    let r = env.run(
        &["login", "--username", "alice", "--password-stdin"],
        b"a-new-account-password\n",
    );
    r.ok();
    assert_eq!(get_raw(&env, "k").1, b"before");
}

#[test]
fn import_is_all_or_nothing_and_export_decrypts() {
    let env = setup();
    let bad = env.run(
        &["data", "import"],
        b"{\"name\":\"x\",\"value\":\"1\"}\n{\"name\":\"y\",\"value\":2}\n",
    );
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: import line 2: a string value or value_base64 is required; nothing was imported\n"
    );
    assert_eq!(env.run(&["data", "list", "--json"], b"").json(), json!([]));
    let dup = env.run(
        &["data", "import"],
        b"{\"name\":\"x\",\"value\":\"1\"}\n{\"name\":\"x\",\"value\":\"2\"}\n",
    );
    assert_eq!(dup.code, 6);
    assert_eq!(env.run(&["data", "list", "--json"], b"").json(), json!([]));

    let ok = env.run(
        &["data", "import"],
        b"{\"name\":\"x\",\"value\":\"1\"}\n\n{\"value_base64\":\"AP8=\",\"expires_in\":\"1d\"}\n",
    );
    ok.ok();
    assert_eq!(ok.stdout, "2\n");
    let exported = env.run(&["data", "export"], b"");
    exported.ok();
    let lines: Vec<Value> = exported
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["name"], "x");
    assert_eq!(lines[0]["value"], "1");
    assert_eq!(lines[1]["value_base64"], "AP8=");
    assert!(lines[1]["expires_at"].is_string());
    // An export imports again.
    env.run(&["data", "rm", "x", "--hard", "--yes"], b"").ok();
    let again = env.run(&["data", "import"], exported.stdout.as_bytes());
    again.ok();
    assert_eq!(again.stdout, "2\n");
}

#[test]
fn import_counts_every_encryption_against_the_key_version() {
    let env = setup();
    env.run(&["key", "create", "bulk"], b"").ok();
    put(&env, &["--key", "bulk"], b"abc");
    let ok = env.run(
        &["data", "import", "--key", "bulk"],
        b"{\"value\":\"1\"}\n{\"value\":\"22\"}\n{\"value\":\"333\"}\n",
    );
    ok.ok();
    assert_eq!(ok.stdout, "3\n");
    // A failed import adds nothing to the counters either.
    let bad = env.run(
        &["data", "import", "--key", "bulk"],
        b"{\"name\":\"d\",\"value\":\"4444\"}\n{\"name\":\"d\",\"value\":\"55555\"}\n",
    );
    assert_eq!(bad.code, 6);
    let show = env.run(&["key", "show", "bulk", "--json"], b"").json();
    assert_eq!(show["versions"][0]["encryptions"], 4);
    assert_eq!(show["versions"][0]["bytes"], 3 + 1 + 2 + 3);
    assert_eq!(
        env.column::<i64>("SELECT id FROM records ORDER BY id"),
        [1, 2, 3, 4]
    );
    assert_eq!(
        env.column::<i64>(
            "SELECT count(*) FROM usage_events WHERE operation = 'data.put' AND outcome = 'ok'"
        ),
        [4]
    );
}

#[test]
fn an_update_counts_its_encryption() {
    let env = setup();
    env.run(&["key", "create", "k2"], b"").ok();
    put(&env, &["--name", "u", "--key", "k2"], b"12345");
    env.run(&["data", "update", "u"], b"1234567").ok();
    let show = env.run(&["key", "show", "k2", "--json"], b"").json();
    assert_eq!(show["versions"][0]["encryptions"], 2);
    assert_eq!(show["versions"][0]["bytes"], 5 + 7);
}

#[test]
fn rotate_with_rewrap_moves_data_keys_only() {
    let env = setup();
    for i in 0..5 {
        put(
            &env,
            &["--name", &format!("r{i}")],
            format!("value {i}").as_bytes(),
        );
    }
    let before = env.blob_of("SELECT ciphertext FROM records WHERE name = 'r3'");
    let r = env.run(&["key", "rotate", "default", "--rewrap", "--json"], b"");
    r.ok();
    assert_eq!(
        r.json(),
        json!({ "rotated": [{ "name": "default", "version": 2, "rewrapped": 5 }] })
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM records WHERE key_version = 2"),
        [5]
    );
    let after = env.blob_of("SELECT ciphertext FROM records WHERE name = 'r3'");
    assert_eq!(before, after, "the data itself is not re-encrypted");
    let by_key = env
        .run(&["data", "list", "--key", "default", "--json"], b"")
        .json();
    assert_eq!(by_key.as_array().unwrap().len(), 5);
    let none = env.run(&["data", "list", "--key", "nope"], b"");
    assert_eq!(none.code, 5);
    assert_eq!(none.stderr, "error: key 'nope' not found\n");
    env.run(
        &["key", "set", "default", "--min-decrypt-version", "2"],
        b"",
    )
    .ok();
    assert_eq!(get_raw(&env, "r3").1, b"value 3");
}

#[test]
fn usage_and_audit_rows_never_hold_values() {
    let env = setup();
    let value = "value-that-must-not-be-logged";
    let token = put(&env, &["--name", "n"], value.as_bytes());
    get_raw(&env, "n");
    env.run(&["data", "update", "n"], b"value-that-must-not-be-logged-2")
        .ok();
    env.run(&["data", "export"], b"").ok();
    let ops: Vec<String> =
        env.column("SELECT operation FROM usage_events WHERE record_id IS NOT NULL ORDER BY id");
    assert_eq!(ops, ["data.put", "data.get", "data.update", "data.export"]);
    let audit = env.run(&["audit", "list", "--json", "--limit", "1000"], b"");
    audit.ok();
    assert!(!audit.stdout.contains(value));
    let targets: Vec<String> = audit
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str().unwrap().starts_with("data."))
        .map(|r| r["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        targets[..3],
        ["n".to_string(), "n".to_string(), "n".to_string()]
    );
    assert!(
        !audit.stdout.contains(&token),
        "record tokens stay out of audit details"
    );
}

#[test]
fn names_and_tokens_are_never_ambiguous() {
    let env = setup();
    put(&env, &["--name", "prod/db/password"], b"p");
    assert_eq!(get_raw(&env, "prod/db/password").1, b"p");
    put(&env, &["--token", "custom-token-1"], b"t");
    let r = env.run(&["data", "put", "--name", "custom-token-1"], b"x");
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr,
        "error: 'custom-token-1' is the token of another record; choose another name\n"
    );
    put(&env, &["--name", "looks-like-a-token"], b"n");
    let r = env.run(&["data", "put", "--token", "looks-like-a-token"], b"x");
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr,
        "error: 'looks-like-a-token' is the name of another record; choose another token\n"
    );
    for bad in [
        "a:b",
        "/lead",
        "trail/",
        "a//b",
        "zt_abc",
        "tab\there",
        "bidi\u{202e}x",
    ] {
        let r = env.run(&["data", "put", "--name", bad], b"x");
        assert_eq!(r.code, 2, "{bad}");
        assert!(
            r.stderr.starts_with("error: invalid record name '"),
            "{bad}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains('\u{202e}') && !r.stderr.contains('\t'));
    }
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM records"),
        [3],
        "nothing refused was stored"
    );
}

#[test]
fn a_put_waiting_on_stdin_across_a_passwd_stores_a_readable_value() {
    use std::io::Write;
    let env = setup();
    let mut put = env
        .command()
        .args(["data", "put", "--name", "slow"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(b"written before").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let input = format!("{}\n{}\n", pw("alice"), "a-new-account-password");
    env.run(&["passwd", "--password-stdin"], input.as_bytes())
        .ok();
    stdin.write_all(b" and after").unwrap();
    drop(stdin);
    let out = put.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get_raw(&env, "slow").1, b"written before and after");
}
