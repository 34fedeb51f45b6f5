//! Public keys between users: every account's keypair (`account pubkey`, `user show`),
//! fingerprints pinned on first use (`user trust`), and standard age files written to
//! users and recipients and read back, checked against Debian's `age` both ways.

use crate::common::*;

/// Whether `s` is an age X25519 recipient.
fn is_recipient(s: &str) -> bool {
    s.len() == 62 && s.starts_with("age1")
}

/// The fingerprint `account pubkey` shows for the holder of `token`.
fn fingerprint(env: &Env, token: &str) -> String {
    let r = env.as_token(token, &["account", "pubkey", "--json"]);
    r.ok();
    r.json()["fingerprint"].as_str().unwrap().to_string()
}

/// Whether Debian's age is here; in CI it must be (.ci/run installs it).
fn have_age() -> bool {
    let here = std::process::Command::new("age")
        .arg("--version")
        .output()
        .is_ok();
    if !here {
        assert!(!in_ci(), "CI installs age (.ci/run)");
        eprintln!("skipped: age is not installed");
    }
    here
}

/// Runs Debian's age (or age-keygen) in the test's directory.
fn age(env: &Env, program: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut c = std::process::Command::new(program);
    c.args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .current_dir(env.dir.path());
    let mut a = assert_cmd::Command::from_std(c);
    a.write_stdin(stdin.to_vec());
    a.output().unwrap().into()
}

fn write(env: &Env, name: &str, bytes: &[u8]) -> String {
    let p = env.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// A share row written straight into the database, as an insider would (bytes as hex).
struct Row<'a> {
    id: i64,
    owner: &'a str,
    recipient: &'a str,
    version: i64,
    wrapped: &'a str,
    signature: &'a str,
    grant: &'a str,
    created_at: i64,
}

/// Inserts `row` as a share of its owner's record `record`.
fn insert_record_share(env: &Env, record: &str, row: &Row<'_>) {
    let record_id =
        env.column::<i64>(&format!("SELECT id FROM records WHERE name = '{record}'"))[0];
    env.exec(&format!(
        "INSERT INTO record_shares (id, record_id, owner_id, recipient_id, version, wrapped_dek, \
         signature, grant_signature, created_at) VALUES ({}, {record_id}, {}, {}, {}, {}, {}, {}, {})",
        row.id,
        user_id(env, row.owner),
        user_id(env, row.recipient),
        row.version,
        env.blob(row.wrapped),
        env.blob(row.signature),
        env.blob(row.grant),
        row.created_at,
    ));
}

/// Inserts `row` as a shared version of `owner`'s key `key`.
fn insert_key_share(env: &Env, key: &str, row: &Row<'_>) {
    let key_id = env.column::<i64>(&format!("SELECT id FROM keys WHERE name = '{key}'"))[0];
    env.exec(&format!(
        "INSERT INTO key_shares (id, key_id, key_name, owner_id, recipient_id, version, \
         wrapped_material, signature, grant_signature, created_at) \
         VALUES ({}, {key_id}, '{key}', {}, {}, {}, {}, {}, {}, {})",
        row.id,
        user_id(env, row.owner),
        user_id(env, row.recipient),
        row.version,
        env.blob(row.wrapped),
        env.blob(row.signature),
        env.blob(row.grant),
        row.created_at,
    ));
}

/// A junk share row (nothing signed, nothing wrapped).
fn junk<'a>(id: i64, owner: &'a str, recipient: &'a str) -> Row<'a> {
    Row {
        id,
        owner,
        recipient,
        version: 1,
        wrapped: "00",
        signature: "00",
        grant: "00",
        created_at: 0,
    }
}

#[test]
fn every_account_has_a_keypair_and_pubkey_prints_only_the_recipient() {
    let env = Env::new();
    env.signup("alice");
    let r = env.run(&["account", "pubkey"], b"");
    r.ok();
    let recipient = r.stdout.strip_suffix('\n').unwrap();
    assert!(is_recipient(recipient), "{}", r.stdout);
    let shown = r.stderr.strip_prefix("Fingerprint: ").unwrap().trim_end();
    assert_eq!(shown.len(), 39, "{}", r.stderr);
    assert_eq!(shown.split(' ').count(), 8);
    let json = env.run(&["account", "pubkey", "--json"], b"");
    json.ok();
    assert_eq!(json.json()["recipient"], recipient);
    assert_eq!(json.json()["fingerprint"], shown);
    assert_eq!(json.json()["username"], "alice");
    // The same key every time; `user show` of oneself says so.
    let me = env.run(&["user", "show", "alice", "--json"], b"");
    me.ok();
    assert_eq!(me.json()["fingerprint"], shown);
    assert_eq!(me.json()["recipient"], recipient);
    assert_eq!(me.json()["pin"], "own");
    // The private halves are stored wrapped: the database holds the public key only in
    // the clear.
    let stored: Vec<String> = env.column("SELECT public_key FROM users WHERE username = 'alice'");
    assert_eq!(stored, vec![recipient.to_string()]);
}

#[test]
fn user_show_tells_whether_a_key_is_pinned() {
    let env = Env::new();
    let (alice, bob, _) = three_users(&env);
    let bob_fp = fingerprint(&env, &bob);
    let r = env.as_token(&alice, &["user", "show", "bob"]);
    r.ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "User:        bob");
    assert_eq!(lines[1], "Role:        user");
    assert_eq!(lines[2], "Status:      active");
    assert_eq!(lines[3], format!("Fingerprint: {bob_fp}"));
    assert!(lines[4].starts_with("Recipient:   age1"), "{}", r.stdout);
    assert_eq!(
        lines[5],
        "Pin:         not pinned yet: compare it with them; the first share pins it"
    );
    let r = env.as_token(&alice, &["user", "show", "nobody"]);
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: no user named 'nobody'")
    );
}

