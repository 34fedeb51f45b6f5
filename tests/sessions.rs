//! Session tokens end to end: revocation, tampering, expiry, files and permissions.

use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const REVOKED: &str = "error: session has been revoked\nhint: run `zencrypt login`\n";
const INVALID: &str = "error: invalid session token\nhint: run `zencrypt login` for a new session (or unset ZENCRYPT_TOKEN if it is stale)\n";

#[test]
fn a_token_saved_before_logout_is_refused_after() {
    let env = Env::new();
    env.signup("alice");
    let saved = std::fs::read_to_string(env.session_file()).unwrap();
    env.as_token(&saved, &["whoami"]).ok();
    env.run(&["logout"], b"").ok();
    let r = env.as_token(&saved, &["whoami"]);
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, REVOKED);
    assert_eq!(
        std::fs::read_dir(env.sessions_dir()).unwrap().count(),
        0,
        "logout removes the session file"
    );
    let kept = env.column::<i64>(
        "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL AND length(wrapped_user_key) > 0",
    );
    assert_eq!(kept, [0], "a revoked session keeps no copy of the user key");
}

#[test]
fn tampered_tokens_are_refused() {
    let env = Env::new();
    env.signup("bob");
    let token = env.token("bob");
    env.as_token(&token, &["whoami"]).ok();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);

    // One changed character in the signature.
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[5] = if sig[5] == 'A' { 'B' } else { 'A' };
    let one_char = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        sig.iter().collect::<String>()
    );

    // Edited claims (role and user id), signature kept.
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let edited = claims
        .replace("\"role\":\"admin\"", "\"role\":\"user\"")
        .replace("\"sub\":\"1\"", "\"sub\":\"2\"");
    assert_ne!(edited, claims);
    let edited = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(edited),
        parts[2]
    );

    // alg: none with the original claims and no signature.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );

    for bad in [one_char, edited, none, "garbage".to_string()] {
        let r = env.as_token(&bad, &["whoami"]);
        assert_eq!(r.code, 3, "{bad}");
        assert_eq!(r.stderr, INVALID, "{bad}");
        assert_eq!(r.stdout, "");
    }
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let env = Env::new().with("ZENCRYPT_JWT_SECRET", &"a".repeat(40));
    env.signup("alice");
    let token = env.token("alice");
    env.as_token(&token, &["whoami"]).ok();
    let r = env.run_with(
        &["whoami"],
        b"",
        &[
            ("ZENCRYPT_TOKEN", &token),
            ("ZENCRYPT_JWT_SECRET", &"b".repeat(40)),
        ],
    );
    assert_eq!(r.code, 3);
    assert_eq!(r.stderr, INVALID);
}

#[test]
fn short_jwt_secret_is_refused() {
    let env = Env::new().with("ZENCRYPT_JWT_SECRET", "too-short");
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: ZENCRYPT_JWT_SECRET is too short: it must be at least 32 bytes\n"
    );
}

#[test]
fn sessions_expire() {
    let env = Env::new();
    env.signup("bob");
    let bob = env.token("bob");
    env.signup("alice");
    env.run(
        &[
            "login",
            "--username",
            "alice",
            "--password-stdin",
            "--ttl",
            "5s",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    // Sessions whose copy of the user key is there, ending before (`<=`) or after now.
    let holding = |ended: bool| -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let op = if ended { "<=" } else { ">" };
        env.column::<i64>(&format!(
            "SELECT count(*) FROM sessions WHERE expires_at {op} {now} \
             AND length(wrapped_user_key) > 0"
        ))[0]
    };
    // bob's session and alice's short one hold a key copy while they last.
    assert_eq!(holding(false), 2);
    std::thread::sleep(std::time::Duration::from_millis(5200));
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: session has expired\nhint: run `zencrypt login`\n"
    );
    // The expired session's copy of the user key is wiped by the next write anyone makes
    // (whoami's refusal may already have been one), and its row stays.
    env.as_token(&bob, &["key", "create", "k"]).ok();
    assert_eq!(holding(true), 0);
    assert_eq!(holding(false), 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(
        env.column::<i64>(&format!(
            "SELECT count(*) FROM sessions WHERE expires_at <= {now}"
        )),
        vec![1]
    );
    let bad = env.run(&["login", "--username", "alice", "--ttl", "forever"], b"");
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "error: invalid duration 'forever' (use e.g. 90d, 12h, 30m, 1h30m, 45s)\n"
    );
}

