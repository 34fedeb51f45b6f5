//! Account recovery: the recovery key shown at sign-up, `account recovery-key --rotate`
//! and `account recover`.

use crate::common::*;
use serde_json::json;

const ADVICE: &str = "Keep it offline (printed, or in another password manager): it is shown only\nonce. Without your password or this key, nobody can recover your data,\nadministrators included.";
const WRONG: &str = "error: invalid username or recovery key\nhint: use the newest recovery key shown for this account; without it or the password, nobody can recover the data\n";

/// Whether `s` has the shape of a recovery key: eight groups of four base32 characters.
fn is_key(s: &str) -> bool {
    s.len() == 39
        && s.split('-').count() == 8
        && s.split('-').all(|g| {
            g.len() == 4
                && g.bytes()
                    .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        })
}

/// Signs `user` up with --json and returns the recovery key it showed.
fn signup_key(env: &Env, user: &str) -> String {
    let r = env.run(
        &["signup", "--username", user, "--password-stdin", "--json"],
        format!("{}\n", pw(user)).as_bytes(),
    );
    r.ok();
    let key = r.json()["recovery_key"].as_str().unwrap().to_string();
    assert!(is_key(&key), "{key}");
    key
}

fn recover(env: &Env, user: &str, key: &str, new: &str) -> Run {
    env.run(
        &["account", "recover", "--username", user, "--password-stdin"],
        format!("{key}\n{new}\n").as_bytes(),
    )
}

fn login_with(env: &Env, user: &str, password: &str) -> Run {
    env.run(
        &["login", "--username", user, "--password-stdin"],
        format!("{password}\n").as_bytes(),
    )
}

#[test]
fn sign_up_shows_the_key_once_with_the_warning() {
    let env = Env::new();
    let r = env.run(
        &["signup", "--username", "alice", "--password-stdin", "-q"],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    r.ok();
    assert_eq!(r.stdout, "");
    // Shown even with -q: a key nobody saw is lost.
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines[0], "Your recovery key:");
    assert_eq!(lines[1], "");
    assert!(is_key(lines[2].trim()), "{}", r.stderr);
    assert_eq!(lines[3], "");
    assert_eq!(lines[4..].join("\n"), ADVICE);
    assert_eq!(lines.len(), 7);
    let status = env.run(&["account", "recovery-key", "--json"], b"");
    status.ok();
    assert_eq!(status.json()["recovery_key"], true);
    let who = env.run(&["whoami", "--json"], b"");
    assert_eq!(
        who.json()["recovery_key_created_at"],
        status.json()["created_at"]
    );
}