#[test]
fn files_for_users_pin_their_keys_and_only_they_read_them() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    let out = env.dir.path().join("plan.age");
    let out_s = out.to_str().unwrap();
    let r = env.run_with(
        &["encrypt", "--to", "bob", "--to", "carol", "-o", out_s],
        b"the plan\n",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    r.ok();
    assert_eq!(
        r.stderr,
        "Encrypted: 9 bytes from stdin as an age file to bob, carol.\n"
    );
    assert!(
        std::fs::read(&out)
            .unwrap()
            .starts_with(b"age-encryption.org/v1\n")
    );
    for token in [&bob, &carol] {
        let r = env.as_token(token, &["decrypt", out_s]);
        r.ok();
        assert_eq!(r.stdout, "the plan\n");
        assert_eq!(
            r.stderr,
            format!("Decrypted: 9 bytes from {out_s} (an age file).\n")
        );
    }
    // Not addressed to alice herself.
    let r = env.as_token(&alice, &["decrypt", out_s]);
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: this age file is not addressed to any identity at hand (your keypair, your groups' keys, or --identity)"
        )
    );
    // Both keys are pinned now, and the pins were audited (no secret in the details).
    let show = env.as_token(&alice, &["user", "show", "bob", "--json"]);
    assert_eq!(show.json()["pin"], "pinned");
    let pins: Vec<_> = audit_rows(&env, &alice, &["--action", "user.pin"]);
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0]["actor"], "alice");
    assert_eq!(pins[0]["target"], "bob,carol");
    assert_eq!(
        pins[0]["detail"]["pinned"],
        serde_json::json!([
            {"user": "bob", "fingerprint": fingerprint(&env, &bob)},
            {"user": "carol", "fingerprint": fingerprint(&env, &carol)},
        ])
    );
    let enc = audit_rows(&env, &alice, &["--action", "crypto.encrypt"]);
    assert_eq!(
        enc.last().unwrap()["detail"],
        serde_json::json!({"format": "age", "to": ["bob", "carol"], "recipients": 2, "bytes": 9})
    );
    // A second file pins nothing new.
    env.run_with(
        &["encrypt", "--to", "bob", "--armor"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    assert_eq!(audit_rows(&env, &alice, &["--action", "user.pin"]).len(), 1);
    // Unknown users and service accounts are not recipients.
    let r = env.run_with(
        &["encrypt", "--to", "zed"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    assert_eq!(r.code, 5);
    assert_eq!(r.stderr.lines().next(), Some("error: no user named 'zed'"));
}

#[test]
fn a_swapped_public_key_is_refused_until_trusted() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    let bob_fp = fingerprint(&env, &bob);
    let carol_fp = fingerprint(&env, &carol);
    env.run_with(
        &["encrypt", "--to", "bob", "--armor"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    // An insider with the audit key puts carol's keys in bob's row, so that what alice
    // writes "to bob" opens for carol.
    let mut carols = None;
    env.rebind_user("carol", |u| carols = u.keys.clone());
    env.rebind_user("bob", |u| u.keys = carols.clone());
    let out = env.dir.path().join("for-bob.age");
    let r = env.run_with(
        &["encrypt", "--to", "bob", "-o", out.to_str().unwrap()],
        b"secret",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the public key of 'bob' has changed: you pinned {bob_fp}, the database now holds {carol_fp}; compare fingerprints with bob through another channel before trusting the new key"
        )
    );
    assert!(!out.exists());
    let show = env.as_token(&alice, &["user", "show", "bob", "--json"]);
    assert_eq!(show.json()["pin"], "changed");
    assert_eq!(show.json()["pinned_fingerprint"], bob_fp);
    assert_eq!(show.json()["fingerprint"], carol_fp);
    // Trusting a fingerprint other than the database's changes nothing.
    let r = env.as_token(&alice, &["user", "trust", "bob", "--fingerprint", &bob_fp]);
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the fingerprint given is not that of the key the database holds for 'bob' ({carol_fp}): nothing was trusted"
        )
    );
    let r = env.as_token(&alice, &["user", "trust", "bob", "--fingerprint", "12 34"]);
    assert_eq!(r.code, 2);
    // Trusted on purpose (after comparing with bob), it is used from then on.
    let upper = carol_fp.to_uppercase().replace(' ', ":");
    let r = env.as_token(
        &alice,
        &["user", "trust", "bob", "--fingerprint", &upper, "--json"],
    );
    r.ok();
    assert_eq!(
        r.json(),
        serde_json::json!({"username": "bob", "fingerprint": carol_fp, "replaced": bob_fp})
    );
    let trusts = audit_rows(&env, &alice, &["--action", "user.trust"]);
    // The refused trust and the accepted one (a malformed fingerprint never got that far).
    assert_eq!(trusts.len(), 2);
    assert_eq!(trusts[0]["outcome"], "failed");
    assert_eq!(trusts[1]["outcome"], "ok");
    assert_eq!(trusts[1]["detail"]["replaced"], bob_fp);
    env.run_with(
        &["encrypt", "--to", "bob"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    assert_eq!(
        env.as_token(&alice, &["user", "show", "bob", "--json"])
            .json()["pin"],
        "pinned"
    );
}

#[test]
fn pins_changed_in_the_database_do_not_open() {
    let env = Env::new();
    let (alice, _, _) = three_users(&env);
    env.run_with(
        &["encrypt", "--to", "bob", "--armor"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    // Even rebound under the audit key, a pin set altered by a single bit does not open:
    // it is sealed under alice's own key.
    env.rebind_user("alice", |u| {
        let pins = u.pins.as_mut().unwrap();
        let last = pins.len() - 1;
        pins[last] ^= 1;
    });
    let r = env.run_with(
        &["encrypt", "--to", "bob", "--armor"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the pinned public keys of 'alice' do not open: they were changed outside zencrypt"
        )
    );
}

#[test]
fn age_files_both_ways_with_debian_age() {
    if !have_age() {
        return;
    }
    let env = Env::new();
    env.signup("alice");
    let recipient = env
        .run(&["account", "pubkey"], b"")
        .stdout
        .trim()
        .to_string();
    let plain: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let input = write(&env, "plain.bin", &plain);
    // age writes to alice's key; zencrypt reads it with no extra flag, binary and armored.
    for armor in [false, true] {
        let file = if armor {
            "from-age.asc"
        } else {
            "from-age.age"
        };
        let mut args = vec!["-r", recipient.as_str(), "-o", file];
        if armor {
            args.insert(0, "-a");
        }
        args.push(&input);
        age(&env, "age", &args, b"").ok();
        let out = env.dir.path().join(format!("{file}.out"));
        let r = env.run(
            &[
                "decrypt",
                env.dir.path().join(file).to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
            b"",
        );
        r.ok();
        assert_eq!(std::fs::read(&out).unwrap(), plain);
    }
    // zencrypt writes to an age identity's recipient; age reads it.
    age(&env, "age-keygen", &["-o", "id.txt"], b"").ok();
    let theirs = age(&env, "age-keygen", &["-y", "id.txt"], b"");
    let theirs = theirs.stdout.trim();
    for armor in [false, true] {
        let file = env
            .dir
            .path()
            .join(if armor { "to-age.asc" } else { "to-age.age" });
        let mut args = vec![
            "encrypt",
            "--recipient",
            theirs,
            "-o",
            file.to_str().unwrap(),
            &input,
        ];
        if armor {
            args.push("--armor");
        }
        env.run(&args, b"").ok();
        if armor {
            assert!(
                std::fs::read(&file)
                    .unwrap()
                    .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n")
            );
        }
        let out = env.dir.path().join("age.out");
        age(
            &env,
            "age",
            &[
                "-d",
                "-i",
                "id.txt",
                "-o",
                out.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
            b"",
        )
        .ok();
        assert_eq!(std::fs::read(&out).unwrap(), plain);
    }
    // A recipients file and alice's own key together: both can read.
    let rfile = write(
        &env,
        "team.txt",
        format!("# the team\n{theirs}\n\n{recipient}\n").as_bytes(),
    );
    let both = env.dir.path().join("both.age");
    let r = env.run(
        &[
            "encrypt",
            "--recipients-file",
            &rfile,
            "-o",
            both.to_str().unwrap(),
        ],
        b"hi both",
    );
    r.ok();
    assert_eq!(
        r.stderr,
        "Encrypted: 7 bytes from stdin as an age file to 2 recipient(s).\n"
    );
    let r = age(
        &env,
        "age",
        &["-d", "-i", "id.txt", both.to_str().unwrap()],
        b"",
    );
    assert_eq!(r.stdout, "hi both");
    assert_eq!(
        env.run(&["decrypt", both.to_str().unwrap()], b"")
            .ok()
            .stdout,
        "hi both"
    );
}

#[test]
fn age_only_commands_need_no_database() {
    if !have_age() {
        return;
    }
    let env = Env::new();
    age(&env, "age-keygen", &["-o", "id.txt"], b"").ok();
    let theirs = age(&env, "age-keygen", &["-y", "id.txt"], b"")
        .stdout
        .trim()
        .to_string();
    let file = env.dir.path().join("x.age");
    env.run(
        &[
            "encrypt",
            "--recipient",
            &theirs,
            "-o",
            file.to_str().unwrap(),
        ],
        b"no vault",
    )
    .ok();
    let id = env.dir.path().join("id.txt");
    let r = env.run(
        &[
            "decrypt",
            "--identity",
            id.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        b"",
    );
    r.ok();
    assert_eq!(r.stdout, "no vault");
    let r = age(&env, "age", &["-a", "-r", &theirs], b"piped");
    let mut c = env.command();
    c.args(["decrypt", "-i", id.to_str().unwrap()]);
    let mut a = assert_cmd::Command::from_std(c);
    a.write_stdin(r.stdout.into_bytes());
    let back: Run = a.output().unwrap().into();
    assert_eq!(back.stdout, "piped");
    assert!(!env.database_made());
}

#[test]
fn damaged_and_mismatched_files_fail_cleanly() {
    let env = Env::new();
    env.signup("alice");
    let recipient = env
        .run(&["account", "pubkey"], b"")
        .stdout
        .trim()
        .to_string();
    let file = env.dir.path().join("f.age");
    env.run(
        &[
            "encrypt",
            "--recipient",
            &recipient,
            "-o",
            file.to_str().unwrap(),
        ],
        &vec![7u8; 200_000],
    )
    .ok();
    // A flipped bit in the body: exit 7, and -o is not written.
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    let bad = write(&env, "bad.age", &bytes);
    let out = env.dir.path().join("out.bin");
    let r = env.run(&["decrypt", &bad, "-o", out.to_str().unwrap()], b"");
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: the age file failed authentication: it was changed or truncated")
    );
    assert!(!out.exists());
    // Truncated: the same.
    let cut = write(&env, "cut.age", &std::fs::read(&file).unwrap()[..n - 100]);
    let r = env.run(&["decrypt", &cut, "-o", out.to_str().unwrap()], b"");
    assert_eq!(r.code, 7);
    assert!(!out.exists());
    // --identity is for age files; rewrap for zencrypt files.
    env.run(&["key", "create", "k"], b"").ok();
    let zc = env.dir.path().join("f.zc");
    env.run(
        &["encrypt", "--key", "k", "-o", zc.to_str().unwrap()],
        b"zencrypt file",
    )
    .ok();
    let id = write(&env, "id.txt", b"# empty\n");
    let r = env.run(&["decrypt", "-i", &id, zc.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: {} is not an age file: --identity reads only age files",
            zc.display()
        )
    );
    let r = env.run(&["rewrap", file.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: rewrap moves zencrypt files to their key's latest version; {} is an age file",
            file.display()
        )
    );
    // Identity and recipients files name the bad line, never its content.
    let r = env.run(&["decrypt", "-i", &id, file.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!("error: {id} holds no age identity")
    );
    let leaky = write(&env, "leaky.txt", b"AGE-SECRET-KEY-1SECRETSTUFF\n");
    let r = env.run(&["decrypt", "-i", &leaky, file.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!("error: {leaky}: contains non-identity data on line 1")
    );
    let rfile = write(
        &env,
        "r.txt",
        format!("{recipient}\nssh-ed25519 AAAA bob\n").as_bytes(),
    );
    let r = env.run(&["encrypt", "--recipients-file", &rfile], b"x");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: {rfile}, line 2: SSH recipients are not supported: give an age recipient (age1...)"
        )
    );
    let r = env.run(&["encrypt", "--recipient", "age1nope"], b"x");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: 'age1nope...' is not an age recipient (age1... of 62 characters)")
    );
    // --key and age targets do not mix; one of them is needed.
    assert_eq!(
        env.run(&["encrypt", "--key", "k", "--to", "alice"], b"x")
            .code,
        2
    );
    assert_eq!(env.run(&["encrypt"], b"x").code, 2);
}

#[test]
fn shared_records_are_read_by_their_recipient_only() {
    let env = Env::new();
    // alice signed up first: she is the installation's admin, and reads nothing of bob's.
    let (alice, bob, carol) = three_users(&env);
    let token = put_as(&env, &bob, "prod/db", b"db-secret-1");
    let r = env.as_token(&bob, &["data", "share", "prod/db", "--with", "carol"]);
    r.ok();
    let carol_fp = fingerprint(&env, &carol);
    assert_eq!(
        r.stderr,
        format!(
            "Pinned carol's key: {carol_fp}\nCompare it with theirs (`zencrypt account pubkey` on their side).\nShared prod/db with carol (read-only). They read it as:\n  bob:prod/db\n"
        )
    );
    // carol reads by OWNER:NAME and by token; the value is byte-exact.
    let r = env.as_token(&carol, &["data", "get", "bob:prod/db"]);
    r.ok();
    assert_eq!(r.stdout, "db-secret-1");
    let r = env.as_token(&carol, &["data", "get", &token, "--json"]);
    r.ok();
    assert_eq!(r.json()["records"][0]["value"], "db-secret-1");
    // alice (admin) and bob's other references read nothing.
    for (who, reference) in [
        (&alice, "bob:prod/db"),
        (&alice, token.as_str()),
        (&carol, "bob:other"),
    ] {
        let r = env.as_token(who, &["data", "get", reference]);
        assert_eq!(r.code, 5, "{reference}: {}", r.stderr);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            format!("error: record '{reference}' not found")
        );
    }
    // Lists on both sides.
    let mine = env.as_token(&bob, &["data", "list", "--shared", "--json"]);
    assert_eq!(mine.ok().json()[0]["with"], "carol");
    assert_eq!(mine.json()[0]["token"], token.as_str());
    let theirs = env.as_token(&carol, &["data", "list", "--shared-with-me", "--json"]);
    assert_eq!(theirs.ok().json()[0]["reference"], "bob:prod/db");
    assert_eq!(theirs.json()[0]["owner"], "bob");
    assert_eq!(
        env.as_token(&alice, &["data", "list", "--shared-with-me", "--json"])
            .json(),
        serde_json::json!([])
    );
    // Every update is wrapped for carol too.
    env.run_with(
        &["data", "update", "prod/db"],
        b"db-secret-2",
        &[("ZENCRYPT_TOKEN", &bob)],
    )
    .ok();
    assert_eq!(
        env.as_token(&carol, &["data", "get", "bob:prod/db"])
            .ok()
            .stdout,
        "db-secret-2"
    );
    // Audited for both, counted in carol's own usage log.
    let shares = audit_rows(&env, &alice, &["--action", "data.share"]);
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0]["actor"], "bob");
    assert_eq!(shares[0]["target"], "prod/db -> carol");
    assert_eq!(shares[0]["detail"]["with"], "carol");
    let reads: Vec<_> = audit_rows(&env, &alice, &["--action", "data.get"])
        .into_iter()
        .filter(|e| e["actor"] == "carol" && e["detail"]["found"] == 1)
        .collect();
    assert_eq!(reads.len(), 3);
    assert_eq!(reads[0]["target"], "bob:prod/db");
    let usage = env.as_token(&carol, &["usage", "--by", "op", "--json"]);
    let usage = usage.ok().json();
    let gets: Vec<_> = usage
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "data.get")
        .collect();
    assert_eq!(gets.len(), 1, "{usage}");
    assert_eq!(gets[0]["count"], 3);
}

#[test]
fn unsharing_re_encrypts_and_an_old_share_no_longer_opens() {
    let env = Env::new();
    let (_, bob, carol) = three_users(&env);
    put_as(&env, &bob, "api-key", b"key-v1");
    env.as_token(&bob, &["data", "share", "api-key", "--with", "carol"])
        .ok();
    let before: Vec<Option<Vec<u8>>> =
        env.blobs("SELECT wrapped_dek FROM records WHERE name = 'api-key'");
    let old_share: Vec<Option<Vec<u8>>> = env.blobs("SELECT wrapped_dek FROM record_shares");
    let old_sig: Vec<Option<Vec<u8>>> = env.blobs("SELECT signature FROM record_shares");
    let old_grant: Vec<Option<Vec<u8>>> = env.blobs("SELECT grant_signature FROM record_shares");
    let r = env.as_token(
        &bob,
        &["data", "unshare", "api-key", "--from", "carol", "--json"],
    );
    r.ok();
    assert_eq!(r.json()["version"], 2);
    // A new version under a new data key, the same value for bob; carol reads nothing.
    let after: Vec<Option<Vec<u8>>> =
        env.blobs("SELECT wrapped_dek FROM records WHERE name = 'api-key'");
    assert_ne!(before, after);
    assert_eq!(
        env.as_token(&bob, &["data", "get", "api-key"]).ok().stdout,
        "key-v1"
    );
    let r = env.as_token(&carol, &["data", "get", "bob:api-key"]);
    assert_eq!(r.code, 5);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![0]
    );
    // An insider puts carol's old share back: it names version 1 under the old data key,
    // so it opens nothing of version 2 (exit 7, not the value).
    insert_record_share(
        &env,
        "api-key",
        &Row {
            id: 99,
            owner: "bob",
            recipient: "carol",
            version: 1,
            wrapped: &hex(old_share[0].as_ref().unwrap()),
            signature: &hex(old_sig[0].as_ref().unwrap()),
            grant: &hex(old_grant[0].as_ref().unwrap()),
            created_at: 0,
        },
    );
    let r = env.as_token(&carol, &["data", "get", "bob:api-key"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the share of 'bob:api-key' opens version 1, not the current version 2: it was suspended while your account was disabled, or put back outside zencrypt; ask bob to share it again"
        )
    );
    assert!(!r.stdout.contains("key-v1"));
    // ...and bob's client, whose record says it has no share, wraps nothing for it.
    let r = env.run_with(
        &["data", "update", "api-key"],
        b"key-v2",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the shares of record 'api-key' are not the ones you made: a share was added or put back outside zencrypt (restore the database from a backup)"
        )
    );
}

