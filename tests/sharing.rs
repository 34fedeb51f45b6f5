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

fn three_users(env: &Env) -> (String, String, String) {
    env.signup("alice");
    env.signup("bob");
    env.signup("carol");
    (env.token("alice"), env.token("bob"), env.token("carol"))
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
        "Pin:         not pinned yet (pinned when you first share with them)"
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
            "error: this age file is not addressed to any identity at hand (your keypair, or --identity)"
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
        Some("error: 'age1nope' is not an age recipient (age1... of 62 characters)")
    );
    // --key and age targets do not mix; one of them is needed.
    assert_eq!(
        env.run(&["encrypt", "--key", "k", "--to", "alice"], b"x")
            .code,
        2
    );
    assert_eq!(env.run(&["encrypt"], b"x").code, 2);
}
