//! Accounts end to end: sign-up, login, logout, whoami, passwd, sign-up policy.

use crate::common::*;
use serde_json::json;

#[test]
fn scripted_signup_login_whoami_logout() {
    let env = Env::new();
    let a = env.signup("alice");
    assert_eq!(a.stdout, "");
    assert!(
        a.stderr
            .starts_with("Signed up and logged in as alice (admin); session expires at ")
    );
    let b = env.run(
        &["signup", "--username", "bob", "--password-stdin", "--json"],
        format!("{}\n", pw("bob")).as_bytes(),
    );
    b.ok();
    assert_eq!(b.json()["role"], "user");

    env.login("bob");
    let w = env.run(&["whoami", "--json"], b"");
    w.ok();
    let j = w.json();
    assert_eq!(j["username"], "bob");
    assert_eq!(j["role"], "user");
    assert_eq!(j["user_id"], 2);
    assert!(j["session_expires_at"].as_str().unwrap().ends_with('Z'));

    let out = env.run(&["logout"], b"");
    out.ok();
    assert_eq!(out.stderr, "Logged out bob.\n");
    let w = env.run(&["whoami"], b"");
    assert_eq!(w.code, 3);
    assert_eq!(w.stdout, "");
    assert_eq!(
        w.stderr,
        "error: not logged in\nhint: run `zencrypt login`\n"
    );
}

#[test]
fn whoami_plain_output_and_json_errors() {
    let env = Env::new();
    env.signup("alice");
    let w = env.run(&["whoami"], b"");
    w.ok();
    let lines: Vec<&str> = w.stdout.lines().collect();
    assert_eq!(lines[..3], ["username: alice", "role: admin", "user id: 1"]);
    assert!(lines[3].starts_with("session expires: "));

    env.run(&["logout"], b"").ok();
    let w = env.run(&["whoami", "--json"], b"");
    assert_eq!(w.code, 3);
    assert_eq!(w.stdout, "");
    let e: serde_json::Value = serde_json::from_str(w.stderr.trim()).unwrap();
    assert_eq!(e["error"]["code"], "not_logged_in");
    assert_eq!(e["error"]["message"], "not logged in");
}

#[test]
fn wrong_password_and_unknown_user_look_the_same_and_are_audited() {
    let env = Env::new();
    env.signup("alice");
    let wrong = env.run(
        &["login", "--username", "alice", "--password-stdin"],
        b"not-the-password-1\n",
    );
    let unknown = env.run(
        &["login", "--username", "nobody", "--password-stdin"],
        b"not-the-password-2\n",
    );
    assert_eq!(wrong.code, 3);
    assert_eq!(unknown.code, 3);
    assert_eq!(wrong.stderr, "error: invalid username or password\n");
    assert_eq!(wrong.stderr, unknown.stderr);
    assert_eq!(wrong.stdout, "");

    let token = env.token("alice");
    let failed = audit_rows(
        &env,
        &token,
        &["--outcome", "failed", "--action", "auth.login"],
    );
    let actors: Vec<&str> = failed
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    // A name no account has is not recorded (it may be a mistyped password), only a keyed
    // digest of it that tells repeated tries apart.
    assert_eq!(actors.len(), 2);
    assert_eq!(actors[0], "alice");
    assert!(
        actors[1].starts_with("(unknown ") && actors[1].len() == "(unknown )".len() + 12,
        "{actors:?}"
    );
    assert!(!actors[1].contains("nobody"));
    for r in &failed {
        assert_eq!(r["detail"]["error"], "invalid_credentials");
    }
    for secret in ["not-the-password-1", "not-the-password-2", &pw("alice")] {
        assert!(
            !env.stores(secret.as_bytes()),
            "{secret} found in the database"
        );
    }
}