#[test]
fn a_forged_share_or_a_swapped_key_is_refused() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    put_as(&env, &bob, "shared", b"v1");
    env.as_token(&bob, &["data", "share", "shared", "--with", "carol"])
        .ok();
    // One bit of the signature changed: carol's client refuses the share.
    let sig = env.blobs("SELECT signature FROM record_shares")[0]
        .clone()
        .unwrap();
    let mut bad = sig.clone();
    bad[0] ^= 1;
    env.exec(&format!(
        "UPDATE record_shares SET signature = {}",
        env.blob(&hex(&bad))
    ));
    let r = env.as_token(&carol, &["data", "get", "bob:shared"]);
    assert_eq!(r.code, 7);
    env.exec(&format!(
        "UPDATE record_shares SET signature = {}",
        env.blob(&hex(&sig))
    ));
    assert_eq!(
        env.as_token(&carol, &["data", "get", "bob:shared"])
            .ok()
            .stdout,
        "v1"
    );
    // An insider gives carol's row alice's keys: bob's next update of the shared record
    // and his next share with carol are refused, naming both fingerprints; nothing changes.
    let carol_fp = fingerprint(&env, &carol);
    let alice_fp = fingerprint(&env, &alice);
    let mut alices = None;
    env.rebind_user("alice", |u| alices = u.keys.clone());
    env.rebind_user("carol", |u| u.keys = alices.clone());
    let changed = format!(
        "error: the public key of 'carol' has changed: you pinned {carol_fp}, the database now holds {alice_fp}; compare fingerprints with carol through another channel before trusting the new key"
    );
    let r = env.run_with(
        &["data", "update", "shared"],
        b"v2",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr.lines().next().unwrap(), changed);
    put_as(&env, &bob, "second", b"x");
    let r = env.as_token(&bob, &["data", "share", "second", "--with", "carol"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.stderr.lines().next().unwrap(), changed);
    assert_eq!(
        env.as_token(&bob, &["data", "get", "shared"]).ok().stdout,
        "v1"
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![1]
    );
}

