//! The real shell in a pseudo-terminal: sign up, menus, Ctrl-C and Ctrl-D.

use std::time::Duration;

use crate::common::*;
use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Session};

fn spawn(env: &Env) -> expectrl::session::OsSession {
    let mut cmd = env.command();
    cmd.env("TERM", "dumb");
    let mut s = Session::spawn(cmd).expect("spawn zencrypt in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s
}

fn exit_code(s: &expectrl::session::OsSession) -> i32 {
    match s.get_process().wait().unwrap() {
        WaitStatus::Exited(_, code) => code,
        other => panic!("unexpected status {other:?}"),
    }
}

#[test]
fn sign_up_through_the_shell_and_exit_with_zero() {
    let env = Env::new();
    let mut s = spawn(&env);
    s.expect("1) Log in").unwrap();
    s.expect("2) Sign up").unwrap();
    s.expect("0) Exit").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("2\r").unwrap();
    s.expect("Username: ").unwrap();
    s.send("alice\r").unwrap();
    s.expect("Choose a password: ").unwrap();
    s.send("alice-password\r").unwrap();
    let typed = s.expect("Repeat it: ").unwrap();
    assert!(!String::from_utf8_lossy(typed.before()).contains("alice-password"));
    s.send("alice-password\r").unwrap();
    let typed = s
        .expect("Welcome, alice. Your account has the admin role.")
        .unwrap();
    assert!(!String::from_utf8_lossy(typed.before()).contains("alice-password"));
    s.expect("Your recovery key:").unwrap();
    s.expect("administrators included.").unwrap();
    s.expect("Press Enter once it is stored: ").unwrap();
    s.send("\r").unwrap();
    s.expect("zencrypt: alice (admin)").unwrap();
    s.expect("7) Account").unwrap();
    s.expect("8) Administration").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    // The password was never echoed, and the account works from one-shot commands.
    let who = env.run(&["whoami", "--json"], b"");
    who.ok();
    assert_eq!(who.json()["username"], "alice");
    assert_eq!(who.json()["role"], "admin");
}

#[test]
fn ctrl_c_at_a_prompt_returns_to_the_menu_and_ctrl_d_exits() {
    let env = Env::new();
    env.signup("alice");
    let mut s = spawn(&env);
    // A valid saved session goes straight to the main menu.
    s.expect("zencrypt: alice (admin)").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("7\r").unwrap();
    s.expect("3) Log out").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("2\r").unwrap();
    s.expect("Current password: ").unwrap();
    s.send("half-typed").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send("\x03").unwrap();
    s.expect("Cancelled.").unwrap();
    s.expect("1) Who am I").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("1\r").unwrap();
    s.expect("username: alice").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("zencrypt: alice (admin)").unwrap();
    s.expect("Choose: ").unwrap();
    // Ctrl-D is a key only once the prompt reads keys (raw mode); typed earlier, the
    // terminal's line discipline would consume it as end-of-line.
    std::thread::sleep(Duration::from_millis(300));
    s.send("\x04").unwrap();
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    // Nothing changed: the password is the same.
    env.login("alice");
}

#[test]
fn a_plain_user_does_not_see_administration() {
    let env = Env::new();
    env.signup("alice");
    env.signup("bob");
    let mut s = spawn(&env);
    s.expect("zencrypt: bob (user)").unwrap();
    let menu = s.expect("Choose: ").unwrap();
    let text = String::from_utf8_lossy(menu.before()).into_owned();
    assert!(text.contains("7) Account"), "{text}");
    assert!(!text.contains("Administration"), "{text}");
    s.send("8\r").unwrap();
    s.expect("Please type one of 1, 2, 3, 4, 5, 6, 7, 0.")
        .unwrap();
    s.send("0\r").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
}

#[test]
fn create_a_key_and_encrypt_a_line_of_text_in_the_shell() {
    let env = Env::new();
    env.signup("alice");
    let mut s = spawn(&env);
    s.expect("1) Keys").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("1\r").unwrap();
    s.expect("2) Create a key").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("2\r").unwrap();
    s.expect("Key name: ").unwrap();
    s.send("notes\r").unwrap();
    s.expect("Rotate every").unwrap();
    s.send("\r").unwrap();
    s.expect("Expires in").unwrap();
    s.send("\r").unwrap();
    s.expect("Allow exporting the key material? [y/N] ")
        .unwrap();
    s.send("n\r").unwrap();
    s.expect("Created key notes (version 1).").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("3) Encrypt / decrypt").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("3\r").unwrap();
    s.expect("1) Encrypt text").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("1\r").unwrap();
    s.expect("Encrypt with which key").unwrap();
    s.send("\r").unwrap(); // the only key is preselected
    s.expect("Text (hidden): ").unwrap();
    s.send("meet me at noon\r").unwrap();
    let typed = s.expect("-----BEGIN ZENCRYPT MESSAGE-----").unwrap();
    assert!(!String::from_utf8_lossy(typed.before()).contains("meet me"));
    let body = s.expect("-----END ZENCRYPT MESSAGE-----").unwrap();
    let armored = format!(
        "-----BEGIN ZENCRYPT MESSAGE-----{}-----END ZENCRYPT MESSAGE-----\n",
        String::from_utf8_lossy(body.before()).replace('\r', "")
    );
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    // What the shell printed decrypts with a one-shot command.
    let plain = env.run(&["decrypt"], armored.as_bytes());
    plain.ok();
    assert_eq!(plain.stdout, "meet me at noon");
}

#[test]
fn binary_ciphertext_is_never_written_to_a_terminal() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    let mut cmd = env.command();
    cmd.env("TERM", "dumb").args(["encrypt", "--key", "k"]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("error: refusing to write binary ciphertext to a terminal")
        .unwrap();
    s.expect("hint: use -o FILE, pipe the output, or add --armor for text")
        .unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 2);
}