#[test]
fn passwd_rewraps_and_ends_other_sessions() {
    let env = Env::new();
    env.signup("alice");
    let other = env.token("alice");
    env.login("alice"); // replaces (and ends) the sign-up session in the session file
    let input = format!("{}\n{}\n", pw("alice"), "a-brand-new-password");
    let r = env.run(&["passwd", "--password-stdin"], input.as_bytes());
    r.ok();
    assert_eq!(
        r.stderr,
        "Password changed; 1 other session was logged out.\n"
    );
    // This session still works; the other one is revoked.
    env.run(&["whoami"], b"").ok();
    let o = env.as_token(&other, &["whoami"]);
    assert_eq!(o.code, 3);
    assert_eq!(
        o.stderr,
        "error: session has been revoked\nhint: run `zencrypt login`\n"
    );
    // The old password no longer works; the new one does.
    let old = env.run(
        &["login", "--username", "alice", "--password-stdin"],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    assert_eq!(old.code, 3);
    env.run(
        &["login", "--username", "alice", "--password-stdin"],
        b"a-brand-new-password\n",
    )
    .ok();
}

#[test]
fn passwd_with_a_wrong_current_password_changes_nothing() {
    let env = Env::new();
    env.signup("alice");
    let r = env.run(
        &["passwd", "--password-stdin"],
        b"wrong-current-pw\nanother-password\n",
    );
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, "error: invalid password\n");
    env.login("alice");
}

#[test]
fn signup_rules() {
    let env = Env::new();
    env.signup("alice");
    let dup = env.run(
        &["signup", "--username", "alice", "--password-stdin"],
        b"some-password\n",
    );
    assert_eq!(dup.code, 6);
    assert_eq!(dup.stderr, "error: username 'alice' is taken\n");
    let short = env.run(
        &["signup", "--username", "bob", "--password-stdin"],
        b"short\n",
    );
    assert_eq!(short.code, 2);
    assert_eq!(
        short.stderr,
        "error: password is too short: use at least 8 characters\n"
    );
    let bad = env.run(
        &["signup", "--username", "bad name", "--password-stdin"],
        b"long-enough-pw\n",
    );
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: invalid username 'bad name': use 1-64 characters from A-Z a-z 0-9 . _ -\n"
    );
    // The refusal is audited, without the name (it may be a password in the wrong field).
    let audit = env.run(&["audit", "list", "--json", "--action", "auth.signup"], b"");
    let last = audit.json().as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["actor"], &last["target"], &last["outcome"]),
        (&json!("(invalid)"), &json!("(invalid)"), &json!("failed"))
    );
    assert!(!audit.stdout.contains("bad name"));
    let no_pw = env.run(&["signup", "--username", "bob"], b"");
    assert_eq!(no_pw.code, 2);
    assert_eq!(
        no_pw.stderr,
        "error: a password is needed and there is no terminal to ask for it\nhint: pass --password-stdin or --password-file FILE\n"
    );
    let bin = env.run(
        &["signup", "--username", "bob", "--password-stdin"],
        b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\n",
    );
    assert_eq!(bin.code, 2);
    assert_eq!(
        bin.stderr,
        "error: the password from stdin is not valid UTF-8\n"
    );
}