#[test]
fn what_cannot_be_shared_and_what_ends_a_share() {
    let env = Env::new();
    let (_, bob, carol) = three_users(&env);
    // A record password's data key never leaves its owner's client.
    let pw = write(&env, "rp", b"record-password-1\n");
    let r = env.run_with(
        &[
            "data",
            "put",
            "--name",
            "locked",
            "--protect",
            "--password-file",
            &pw,
        ],
        b"x",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    r.ok();
    let r = env.as_token(&bob, &["data", "share", "locked", "--with", "carol"]);
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: record 'locked' is protected by a record password and cannot be shared: its data key opens only with that password, which never leaves your client"
        )
    );
    // Twice, to oneself, or to nobody.
    put_as(&env, &bob, "a", b"1");
    env.as_token(&bob, &["data", "share", "a", "--with", "carol"])
        .ok();
    let r = env.as_token(&bob, &["data", "share", "a", "--with", "carol"]);
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: record 'a' is already shared with carol (read only)")
    );
    assert_eq!(
        env.as_token(&bob, &["data", "share", "a", "--with", "bob"])
            .code,
        2
    );
    assert_eq!(
        env.as_token(&bob, &["data", "share", "a", "--with", "zed"])
            .code,
        5
    );
    let r = env.as_token(&bob, &["data", "unshare", "a", "--from", "zed"]);
    assert_eq!(r.code, 5);
    // A delete ends the share (restoring does not share again); a hard delete wipes it.
    env.as_token(&bob, &["data", "rm", "a"]).ok();
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:a"]).code, 5);
    env.as_token(&bob, &["data", "restore", "a"]).ok();
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:a"]).code, 5);
    env.as_token(&bob, &["data", "share", "a", "--with", "carol"])
        .ok();
    env.as_token(&bob, &["data", "rm", "a", "--hard", "--yes"])
        .ok();
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![0]
    );
    // Destroying the key takes its records from their recipients too.
    env.as_token(&bob, &["key", "create", "team"]).ok();
    let r = env.run_with(
        &["data", "put", "--name", "k", "--key", "team"],
        b"2",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    r.ok();
    env.as_token(&bob, &["data", "share", "k", "--with", "carol"])
        .ok();
    assert_eq!(
        env.as_token(&carol, &["data", "get", "bob:k"]).ok().stdout,
        "2"
    );
    env.as_token(&bob, &["key", "destroy", "team", "--yes"])
        .ok();
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:k"]).code, 5);
    // The audit log still verifies, share rows' states included.
    let admin = env.token("alice");
    let r = env.as_token(&admin, &["audit", "verify"]);
    r.ok();
}