#[test]
fn hash_at_a_terminal_reads_a_hidden_line() {
    let env = Env::new();
    let piped = env.run(&["hash", "--algo", "sha256"], b"typed-secret-42");
    piped.ok();
    let mut cmd = env.command();
    cmd.env("TERM", "dumb").args(["hash", "--algo", "sha256"]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("Input to hash (hidden): ").unwrap();
    s.send("typed-secret-42\r").unwrap();
    // No echo, and the same hash as the bytes without a newline.
    let out = s.expect(piped.stdout.trim_end()).unwrap();
    assert_eq!(String::from_utf8_lossy(out.before()).trim(), "");
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    // hash verify asks the same way.
    let mut cmd = env.command();
    cmd.env("TERM", "dumb")
        .args(["hash", "verify", piped.stdout.trim_end()]);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("Input to hash (hidden): ").unwrap();
    s.send("not-the-secret\r").unwrap();
    s.expect("error: the input does not match the hash")
        .unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 7);
}

#[test]
fn store_a_value_in_the_shell_and_read_it_with_data_get() {
    let env = Env::new();
    env.signup("alice");
    let mut s = spawn(&env);
    s.expect("2) Encrypted data").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("2\r").unwrap();
    s.expect("1) Store a value").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("1\r").unwrap();
    s.expect("Name (optional): ").unwrap();
    s.send("api-key\r").unwrap();
    s.expect("Value (hidden): ").unwrap();
    s.send("sk-live-123456\r").unwrap();
    let typed = s.expect("Expires in").unwrap();
    assert!(
        !String::from_utf8_lossy(typed.before()).contains("sk-live"),
        "the value is not echoed"
    );
    s.send("\r").unwrap();
    s.expect("[y/N] ").unwrap();
    s.send("\r").unwrap();
    s.expect("Stored. Token: zt_").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    let got = env.run(&["data", "get", "api-key"], b"");
    got.ok();
    assert_eq!(got.stdout, "sk-live-123456");
}

/// Sends `keys` once the shell shows `prompt`.
#[track_caller]
fn answer(s: &mut expectrl::session::OsSession, prompt: &str, keys: &str) {
    if let Err(e) = s.expect(prompt) {
        let rest = s
            .expect(Eof)
            .map(|c| String::from_utf8_lossy(c.before()).into_owned());
        panic!("waiting for {prompt:?}: {e}; then read {rest:?}");
    }
    s.send(keys).unwrap();
}