#[test]
fn print_token_prints_only_the_token_and_it_works_alone() {
    let env = Env::new();
    env.signup("alice");
    let r = env.run(
        &[
            "login",
            "--username",
            "alice",
            "--password-stdin",
            "--print-token",
            "-q",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    r.ok();
    assert_eq!(r.stderr, "");
    let token = r.stdout.trim_end_matches('\n');
    assert_eq!(token.split('.').count(), 3);
    assert!(!token.contains(char::is_whitespace));
    for e in std::fs::read_dir(env.sessions_dir()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    assert_eq!(env.run(&["whoami"], b"").code, 3);
    assert_eq!(
        env.as_token(token, &["whoami", "--json"]).json()["username"],
        "alice"
    );

    let j = env.run(
        &[
            "login",
            "--username",
            "alice",
            "--password-stdin",
            "--print-token",
            "--json",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    j.ok();
    let doc = j.json();
    assert_eq!(doc["token"].as_str().unwrap().split('.').count(), 3);
    assert_eq!(doc["username"], "alice");
}

// About the file: it checks the modes of the database file and the data directory.
#[test]
fn files_and_directories_are_private() {
    let env = Env::sqlite();
    env.signup("alice");
    assert_eq!(mode(&env.db()), 0o600);
    assert_eq!(mode(&env.data_dir()), 0o700);
    assert_eq!(mode(&env.data_dir().join("jwt.secret")), 0o600);
    assert_eq!(mode(&env.data_dir().join("audit.key")), 0o600);
    assert_eq!(mode(&env.sessions_dir()), 0o700);
    assert_eq!(mode(&env.session_file()), 0o600);
}

#[test]
fn one_session_file_per_database() {
    let env = Env::new();
    let other = env.dir.path().join("other.db");
    let other = other.to_str().unwrap();
    env.signup("alice");
    env.run(
        &[
            "--db",
            other,
            "signup",
            "--username",
            "zed",
            "--password-stdin",
        ],
        format!("{}\n", pw("zed")).as_bytes(),
    )
    .ok();
    assert_eq!(
        env.run(&["whoami", "--json"], b"").json()["username"],
        "alice"
    );
    assert_eq!(
        env.run(&["--db", other, "whoami", "--json"], b"").json()["username"],
        "zed"
    );
}

#[test]
fn logout_all_ends_every_session() {
    let env = Env::new();
    env.signup("alice");
    let t1 = env.token("alice");
    let t2 = env.token("alice");
    let r = env.run(&["logout", "--all", "--json"], b"");
    r.ok();
    assert_eq!(r.json()["revoked_sessions"], 3);
    for t in [t1, t2] {
        assert_eq!(env.as_token(&t, &["whoami"]).stderr, REVOKED);
    }
}

#[test]
fn a_login_ends_the_session_of_a_token_file_others_could_read() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.signup("alice");
    let file = env.session_file();
    let exposed = std::fs::read_to_string(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = env.run(&["whoami"], b"");
    assert_eq!(refused.code, 2);
    env.login("alice");
    // The exposed token no longer works, and the new file is private again.
    let old = env.as_token(exposed.trim(), &["whoami"]);
    assert_eq!(old.code, 3);
    assert_eq!(
        old.stderr,
        "error: session has been revoked\nhint: run `zencrypt login`\n"
    );
    assert_eq!(mode(&file), 0o600);
    env.run(&["whoami"], b"").ok();
}