#[test]
fn run_and_inject_take_owner_name_references() {
    let env = Env::new();
    let (_, bob, carol) = three_users(&env);
    put_as(&env, &bob, "prod/app", b"app-secret");
    env.as_token(&bob, &["data", "share", "prod/app", "--with", "carol"])
        .ok();
    let r = env.as_token(
        &carol,
        &[
            "run",
            "--env",
            "X=bob:prod/app",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$X\"",
        ],
    );
    r.ok();
    assert_eq!(r.stdout, "app-secret");
    let tpl = write(&env, "t.tpl", b"pw={{ zencrypt://bob:prod/app }}\n");
    let r = env.as_token(&carol, &["inject", "-i", &tpl]);
    r.ok();
    assert_eq!(r.stdout, "pw=app-secret\n");
    // Nothing else of bob's resolves.
    let r = env.as_token(&carol, &["run", "--env", "X=bob:prod/other", "--", "true"]);
    assert_eq!(r.code, 5);
}

#[test]
fn a_share_row_the_owner_never_signed_gets_nothing() {
    let env = Env::new();
    let (alice, bob, _) = three_users(&env);
    put_as(&env, &bob, "db", b"v1");
    // A database writer (alice, the admin, say) adds a share of bob's record to herself.
    insert_record_share(&env, "db", &junk(7, "bob", "alice"));
    // bob's next update wraps nothing for her: it is refused, and nothing changes.
    let r = env.run_with(
        &["data", "update", "db"],
        b"v2",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: the shares of record 'db' are not the ones you made: a share was added or put back outside zencrypt (restore the database from a backup)"
    );
    assert_eq!(env.as_token(&alice, &["data", "get", "bob:db"]).code, 7);
    // Listing it shows nothing, and pins nothing of bob's on the strength of a forgery.
    assert_eq!(
        env.as_token(&alice, &["data", "list", "--shared-with-me", "--json"])
            .json(),
        serde_json::json!([])
    );
    assert_eq!(
        env.as_token(&alice, &["user", "show", "bob", "--json"])
            .json()["pin"],
        "not_pinned"
    );
    assert_eq!(
        env.as_token(&bob, &["data", "list", "--shared", "--json"])
            .json(),
        serde_json::json!([])
    );
    assert_eq!(env.as_token(&bob, &["data", "get", "db"]).ok().stdout, "v1");
    // A secret key given as a recipient is refused without being repeated.
    let r = env.run(
        &[
            "encrypt",
            "--recipient",
            "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
        ],
        b"x",
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: that is an age identity (a secret key), not a recipient: give its public key (age-keygen -y)"
        )
    );
}