#[test]
fn admin_only_signup_is_refused_but_user_add_works() {
    let env = Env::new().with("ZENCRYPT_SIGNUP", "admin-only");
    env.signup("alice"); // the first account is always allowed and becomes admin
    let r = env.run(
        &["signup", "--username", "bob", "--password-stdin"],
        b"bob-password-1\n",
    );
    assert_eq!(r.code, 4);
    assert_eq!(
        r.stderr,
        "error: sign-up is restricted to administrators (ZENCRYPT_SIGNUP=admin-only)\nhint: ask an administrator to run `zencrypt user add`\n"
    );
    let add = env.run(
        &[
            "user",
            "add",
            "bob",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        format!("{}\n", pw("bob")).as_bytes(),
    );
    add.ok();
    assert_eq!(add.stderr, "Added bob (auditor).\n");
    let t = env.token("bob");
    assert_eq!(
        env.as_token(&t, &["whoami", "--json"]).json()["role"],
        "auditor"
    );
}

#[test]
fn password_file_and_env_password_file() {
    let env = Env::new();
    let f = env.dir.path().join("pw.txt");
    std::fs::write(&f, format!("{}\nignored second line\n", pw("alice"))).unwrap();
    env.run(
        &[
            "signup",
            "--username",
            "alice",
            "--password-file",
            f.to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    env.run_with(
        &["login", "--username", "alice"],
        b"",
        &[("ZENCRYPT_PASSWORD_FILE", f.to_str().unwrap())],
    )
    .ok();
    let missing = env.run(
        &[
            "login",
            "--username",
            "alice",
            "--password-file",
            "/nonexistent/pw",
        ],
        b"",
    );
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "error: reading the password file /nonexistent/pw: No such file or directory (os error 2)\n"
    );
}

#[test]
fn an_account_made_by_an_admin_must_change_its_password_first() {
    let env = Env::new();
    env.signup("alice");
    env.run(
        &["user", "add", "bob", "--password-stdin"],
        b"admin-chose-this\n",
    )
    .ok();
    let r = env.run(
        &["login", "--username", "bob", "--password-stdin"],
        b"admin-chose-this\n",
    );
    r.ok();
    assert!(
        r.stderr
            .contains("An administrator chose this account's password: run `zencrypt passwd`"),
        "{}",
        r.stderr
    );
    // Nothing but whoami, passwd and logout until then.
    let who = env.run(&["whoami", "--json"], b"");
    assert_eq!(who.ok().json()["must_change_password"], true);
    for args in [
        &["data", "put"][..],
        &["key", "list"][..],
        &["audit", "list"][..],
    ] {
        let r = env.run(args, b"v");
        assert_eq!(r.code, 3, "{args:?}");
        assert_eq!(
            r.stderr,
            "error: this account must change its password before anything else\nhint: run `zencrypt passwd` to choose your own password\n"
        );
    }
    // No user key exists yet, so there is nothing the admin's password could open later.
    let wrapped = env.blob_of("SELECT wrapped_user_key FROM users WHERE username = 'bob'");
    assert!(wrapped.is_empty());
    env.run(
        &["passwd", "--password-stdin"],
        b"admin-chose-this\nbobs-own-password\n",
    )
    .ok();
    let token = env.run(&["data", "put", "--name", "mine"], b"bob's secret");
    token.ok();
    assert_eq!(
        env.run(&["data", "get", "mine"], b"").ok().stdout,
        "bob's secret"
    );
    // The password the admin chose no longer logs in.
    let r = env.run(
        &["login", "--username", "bob", "--password-stdin"],
        b"admin-chose-this\n",
    );
    assert_eq!(r.code, 3);
}

#[test]
fn user_names_are_unique_ignoring_case() {
    let env = Env::new();
    env.signup("alice");
    let r = env.run(
        &["signup", "--username", "Alice", "--password-stdin"],
        format!("{}\n", crate::common::pw("Alice")).as_bytes(),
    );
    assert_eq!(r.code, 6);
    assert_eq!(r.stderr, "error: username 'Alice' is taken\n");
    let r = env.run(
        &["user", "add", "ALICE", "--password-stdin"],
        b"some-password-1\n",
    );
    assert_eq!(r.code, 6);
    // Logging in ignores case too, and it is the same account.
    let r = env.run(
        &["login", "--username", "ALICE", "--password-stdin", "--json"],
        format!("{}\n", crate::common::pw("alice")).as_bytes(),
    );
    assert_eq!(r.ok().json()["username"], "alice");
}

#[test]
fn two_passwd_at_once_leave_exactly_one_password() {
    let env = Env::new();
    env.signup("alice");
    let spawn = |new: &str| {
        use std::io::Write;
        let mut c = env
            .command()
            .args(["passwd", "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{}\n{new}\n", crate::common::pw("alice")).as_bytes())
            .unwrap();
        c
    };
    let (a, b) = (spawn("first-new-password"), spawn("second-new-password"));
    let results: Vec<(i32, String)> = [a, b]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (
                o.status.code().unwrap(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .collect();
    let winners: Vec<usize> = (0..2).filter(|i| results[*i].0 == 0).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let loser = &results[1 - winners[0]];
    assert!(loser.0 == 3 || loser.0 == 6, "{loser:?}");
    assert!(!loser.1.contains("damaged"), "{loser:?}");
    let set = ["first-new-password", "second-new-password"][winners[0]];
    let other = ["first-new-password", "second-new-password"][1 - winners[0]];
    let login = |p: &str| {
        env.run(
            &["login", "--username", "alice", "--password-stdin"],
            format!("{p}\n").as_bytes(),
        )
        .code
    };
    assert_eq!(login(other), 3);
    assert_eq!(login(set), 0);
}