#[test]
fn the_key_sets_a_new_password_ends_every_session_and_is_spent() {
    let env = Env::new();
    let key = signup_key(&env, "alice");
    env.run(&["data", "put", "--name", "prod/db"], b"kept-value")
        .ok();

    let r = recover(
        &env,
        "alice",
        &key.to_lowercase().replace('-', " "),
        "a-new-password-1",
    );
    r.ok();
    let next = r.stdout.trim_end().to_string();
    assert!(is_key(&next), "{}", r.stdout);
    assert_ne!(next, key);
    assert_eq!(r.stdout, format!("{next}\n"), "the key alone on stdout");
    assert_eq!(
        r.stderr,
        format!(
            "Password of alice reset; 1 session ended. Log in with the new password.\nThe recovery key you used no longer works; here is its replacement.\n{ADVICE}\n"
        )
    );
    // The session that was open is over; the old password no longer opens the account.
    let who = env.run(&["whoami"], b"");
    assert_eq!(who.code, 3);
    assert_eq!(
        who.stderr,
        "error: session has been revoked\nhint: run `zencrypt login`\n"
    );
    let old = login_with(&env, "alice", &pw("alice"));
    assert_eq!(old.code, 3);
    assert_eq!(old.stderr, "error: invalid username or password\n");
    // The new one opens the same user key: the data reads as before.
    login_with(&env, "alice", "a-new-password-1").ok();
    let got = env.run(&["data", "get", "prod/db"], b"");
    got.ok();
    assert_eq!(got.stdout, "kept-value");

    // The used key is spent; its replacement works (and is named in any case).
    let again = recover(&env, "alice", &key, "a-new-password-2");
    assert_eq!(again.code, 3);
    assert_eq!(again.stderr, WRONG);
    let r = env.run(
        &[
            "account",
            "recover",
            "--username",
            "ALICE",
            "--password-stdin",
            "--json",
        ],
        format!("{next}\na-new-password-3\n").as_bytes(),
    );
    r.ok();
    let doc = r.json();
    assert_eq!(doc["username"], "alice");
    assert_eq!(doc["revoked_sessions"], 1);
    assert!(is_key(doc["recovery_key"].as_str().unwrap()));
    login_with(&env, "alice", "a-new-password-3").ok();

    let audit = env.run(
        &["audit", "list", "--json", "--action", "auth.recover"],
        b"",
    );
    let rows = audit.json();
    let outcomes: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["outcome"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    // Oldest first.
    assert_eq!(
        outcomes,
        [("ok", "alice"), ("failed", "alice"), ("ok", "alice")],
        "{rows:#}"
    );
    assert_eq!(
        rows[1]["detail"],
        json!({ "error": "invalid_recovery_key" })
    );
    assert!(!audit.stdout.contains(&key) && !audit.stdout.contains(&next));
}

#[test]
fn a_wrong_key_and_an_unknown_user_fail_alike() {
    let env = Env::new();
    signup_key(&env, "alice");
    let other = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH";
    let wrong = recover(&env, "alice", other, "a-new-password-1");
    let unknown = recover(&env, "nobody", other, "a-new-password-1");
    for r in [&wrong, &unknown] {
        assert_eq!(r.code, 3);
        assert_eq!(r.stdout, "");
        assert_eq!(r.stderr, WRONG);
    }
    let malformed = recover(&env, "alice", "ABCD-EFGH", "a-new-password-1");
    assert_eq!(malformed.code, 2);
    assert_eq!(
        malformed.stderr,
        "error: that is not a recovery key: it has 32 letters A-Z and digits 2-7, in groups of four\n"
    );
    let short = recover(&env, "alice", other, "short");
    assert_eq!(short.code, 2);
    assert_eq!(
        short.stderr,
        "error: password is too short: use at least 8 characters\n"
    );
    let one_line = env.run(
        &[
            "account",
            "recover",
            "--username",
            "alice",
            "--password-stdin",
        ],
        other.as_bytes(),
    );
    assert_eq!(one_line.code, 2);
    assert_eq!(
        one_line.stderr,
        "error: account recover --password-stdin expects two lines: the recovery key, then the new password\n"
    );
    let no_input = env.run(&["account", "recover", "--username", "alice"], b"");
    assert_eq!(no_input.code, 2);
    assert_eq!(
        no_input.stderr,
        "error: the recovery key is needed and there is no terminal to ask for it\nhint: pass --password-stdin\n"
    );
    // The password still works: nothing was changed.
    login_with(&env, "alice", &pw("alice")).ok();
}

#[test]
fn rotating_needs_the_password_and_retires_the_old_key() {
    let env = Env::new();
    let first = signup_key(&env, "alice");
    let bad = env.run(
        &["account", "recovery-key", "--rotate", "--password-stdin"],
        b"not-the-password\n",
    );
    assert_eq!(bad.code, 3);
    assert_eq!(bad.stderr, "error: invalid password\n");
    let r = env.run(
        &["account", "recovery-key", "--rotate", "--password-stdin"],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    r.ok();
    let second = r.stdout.trim_end().to_string();
    assert!(is_key(&second));
    assert_eq!(
        r.stderr,
        format!("Your new recovery key is below; the old one no longer works.\n{ADVICE}\n")
    );
    assert_eq!(
        recover(&env, "alice", &first, "a-new-password-1").stderr,
        WRONG
    );
    recover(&env, "alice", &second, "a-new-password-1").ok();
    login_with(&env, "alice", "a-new-password-1").ok();
    let audit = env.run(
        &["audit", "list", "--json", "--action", "auth.recovery-key"],
        b"",
    );
    let rows = audit.json();
    // Oldest first.
    assert_eq!(rows[0]["outcome"], "failed");
    assert_eq!(rows[0]["detail"], json!({ "error": "invalid_password" }));
    assert_eq!(rows[1]["outcome"], "ok");
    assert_eq!(rows[1]["detail"], json!({ "replaced": true }));
}

#[test]
fn an_account_made_by_an_admin_gets_its_key_with_its_first_password() {
    let env = Env::new();
    signup_key(&env, "admin");
    env.run(
        &["user", "add", "bob", "--password-stdin"],
        b"chosen-by-admin\n",
    )
    .ok();
    login_with(&env, "bob", "chosen-by-admin").ok();
    let none = env.run(&["account", "recovery-key"], b"");
    none.ok();
    assert_eq!(
        none.stdout,
        "This account has no recovery key yet: choosing your own password (`zencrypt passwd`) makes one.\n"
    );
    let r = env.run(
        &["passwd", "--password-stdin"],
        b"chosen-by-admin\nbobs-own-password\n",
    );
    r.ok();
    let key = r.stdout.trim_end();
    assert!(is_key(key), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        format!("Password changed.\nYour recovery key is below.\n{ADVICE}\n")
    );
    recover(&env, "bob", key, "bobs-next-password").ok();
    login_with(&env, "bob", "bobs-next-password").ok();
}

#[test]
fn a_disabled_account_is_not_recovered() {
    let env = Env::new();
    signup_key(&env, "admin");
    let key = signup_key(&env, "carol");
    login_with(&env, "admin", &pw("admin")).ok();
    env.run(&["user", "disable", "carol"], b"").ok();
    let r = recover(&env, "carol", &key, "a-new-password-1");
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: account is disabled\nhint: ask an administrator to enable the account\n"
    );
}

#[test]
fn removing_the_recovery_wrapping_from_the_row_is_caught() {
    let env = Env::new();
    signup_key(&env, "alice");
    env.exec(
        "UPDATE users SET recovery_salt = NULL, recovery_wrapped_key = NULL, \
         recovery_created_at = NULL",
    );
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr,
        "error: users row 1 failed its integrity check: it was changed outside zencrypt (restore the database from a backup)\n"
    );
}