#[test]
fn an_account_replaced_under_a_pinned_name_is_a_changed_key() {
    let env = Env::new();
    let (alice, bob, _) = three_users(&env);
    let bob_fp = fingerprint(&env, &bob);
    env.run_with(
        &["encrypt", "--to", "bob", "--armor"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    // An insider renames the real bob and signs up a new "bob" with keys of their own.
    env.exec("UPDATE users SET username = 'bob-old' WHERE username = 'bob'");
    env.rebind_user("bob-old", |_| {});
    env.signup("bob");
    let mallory = env.token("bob");
    let new_fp = fingerprint(&env, &mallory);
    let r = env.run_with(
        &["encrypt", "--to", "bob"],
        b"x",
        &[("ZENCRYPT_TOKEN", &alice)],
    );
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the public key of 'bob' has changed: you pinned {bob_fp}, the database now holds {new_fp}; compare fingerprints with bob through another channel before trusting the new key"
        )
    );
    let show = env.as_token(&alice, &["user", "show", "bob", "--json"]);
    assert_eq!(show.ok().json()["pin"], "changed");
    assert_eq!(show.json()["pinned_fingerprint"], bob_fp);
    // A secret pasted as a fingerprint is not repeated.
    let r = env.as_token(
        &alice,
        &[
            "user",
            "trust",
            "bob",
            "--fingerprint",
            "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQ",
        ],
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the value given (36 characters) is not a fingerprint (32 hex digits, as `user show` prints them)"
        )
    );
}

#[test]
fn disabling_a_user_suspends_their_shares_both_ways() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    put_as(&env, &bob, "x", b"v1");
    env.as_token(&bob, &["data", "share", "x", "--with", "carol"])
        .ok();
    // bob disabled: carol reads nothing he shared, and lists nothing.
    env.as_token(&alice, &["user", "disable", "bob"]).ok();
    let r = env.as_token(&carol, &["data", "get", "bob:x"]);
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: 'bob' is disabled: what they shared is suspended until an administrator enables the account"
        )
    );
    assert_eq!(
        env.as_token(&carol, &["data", "list", "--shared-with-me", "--json"])
            .json(),
        serde_json::json!([])
    );
    env.as_token(&alice, &["user", "enable", "bob"]).ok();
    let bob = env.token("bob");
    assert_eq!(
        env.as_token(&carol, &["data", "get", "bob:x"]).ok().stdout,
        "v1"
    );
    // carol disabled: bob's updates go on; her share keeps its version and, enabled
    // again, she is told to ask for it anew.
    env.as_token(&alice, &["user", "disable", "carol"]).ok();
    env.run_with(&["data", "update", "x"], b"v2", &[("ZENCRYPT_TOKEN", &bob)])
        .ok();
    let r = env.as_token(&bob, &["data", "share", "x", "--with", "carol"]);
    assert_eq!(r.code, 6);
    env.as_token(&alice, &["user", "enable", "carol"]).ok();
    let carol = env.token("carol");
    let r = env.as_token(&carol, &["data", "get", "bob:x"]);
    assert_eq!(r.code, 7);
    assert!(!r.stdout.contains("v2"));
    // bob shares it again: unshare, then share.
    env.as_token(&bob, &["data", "unshare", "x", "--from", "carol"])
        .ok();
    env.as_token(&bob, &["data", "share", "x", "--with", "carol"])
        .ok();
    assert_eq!(
        env.as_token(&carol, &["data", "get", "bob:x"]).ok().stdout,
        "v2"
    );
}

#[test]
fn unsharing_always_completes() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.signup("dave");
    let dave = env.token("dave");
    put_as(&env, &bob, "x", b"v1");
    for who in ["carol", "dave"] {
        env.as_token(&bob, &["data", "share", "x", "--with", who])
            .ok();
    }
    // An insider swaps dave's key: bob's updates are refused, but ending carol's share
    // goes through, and ends dave's too (it cannot be wrapped for any more).
    let mut alices = None;
    env.rebind_user("alice", |u| alices = u.keys.clone());
    env.rebind_user("dave", |u| u.keys = alices.clone());
    let r = env.as_token(&bob, &["data", "unshare", "x", "--from", "carol", "--json"]);
    r.ok();
    assert_eq!(
        r.json(),
        serde_json::json!({"reference": "x", "from": "carol", "version": 2, "reencrypted": true, "also_ended": ["dave"], "all_ended": false})
    );
    assert_eq!(
        r.stderr,
        "Stopped sharing x with carol; re-encrypted as version 2.\nAlso ended (their keys could not be wrapped for): dave.\nWhat carol already read cannot be taken back: rotate it at its source\nif that matters.\n"
    );
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:x"]).code, 5);
    assert_eq!(env.as_token(&dave, &["data", "get", "bob:x"]).code, 5);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![0]
    );
    // A junk share row cannot hold a revocation up either: every share ends.
    put_as(&env, &bob, "y", b"w1");
    env.as_token(&bob, &["data", "share", "y", "--with", "carol"])
        .ok();
    insert_record_share(&env, "y", &junk(50, "bob", "alice"));
    let r = env.as_token(&bob, &["data", "unshare", "y", "--from", "carol", "--json"]);
    r.ok();
    assert_eq!(r.json()["all_ended"], true);
    assert_eq!(r.json()["version"], 2);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![0]
    );
    assert_eq!(env.as_token(&alice, &["data", "get", "bob:y"]).code, 5);
    assert_eq!(env.as_token(&bob, &["data", "get", "y"]).ok().stdout, "w1");
}