#[test]
fn every_main_menu_entry_has_a_happy_and_an_error_path() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    let mut s = spawn(&env);
    // 1) Keys: list; an invalid name.
    answer(&mut s, "Choose: ", "1\r");
    answer(&mut s, "Choose: ", "1\r");
    s.expect("NAME  VERSION").unwrap();
    answer(&mut s, "Choose: ", "2\r");
    answer(&mut s, "Key name: ", "bad name\r");
    s.expect("error: invalid key name 'bad name'").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 2) Encrypted data: empty list; nothing to retrieve.
    answer(&mut s, "Choose: ", "2\r");
    answer(&mut s, "Choose: ", "3\r");
    s.expect("No records yet.").unwrap();
    answer(&mut s, "Choose: ", "2\r");
    s.expect("error: no record to choose from").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 3) Encrypt / decrypt: hash text; a missing file.
    answer(&mut s, "Choose: ", "3\r");
    answer(&mut s, "Choose: ", "6\r");
    answer(&mut s, "Hash what", "\r");
    answer(&mut s, "Text (hidden): ", "abc\r");
    s.expect("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        .unwrap();
    answer(&mut s, "Choose: ", "4\r");
    answer(&mut s, "File: ", "/nonexistent/file.zc\r");
    s.expect("error: /nonexistent/file.zc is not a file")
        .unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 4) Usage log: a bad duration is explained and asked again.
    answer(&mut s, "Choose: ", "4\r");
    answer(&mut s, "Choose: ", "1\r");
    answer(&mut s, "Since", "someday\r");
    s.expect("invalid duration 'someday'").unwrap();
    answer(&mut s, "Since", "\r");
    s.expect("No usage recorded in that period.").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 5) Audit records: verify; an unknown choice.
    answer(&mut s, "Choose: ", "5\r");
    answer(&mut s, "Choose: ", "3\r");
    s.expect("audit chain intact: ").unwrap();
    answer(&mut s, "Choose: ", "9\r");
    s.expect("Please type one of 1, 2, 3, 4, 0.").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 6) Expiry & rotation: check; nothing due.
    answer(&mut s, "Choose: ", "6\r");
    answer(&mut s, "Choose: ", "1\r");
    s.expect("All keys are fine").unwrap();
    answer(&mut s, "Choose: ", "2\r");
    s.expect("No key is due for rotation.").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 7) Account: who am I; a wrong current password.
    answer(&mut s, "Choose: ", "7\r");
    answer(&mut s, "Choose: ", "1\r");
    s.expect("username: alice").unwrap();
    answer(&mut s, "Choose: ", "2\r");
    answer(&mut s, "Current password: ", "not-my-password\r");
    answer(&mut s, "New password: ", "another-password\r");
    answer(&mut s, "Repeat it: ", "another-password\r");
    s.expect("error: invalid password").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    // 8) Administration: list; the last admin cannot be disabled.
    answer(&mut s, "Choose: ", "8\r");
    answer(&mut s, "Choose: ", "1\r");
    s.expect("USERNAME").unwrap();
    answer(&mut s, "Choose: ", "4\r");
    answer(&mut s, "Disable which user", "\r");
    answer(&mut s, "[y/N] ", "y\r");
    s.expect("error: cannot disable 'alice': it is the last active admin")
        .unwrap();
    answer(&mut s, "Choose: ", "0\r");
    answer(&mut s, "Choose: ", "0\r");
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    env.login("alice");
}

// About the file: it checks that the shell creates the database file only at sign-up.
#[test]
fn the_shell_creates_a_database_only_by_signing_up() {
    let env = Env::sqlite();
    let mut s = spawn(&env);
    s.expect("Choose: ").unwrap();
    s.send("1\r").unwrap();
    s.expect(format!("error: no database at {}", env.db().display()).as_str())
        .unwrap();
    s.expect("hint: choose 2 to sign up and create it").unwrap();
    s.expect("Choose: ").unwrap();
    s.send("0\r").unwrap();
    s.expect("Bye.").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    assert!(!env.data_dir().exists(), "nothing was created");
}

#[test]
fn the_shell_ignores_ctrl_c_but_stops_on_sigterm() {
    let env = Env::new();
    env.signup("alice");
    let mut s = spawn(&env);
    s.expect("Choose: ").unwrap();
    let pid = s.get_process().pid().to_string();
    let kill = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    kill("-INT");
    // Still there: the menu answers.
    s.send("9\r").unwrap();
    s.expect("Please type one of").unwrap();
    s.expect("Choose: ").unwrap();
    kill("-TERM");
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 143);
}