#[test]
fn unsharing_a_record_whose_key_expired_ends_the_share_without_a_new_version() {
    let env = Env::new();
    let (_, bob, carol) = three_users(&env);
    env.as_token(&bob, &["key", "create", "short"]).ok();
    let r = env.run_with(
        &["data", "put", "--name", "z", "--key", "short"],
        b"v1",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    r.ok();
    env.as_token(&bob, &["data", "share", "z", "--with", "carol"])
        .ok();
    // The key expires a second from now (it still decrypts; it no longer encrypts).
    env.as_token(&bob, &["key", "set", "short", "--expires-in", "1s"])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = env.as_token(&bob, &["data", "unshare", "z", "--from", "carol", "--json"]);
    r.ok();
    assert_eq!(r.json()["reencrypted"], false);
    assert_eq!(r.json()["version"], 1);
    assert!(
        r.stderr
            .starts_with("Stopped sharing z with carol. Not re-encrypted"),
        "{}",
        r.stderr
    );
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:z"]).code, 5);
}

/// Encrypts `plain` with `key` as the holder of `token` into a new file; returns its path.
fn encrypt_file(env: &Env, token: &str, key: &str, name: &str, plain: &[u8]) -> String {
    encrypt_as(env, token, &["--key", key], name, plain)
}

#[test]
fn a_shared_key_decrypts_its_files_and_its_later_versions_until_unshared() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.as_token(&bob, &["key", "create", "backups"]).ok();
    let f1 = encrypt_file(&env, &bob, "backups", "f1.zc", b"backup one");
    let r = env.as_token(
        &bob,
        &["key", "share", "backups", "--with", "carol", "--json"],
    );
    r.ok();
    assert_eq!(r.json()["versions"], serde_json::json!([1]));
    assert_eq!(r.json()["with"], "carol");
    // carol decrypts with no flag; alice (the admin) cannot.
    let r = env.as_token(&carol, &["decrypt", &f1]);
    r.ok();
    assert_eq!(r.stdout, "backup one");
    assert_eq!(
        r.stderr,
        format!("Decrypted: 10 bytes from {f1} with key bob:backups (version 1).\n")
    );
    let r = env.as_token(&alice, &["decrypt", &f1]);
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: the key this was encrypted with is not one of your keys")
    );
    // A rotation wraps the new version for carol too; she decrypts, not encrypts.
    env.as_token(&bob, &["key", "rotate", "backups"]).ok();
    let f2 = encrypt_file(&env, &bob, "backups", "f2.zc", b"backup two");
    assert_eq!(
        env.as_token(&carol, &["decrypt", &f2]).ok().stdout,
        "backup two"
    );
    let r = env.run_with(
        &["encrypt", "--key", "bob:backups"],
        b"x",
        &[("ZENCRYPT_TOKEN", &carol)],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: key 'bob:backups' is shared with you to decrypt only: ask bob to share it \
             with --write to encrypt with it"
        )
    );
    // Audited, and counted in carol's own usage log.
    let shares = audit_rows(&env, &alice, &["--action", "key.share"]);
    assert_eq!(shares.len(), 1);
    assert_eq!(shares[0]["target"], "backups -> carol");
    let reads: Vec<_> = audit_rows(&env, &alice, &["--action", "crypto.decrypt"])
        .into_iter()
        .filter(|e| e["actor"] == "carol" && e["outcome"] == "ok")
        .collect();
    assert!(
        reads.iter().any(|e| e["detail"]["key"] == "bob:backups"),
        "{reads:?}"
    );
    // Unshared: what she had is taken back, and the next version never reaches her.
    let r = env.as_token(
        &bob,
        &["key", "unshare", "backups", "--from", "carol", "--json"],
    );
    r.ok();
    assert_eq!(r.json()["versions"], 2);
    assert_eq!(env.as_token(&carol, &["decrypt", &f2]).code, 5);
    env.as_token(&bob, &["key", "rotate", "backups"]).ok();
    let f3 = encrypt_file(&env, &bob, "backups", "f3.zc", b"backup three");
    assert_eq!(env.as_token(&carol, &["decrypt", &f3]).code, 5);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM key_shares"),
        vec![0]
    );
    assert_eq!(
        env.as_token(&bob, &["decrypt", &f3]).ok().stdout,
        "backup three"
    );
}

#[test]
fn key_shares_put_back_or_forged_get_nothing_and_destroy_ends_them() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.as_token(&bob, &["key", "create", "k"]).ok();
    env.as_token(&bob, &["key", "share", "k", "--with", "carol"])
        .ok();
    let f1 = encrypt_file(&env, &bob, "k", "f1.zc", b"one");
    assert_eq!(env.as_token(&carol, &["decrypt", &f1]).ok().stdout, "one");
    // A forged signature: carol's client refuses the version (exit 7).
    let sig = env.blobs("SELECT signature FROM key_shares")[0]
        .clone()
        .unwrap();
    let mut bad = sig.clone();
    bad[3] ^= 1;
    env.exec(&format!(
        "UPDATE key_shares SET signature = {}",
        env.blob(&hex(&bad))
    ));
    let r = env.as_token(&carol, &["decrypt", &f1]);
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the shared key 'bob:k' does not carry bob's valid signature: it was changed outside zencrypt"
        )
    );
    env.exec(&format!(
        "UPDATE key_shares SET signature = {}",
        env.blob(&hex(&sig))
    ));
    // A grant an insider adds for alice: bob's next rotation refuses to wrap for it.
    insert_key_share(&env, "k", &junk(90, "bob", "alice"));
    let r = env.as_token(&bob, &["key", "rotate", "k"]);
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the shares of key 'k' are not the ones you made: a share was added or put back outside zencrypt (restore the database from a backup)"
        )
    );
    assert_eq!(env.as_token(&alice, &["decrypt", &f1]).code, 7);
    env.exec("DELETE FROM key_shares WHERE id = 90");
    // Destroying the key ends its shares.
    env.as_token(&bob, &["key", "destroy", "k", "--yes"]).ok();
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM key_shares"),
        vec![0]
    );
    assert_eq!(env.as_token(&carol, &["decrypt", &f1]).code, 5);
}

#[test]
fn a_backup_keeps_shares_and_their_bindings() {
    let env = Env::new();
    let (alice, bob, _) = three_users(&env);
    put_as(&env, &bob, "x", b"v1");
    env.as_token(&bob, &["data", "share", "x", "--with", "carol"])
        .ok();
    env.as_token(&bob, &["key", "create", "k"]).ok();
    env.as_token(&bob, &["key", "share", "k", "--with", "carol"])
        .ok();
    let backup = env.dir.path().join("copy.db");
    let b = backup.to_str().unwrap();
    env.as_token(&alice, &["db", "backup", b]).ok();
    // Another client opens the copy (a SQLite file) with the same audit key: it verifies,
    // share rows and the digests bound in record and key rows included, and carol reads.
    let other = Env::sqlite();
    std::fs::create_dir_all(other.data_dir()).unwrap();
    let key_file = other.data_dir().join("audit.key");
    if env.on_postgres() {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(PG_AUDIT_KEY.as_bytes());
        std::fs::write(&key_file, format!("{encoded}\n")).unwrap();
    } else {
        std::fs::copy(env.data_dir().join("audit.key"), &key_file).unwrap();
    }
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::fs::copy(&backup, other.db()).unwrap();
    let admin = other.token("alice");
    let v = other.as_token(&admin, &["--json", "audit", "verify"]);
    assert_eq!(v.ok().json()["ok"], true);
    let carol_there = other.token("carol");
    assert_eq!(
        other
            .as_token(&carol_there, &["data", "get", "bob:x"])
            .ok()
            .stdout,
        "v1"
    );
}

#[test]
fn a_key_share_put_back_after_unsharing_gets_no_later_version() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.as_token(&bob, &["key", "create", "k"]).ok();
    env.as_token(&bob, &["key", "rotate", "k"]).ok();
    env.as_token(&bob, &["key", "share", "k", "--with", "carol"])
        .ok();
    // (version, wrapped material, signature, grant signature, created at) of each row.
    type Kept = (i64, Vec<u8>, Vec<u8>, Vec<u8>, i64);
    let kept: Vec<Kept> = {
        let versions = env.column::<i64>("SELECT version FROM key_shares ORDER BY version");
        let wrapped = env.blobs("SELECT wrapped_material FROM key_shares ORDER BY version");
        let sigs = env.blobs("SELECT signature FROM key_shares ORDER BY version");
        let grants = env.blobs("SELECT grant_signature FROM key_shares ORDER BY version");
        let created = env.column::<i64>("SELECT created_at FROM key_shares ORDER BY version");
        (0..versions.len())
            .map(|i| {
                (
                    versions[i],
                    wrapped[i].clone().unwrap(),
                    sigs[i].clone().unwrap(),
                    grants[i].clone().unwrap(),
                    created[i],
                )
            })
            .collect()
    };
    env.as_token(&bob, &["key", "unshare", "k", "--from", "carol"])
        .ok();
    // An insider puts carol's rows back: bob's next rotation is refused and wraps nothing
    // for her; raising the minimum decryption version ends the rows, and then nothing new
    // reaches carol.
    for (i, (v, w, s, g, c)) in kept.iter().enumerate() {
        insert_key_share(
            &env,
            "k",
            &Row {
                id: 100 + i as i64,
                owner: "bob",
                recipient: "carol",
                version: *v,
                wrapped: &hex(w),
                signature: &hex(s),
                grant: &hex(g),
                created_at: *c,
            },
        );
    }
    // audit verify reports the rows put back.
    let admin = alice;
    let r = env.as_token(&admin, &["audit", "verify"]);
    assert_eq!(r.code, 7, "{}", r.stdout);
    let r = env.as_token(&bob, &["key", "rotate", "k"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: the shares of key 'k' are not the ones you made: a share was added or put \
             back outside zencrypt (restore the database from a backup)"
        )
    );
    assert_eq!(
        env.column::<i64>("SELECT max(version) FROM key_shares"),
        vec![2]
    );
    env.as_token(&bob, &["key", "set", "k", "--min-decrypt-version", "2"])
        .ok();
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM key_shares"),
        vec![0]
    );
    env.as_token(&bob, &["key", "rotate", "k"]).ok();
    let f = encrypt_file(&env, &bob, "k", "late.zc", b"later");
    assert_eq!(env.as_token(&carol, &["decrypt", &f]).code, 5);
}

#[test]
fn a_fingerprint_given_on_the_command_line_must_match() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    let carol_fp = fingerprint(&env, &carol);
    let alice_fp = fingerprint(&env, &alice);
    put_as(&env, &bob, "x", b"v1");
    let r = env.as_token(
        &bob,
        &[
            "data",
            "share",
            "x",
            "--with",
            "carol",
            "--fingerprint",
            &alice_fp,
        ],
    );
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the key of 'carol' is now {carol_fp}, not the {alice_fp} you confirmed: nothing was shared"
        )
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![0]
    );
    assert_eq!(
        env.as_token(&bob, &["user", "show", "carol", "--json"])
            .json()["pin"],
        "not_pinned"
    );
    env.as_token(
        &bob,
        &[
            "data",
            "share",
            "x",
            "--with",
            "carol",
            "--fingerprint",
            &carol_fp,
        ],
    )
    .ok();
    // The reader's JSON says whose record it is.
    let r = env.as_token(&carol, &["data", "get", "bob:x", "--json"]);
    assert_eq!(r.ok().json()["records"][0]["owner"], "bob");
    env.as_token(&bob, &["key", "create", "k"]).ok();
    let r = env.as_token(
        &bob,
        &[
            "key",
            "share",
            "k",
            "--with",
            "carol",
            "--fingerprint",
            "00",
        ],
    );
    assert_eq!(r.code, 2);
    env.as_token(
        &bob,
        &[
            "key",
            "share",
            "k",
            "--with",
            "carol",
            "--fingerprint",
            &carol_fp,
        ],
    )
    .ok();
}

#[test]
fn a_recipient_missing_from_a_rolled_back_pin_set_is_not_pinned_by_a_write() {
    let env = Env::new();
    let (_, bob, carol) = three_users(&env);
    env.signup("dave");
    put_as(&env, &bob, "x", b"v1");
    env.as_token(&bob, &["data", "share", "x", "--with", "carol"])
        .ok();
    let before_dave = env.blobs("SELECT key_pins FROM users WHERE username = 'bob'");
    env.as_token(&bob, &["data", "share", "x", "--with", "dave"])
        .ok();
    // An insider puts bob's pin set back to before dave was pinned.
    env.rebind_user("bob", |u| u.pins = before_dave[0].clone());
    let r = env.run_with(&["data", "update", "x"], b"v2", &[("ZENCRYPT_TOKEN", &bob)]);
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: record 'x' is shared with 'dave', whose key you never pinned: the share was added outside zencrypt"
        )
    );
    // Unsharing completes and ends dave's share, without pinning whatever key the
    // database now holds for him.
    let r = env.as_token(&bob, &["data", "unshare", "x", "--from", "carol", "--json"]);
    assert_eq!(r.ok().json()["also_ended"], serde_json::json!(["dave"]));
    let r = env.as_token(&bob, &["user", "show", "dave", "--json"]);
    assert_eq!(r.ok().json()["pin"], "not_pinned");
    assert_eq!(env.as_token(&carol, &["data", "get", "bob:x"]).code, 5);
}