/// Runs a one-shot command in a pseudo-terminal; returns what it printed and its code.
fn run_in_pty(env: &Env, args: &[&str]) -> (String, i32) {
    let mut cmd = env.command();
    cmd.env("TERM", "dumb").args(args);
    let mut s = Session::spawn(cmd).unwrap();
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    let seen = s.expect(Eof).unwrap();
    let text = String::from_utf8_lossy(seen.get(0).unwrap_or_default()).into_owned();
    (text, exit_code(&s))
}

#[test]
fn binary_plaintext_is_never_written_to_a_terminal() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "bin"], b"\x00\x01\x1b[2J\xff")
        .ok();
    env.run(&["data", "put", "--name", "txt"], b"caf\xc3\xa9 ok")
        .ok();
    let refused = "error: refusing to write binary plaintext to a terminal\r\nhint: use -o FILE or pipe the output\r\n";
    let (text, code) = run_in_pty(&env, &["data", "get", "bin"]);
    assert_eq!((text.as_str(), code), (refused, 2));
    // Text still prints, with a newline.
    let (text, code) = run_in_pty(&env, &["data", "get", "txt"]);
    assert_eq!((text.as_str(), code), ("café ok\r\n", 0));
    // decrypt: the same rule, and nothing of the binary plaintext shows.
    let dir = env.dir.path();
    for (name, plain) in [
        ("bin.zc", &b"\x00\x01\x1b[2J\xff"[..]),
        ("txt.zc", b"plain words\n"),
    ] {
        let path = dir.join(name);
        env.run(
            &["encrypt", "--key", "default", "-o", path.to_str().unwrap()],
            plain,
        )
        .ok();
    }
    let (text, code) = run_in_pty(
        &env,
        &["decrypt", "-q", dir.join("bin.zc").to_str().unwrap()],
    );
    assert_eq!((text.as_str(), code), (refused, 2));
    let (text, code) = run_in_pty(
        &env,
        &["decrypt", "-q", dir.join("txt.zc").to_str().unwrap()],
    );
    assert_eq!((text.as_str(), code), ("plain words\r\n", 0));
    // -o still takes anything.
    let out = dir.join("bin.out");
    let (_, code) = run_in_pty(&env, &["data", "get", "bin", "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&out).unwrap(), b"\x00\x01\x1b[2J\xff");
}

#[test]
fn commands_reading_a_terminal_stdin_say_how_to_end_it() {
    let env = Env::new();
    env.signup("alice");
    let mut cmd = env.command();
    cmd.env("TERM", "dumb").args(["data", "import"]);
    let mut s = Session::spawn(cmd).expect("spawn zencrypt in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("Reading stdin from the terminal: type or paste, then press Ctrl-D on a new line to end (Ctrl-C cancels).")
        .unwrap();
    s.send("{\"name\":\"typed\",\"value\":\"v\"}\r").unwrap();
    s.send("\x04").unwrap();
    // On a terminal, the count is labelled.
    s.expect("Imported 1 record(s).").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    assert_eq!(env.run(&["data", "get", "typed"], b"").stdout, "v");
}

#[test]
fn data_edit_on_a_terminal_asks_before_replacing_a_record_changed_meanwhile() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "note"], b"one").ok();
    let zbin = env.command().get_program().to_string_lossy().into_owned();
    // The editor does not inherit the audit key; on PostgreSQL this other client has it.
    let audit_key = if env.on_postgres() {
        format!("ZENCRYPT_AUDIT_KEY={PG_AUDIT_KEY} ")
    } else {
        String::new()
    };
    let script = env.dir.path().join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf 'mine' > \"$1\"\nprintf 'theirs' | {audit_key}{zbin} -q data update note\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = env.command();
    cmd.env("TERM", "dumb")
        .env("EDITOR", &script)
        .args(["data", "edit", "note"]);
    let mut s = Session::spawn(cmd).expect("spawn zencrypt in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    s.expect("'note' changed while you edited. Save your edit over it?")
        .unwrap();
    s.send("y\r").unwrap();
    s.expect("Saved 'note' as version 3.").unwrap();
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
    assert_eq!(env.run(&["data", "get", "note"], b"").stdout, "mine");
}

/// Runs one command in a pseudo-terminal of 80 columns and returns what it printed.
fn at_80_columns(env: &Env, args: &[&str]) -> String {
    let inner = env.command();
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("stty rows 24 cols 80 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TERM", "dumb")
        .current_dir(env.dir.path());
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let mut s = Session::spawn(cmd).expect("spawn zencrypt in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    let out = s.expect(Eof).unwrap();
    let mut bytes = out.before().to_vec();
    for m in out.matches() {
        bytes.extend_from_slice(m);
    }
    let text = String::from_utf8_lossy(&bytes).replace("\r\n", "\n");
    assert_eq!(exit_code(&s), 0, "{args:?}: {text}");
    text
}

#[test]
fn every_table_fits_80_columns_and_never_wraps_a_token() {
    let env = Env::new();
    env.signup("alice");
    env.run(
        &[
            "user",
            "add",
            "bob-the-builder-with-a-long-name",
            "--password-stdin",
        ],
        b"temporary-password-1\n",
    )
    .ok();
    env.run(
        &[
            "key",
            "create",
            "a-key-with-quite-a-long-name",
            "--rotate-every",
            "30d",
            "--expires-in",
            "400d",
            "--exportable",
        ],
        b"",
    )
    .ok();
    let short = env
        .run(
            &["data", "put", "--name", "db", "--expires-in", "30d"],
            b"v",
        )
        .ok()
        .stdout
        .trim()
        .to_string();
    let long = env
        .run(
            &[
                "data",
                "put",
                "--name",
                "prod/very/long/path/to/some/database/password",
                "--key",
                "a-key-with-quite-a-long-name",
            ],
            b"v",
        )
        .ok()
        .stdout
        .trim()
        .to_string();
    env.run(&["-q", "data", "update", "db"], b"w").ok();
    for args in [
        &["data", "list"][..],
        &["data", "list", "db"],
        &["data", "history", "db"],
        &["audit", "list"],
        &["key", "list"],
        &["key", "history", "a-key-with-quite-a-long-name"],
        &["user", "list"],
        &["usage", "--by", "key"],
    ] {
        let text = at_80_columns(&env, args);
        assert!(text.lines().count() > 1, "{args:?}: {text}");
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "{args:?}: {} columns: {line}\n{text}",
                line.chars().count()
            );
        }
        if args[0] == "data" && args[1] == "list" {
            assert!(text.lines().any(|l| l.contains(&short)), "{args:?}: {text}");
        }
    }
    // Too narrow for a token and the long name side by side: two lines per record.
    let text = at_80_columns(&env, &["data", "list"]);
    assert!(
        text.contains(&format!(
            "prod/very/long/path/to/some/database/password\n  {long}  v1  "
        )),
        "{text}"
    );
    assert!(
        text.contains("\n  key a-key-with-quite-a-long-name\n"),
        "{text}"
    );
    assert!(text.contains(&format!("db\n  {short}  v2  ")), "{text}");
    // A name and token that fit keep the table, with the update time.
    let text = at_80_columns(&env, &["data", "list", "db"]);
    assert!(text.starts_with("TOKEN"), "{text}");
    assert!(text.contains("UPDATED"), "{text}");
}

#[test]
fn pick_lists_filter_as_you_type() {
    let env = Env::new();
    env.signup("alice");
    for (name, value) in [
        ("alpha", "value-of-alpha"),
        ("prod/db/password", "value-of-prod"),
        ("zulu", "value-of-zulu"),
    ] {
        env.run(&["data", "put", "--name", name], value.as_bytes())
            .ok();
    }
    let mut s = spawn(&env);
    answer(&mut s, "Choose: ", "2\r");
    answer(&mut s, "Choose: ", "2\r");
    s.expect("Retrieve which record (type to filter").unwrap();
    // "pdp" matches only prod/db/password (fuzzy); Enter picks it.
    s.send("pdp").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.send("\r").unwrap();
    // The value of the record "pdp" picked (another record's value would time out here).
    s.expect("value-of-prod").unwrap();
    answer(&mut s, "Choose: ", "0\r");
    answer(&mut s, "Choose: ", "0\r");
    s.expect(Eof).unwrap();
    assert_eq!(exit_code(&s), 0);
}
