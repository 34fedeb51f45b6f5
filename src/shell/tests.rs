//! Menu logic driven by a scripted prompter (no terminal needed).

use super::*;
use crate::ui::prompt::{Scripted, ScriptedPrompter};
use Scripted::{CtrlC, Pick, Text, Yes};

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    session_file: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            db: dir.path().join("z.db"),
            session_file: dir.path().join("sessions/s.token"),
            _dir: dir,
        }
    }

    fn vault(&self) -> Vault {
        use zencrypt_core::config::SignupPolicy;
        use zencrypt_core::crypto::kdf::KdfParams;
        use zencrypt_core::crypto::mac::MacKey;
        use zencrypt_core::vault::Policy;
        let store = zencrypt_sqlite::SqliteStore::open(&self.db).unwrap();
        let policy = Policy {
            kdf: KdfParams {
                m_kib: 64,
                t: 1,
                p: 1,
            },
            signup: SignupPolicy::Open,
            session_ttl: 3600,
            history: 9,
        };
        Vault::with_store(
            Box::new(store),
            &[3u8; 32],
            MacKey::new(vec![4u8; 32]),
            policy,
        )
        .unwrap()
    }

    /// The next shell starts logged in with `token` (as if its session file held it).
    fn resume(&self, token: &str) {
        std::fs::write(&self.session_file, token).unwrap();
    }

    fn run(&self, answers: Vec<Scripted>) -> Vec<String> {
        let mut p = ScriptedPrompter::new(answers);
        let mut shell = Shell::new(self.vault(), self.session_file.clone(), None);
        shell.run(&mut p).unwrap();
        p.transcript
    }
}

fn t(s: &str) -> Scripted {
    Text(s.to_string())
}

fn signup(user: &str) -> Vec<Scripted> {
    // The last answer is Enter, once the recovery key is stored.
    vec![t("2"), t(user), t("password-123"), t("password-123"), t("")]
}

fn has(transcript: &[String], line: &str) -> bool {
    transcript.iter().any(|l| l == line)
}

#[test]
fn sign_up_then_exit_with_zero() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.push(t("0"));
    let out = f.run(script);
    assert!(has(
        &out,
        "Welcome, alice. Your account has the admin role."
    ));
    assert!(has(&out, "zencrypt: alice (admin)"));
    assert!(has(
        &out,
        "7) Account            who am I, change password, log out"
    ));
    assert!(has(&out, "8) Administration     users and roles"));
    assert_eq!(out.last().unwrap(), "Bye.");
    assert!(f.session_file.exists(), "the login is saved");
}

#[test]
fn a_too_short_password_is_asked_again() {
    let f = Fixture::new();
    let out = f.run(vec![
        t("2"),
        t("alice"),
        t("short"),
        t("password-123"),
        t("password-124"),
        t("password-123"),
        t("password-123"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "password is too short: use at least 8 characters; try again."
    ));
    assert!(has(&out, "The passwords do not match; try again."));
    assert!(has(&out, "zencrypt: alice (admin)"));
}

#[test]
fn a_valid_session_goes_straight_to_the_main_menu() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![t("0")]);
    assert!(has(&out, "zencrypt: alice (admin)"));
    assert!(!has(&out, "1) Log in"));
}

#[test]
fn end_of_input_exits_instead_of_spinning() {
    let f = Fixture::new();
    let out = f.run(vec![]);
    assert_eq!(out.iter().filter(|l| *l == "? Choose: ").count(), 1);
    assert_eq!(out.last().unwrap(), "Bye.");
}

#[test]
fn ctrl_c_cancels_back_to_the_menu() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![t("7"), t("2"), CtrlC, t("0"), t("0")]);
    let cancelled = out.iter().position(|l| l == "Cancelled.").unwrap();
    assert_eq!(
        out[cancelled + 2],
        "Account",
        "the Account menu is shown again"
    );
}

#[test]
fn a_wrong_choice_is_explained() {
    let f = Fixture::new();
    let out = f.run(vec![t("5"), t("x"), t("0")]);
    assert_eq!(
        out.iter()
            .filter(|l| *l == "Please type one of 1, 2, 3, 0.")
            .count(),
        2
    );
}

#[test]
fn a_plain_user_never_sees_administration() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let mut script = vec![t("7"), t("3")]; // log out, back at the start menu
    script.extend(signup("bob"));
    script.extend([t("8"), t("0")]);
    let out = f.run(script);
    assert!(has(&out, "Logged out alice."));
    assert!(has(&out, "zencrypt: bob (user)"));
    assert!(
        !out.iter()
            .skip_while(|l| *l != "zencrypt: bob (user)")
            .any(|l| l.starts_with("8) "))
    );
    assert!(has(&out, "Please type one of 1, 2, 3, 4, 5, 6, 7, 0."));
}

#[test]
fn wrong_login_shows_the_error_and_stays() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![t("7"), t("3"), t("0")]);
    // A wrong password is asked again, the username kept; Ctrl-C goes back.
    let out = f.run(vec![t("1"), t("alice"), t("wrong-password"), CtrlC, t("0")]);
    assert!(has(
        &out,
        "error: invalid username or password; try again (2 left), or Ctrl-C to go back"
    ));
    assert_eq!(
        out.iter().filter(|l| l.contains("Username: ")).count(),
        1,
        "{out:#?}"
    );
    assert_eq!(out.last().unwrap(), "Bye.");
    // The second try logs in.
    let out = f.run(vec![
        t("1"),
        t("alice"),
        t("wrong-password"),
        t("password-123"),
        t("0"),
    ]);
    assert!(
        out.iter().any(|l| l == "zencrypt: alice (admin)"),
        "{out:#?}"
    );
    // Three wrong tries end at the start menu.
    f.run(vec![t("7"), t("3"), t("0")]);
    let out = f.run(vec![t("1"), t("alice"), t("a"), t("b"), t("c"), t("0")]);
    assert!(has(&out, "error: invalid username or password"), "{out:#?}");
    assert_eq!(out.last().unwrap(), "Bye.");
}

#[test]
fn a_taken_key_name_is_refused_before_the_other_questions() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("1"),
        t("2"),
        t("k"),
        t(""),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    let out = f.run(vec![t("1"), t("2"), t("k"), t("0"), t("0")]);
    assert!(
        has(&out, "error: key 'k' already exists; choose another name"),
        "{out:#?}"
    );
    assert!(!out.iter().any(|l| l.contains("Rotate every")), "{out:#?}");
}

#[test]
fn administration_changes_a_role_and_disables_a_user() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![t("7"), t("3"), t("0")]);
    f.run(signup("bob"));
    f.run(vec![t("7"), t("3"), t("0")]);
    let mut script = vec![t("1"), t("alice"), t("password-123")];
    // Role: pick bob (index 1 in name order), then auditor (index 1).
    script.extend([t("8"), t("3"), Pick(1), Pick(1)]);
    // Disable: only active users are offered; bob is index 1; confirm.
    script.extend([t("4"), Pick(1), Yes(true)]);
    // The last admin cannot be disabled: the error is shown, the menu stays.
    script.extend([t("4"), Pick(0), Yes(true)]);
    script.extend([t("1"), t("0"), t("0")]);
    let out = f.run(script);
    assert!(has(&out, "bob is now auditor (was user)."));
    assert!(has(&out, "Disabled bob; 0 session(s) ended."));
    assert!(has(
        &out,
        "error: cannot disable 'alice': it is the last active admin"
    ));
    assert!(
        out.iter()
            .any(|l| l.contains("bob       auditor  disabled"))
    );
}

#[test]
fn change_password_and_log_back_in() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![
        t("7"),
        t("2"),
        t("password-123"),
        t("new-password-456"),
        t("new-password-456"),
        t("3"),
        t("1"),
        t("alice"),
        t("new-password-456"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "Password changed; 0 other session(s) were logged out."
    ));
    assert!(has(&out, "Logged out alice."));
    assert_eq!(
        out.iter()
            .filter(|l| *l == "zencrypt: alice (admin)")
            .count(),
        2
    );
}

#[test]
fn keys_menu_creates_lists_and_rotates() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![
        t("1"),
        t("2"),
        t("k1"),
        t("90d"),
        t(""),
        Yes(false),
        t("4"),
        Pick(0),
        Yes(false),
        t("1"),
        t("0"),
        t("0"),
    ]);
    assert!(has(&out, "Created key k1 (version 1)."));
    assert!(has(&out, "Rotated k1 to version 2; 0 record(s) rewrapped."));
    assert!(
        out.iter()
            .any(|l| l.contains("k1    2        active  every 90d")),
        "{out:#?}"
    );
}

#[test]
fn encrypt_and_decrypt_text_through_the_menu() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("1"),
        t("2"),
        t("k"),
        t(""),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    let out = f.run(vec![
        t("3"),
        t("1"),
        Pick(0),
        t("attack at dawn"),
        t("0"),
        t("0"),
    ]);
    let begin = out
        .iter()
        .position(|l| l.starts_with("-----BEGIN ZENCRYPT MESSAGE-----"))
        .expect("armored output shown");
    let armored: Vec<Scripted> = out[begin].lines().map(t).collect();
    let mut script = vec![t("3"), t("2")];
    script.extend(armored);
    script.extend([t("0"), t("0")]);
    let out = f.run(script);
    assert!(has(&out, "attack at dawn"));
}

#[test]
fn expiry_menu_reports_and_rotates_due_keys() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("1"),
        t("2"),
        t("soon"),
        t("1s"),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = f.run(vec![
        t("6"),
        t("1"),
        t("2"),
        Yes(true),
        t("1"),
        t("0"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "zencrypt: alice (admin)\nwarning: rotation due: soon (see 6)"
    ));
    assert!(has(&out, "rotation due: soon"));
    assert!(has(&out, "Rotated soon to version 2."));
    assert!(has(
        &out,
        "All keys are fine: none due for rotation, expired or near the encryption limit."
    ));
}

#[test]
fn an_error_in_a_submenu_is_shown_and_the_submenu_stays() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![t("1"), t("4"), t("0"), t("0")]);
    assert!(has(&out, "error: no key to choose from; create one first"));
    assert_eq!(out.iter().filter(|l| *l == "Keys").count(), 2);
}

#[test]
fn data_menu_stores_retrieves_deletes_and_restores() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let out = f.run(vec![
        t("2"),
        t("1"),
        t("wifi"),
        t("hunter2-wifi"),
        t(""),
        Yes(false),
        t("2"),
        Pick(0),
        t("5"),
        Pick(0),
        Yes(true),
        t("2"),
        t("6"),
        Pick(0),
        t("3"),
        t("0"),
        t("0"),
    ]);
    assert!(
        out.iter().any(|l| l.starts_with("Stored. Token: zt_")),
        "{out:#?}"
    );
    assert!(has(&out, "hunter2-wifi"));
    assert!(out.iter().any(|l| l.starts_with("Deleted wifi (zt_")));
    assert!(has(&out, "error: no record to choose from"));
    assert!(out.iter().any(|l| l.starts_with("Restored wifi (zt_")));
    assert!(
        out.iter()
            .any(|l| l.contains(" wifi  1 ") && l.contains("live")),
        "{out:#?}"
    );
}

#[test]
fn usage_and_audit_menus_show_reports_and_errors() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("1"),
        t("2"),
        t("k"),
        t(""),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    f.run(vec![t("3"), t("1"), Pick(0), t("hello"), t("0"), t("0")]);
    let out = f.run(vec![
        t("4"),
        t("1"),
        t("soon"),
        t("7d"),
        t("0"),
        t("5"),
        t("1"),
        t("3"),
        t("2"),
        t(""),
        t("key."),
        Pick(0),
        t(""),
        t("0"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "invalid duration 'soon' (use e.g. 90d, 12h, 30m, 1h30m, 45s)"
    ));
    assert!(
        out.iter()
            .any(|l| l.starts_with("OP ") && l.contains("encrypt")),
        "{out:#?}"
    );
    assert!(out.iter().any(|l| l.starts_with("audit chain intact: ")));
    assert!(out.iter().any(|l| l.contains("key.create")), "{out:#?}");
}

#[test]
fn a_plain_user_searching_audit_records_sees_only_their_own() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![t("7"), t("3"), t("0")]);
    f.run(signup("bob"));
    let out = f.run(vec![t("5"), t("3"), t("1"), t("0"), t("0")]);
    assert!(has(
        &out,
        "error: permission denied: audit.verify requires the auditor role"
    ));
    let table: Vec<&String> = out.iter().filter(|l| l.starts_with("SEQ")).collect();
    assert_eq!(table.len(), 1);
    assert!(
        !out.iter()
            .any(|l| l.contains("alice") && l.contains("auth.signup"))
    );
}

#[test]
fn an_account_an_admin_made_chooses_its_password_first() {
    let f = Fixture::new();
    {
        let mut v = f.vault();
        let pw = secrecy::SecretString::from("password-123");
        let token = v.signup("alice", &pw, None).unwrap().token;
        let admin = v.authenticate(&token).unwrap();
        let chosen = secrecy::SecretString::from("admin-chose-1");
        v.add_user(&admin, "bob", zencrypt_core::model::Role::User, &chosen)
            .unwrap();
    }
    let out = f.run(vec![
        t("1"),
        t("bob"),
        t("admin-chose-1"),
        t("admin-chose-1"),
        t("bobs-own-pass"),
        t("bobs-own-pass"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "An administrator chose this account's password; choose your own now."
    ));
    assert!(has(
        &out,
        "Password changed; 0 other session(s) were logged out."
    ));
    assert!(has(&out, "zencrypt: bob (user)"));
}

#[test]
fn purging_for_good_asks_once_more() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.extend([
        t("2"),
        t("1"),
        t("old"),
        t("old-value"),
        t(""),
        Yes(false),
        t("5"),
        Pick(0),
        Yes(true),
        // Purge: not expired, deleted yes, then the last word: no.
        t("7"),
        Yes(false),
        Yes(true),
        Yes(false),
        // Again, and yes.
        t("7"),
        Yes(false),
        Yes(true),
        Yes(true),
        t("0"),
        t("0"),
    ]);
    let out = f.run(script);
    let asked: Vec<_> = out
        .iter()
        .filter(|l| l.as_str() == "? Wipe them for good? This cannot be undone.")
        .collect();
    assert_eq!(asked.len(), 2, "{out:#?}");
    let cancelled = out
        .iter()
        .position(|l| l == "Cancelled.")
        .expect("cancelled");
    let purged = out
        .iter()
        .position(|l| l == "Purged 1 record(s).")
        .expect("purged");
    assert!(cancelled < purged, "{out:#?}");
}

#[test]
fn data_menu_generates_and_stores_a_secret_it_never_shows() {
    let f = Fixture::new();
    f.run(signup("alice"));
    // A bad name is refused at once, before the other questions.
    let out = f.run(vec![t("2"), t("11"), t("bad name"), t("0"), t("0")]);
    assert!(
        out.iter()
            .any(|l| l.starts_with("error: invalid record name 'bad name'")),
        "{out:#?}"
    );
    assert!(!out.iter().any(|l| l.starts_with("Generate")), "{out:#?}");
    let out = f.run(vec![
        t("2"),
        t("11"),
        t("prod/wifi"),
        Pick(2),
        t("0"),
        t("0"),
    ]);
    let line = out
        .iter()
        .find(|l| l.starts_with("Stored a generated 6-word passphrase (77 bits). Token: zt_"))
        .unwrap_or_else(|| panic!("{out:#?}"));
    let token = line.rsplit(' ').next().unwrap();
    let mut vault = f.vault();
    let token_file = std::fs::read_to_string(&f.session_file).unwrap();
    let session = vault
        .authenticate(&SecretString::from(token_file.trim().to_string()))
        .unwrap();
    let got = vault
        .data_get(&session, &["prod/wifi".to_string()], None)
        .unwrap();
    let (info, value) = &got.records[0];
    assert_eq!(info.token, token);
    let words: Vec<&str> = std::str::from_utf8(value).unwrap().split('-').collect();
    assert_eq!(words.len(), 6);
    assert!(
        !out.iter()
            .any(|l| l.contains(words[0]) && l.contains(words[1]))
    );
}

#[test]
fn data_menu_edits_a_value_in_the_editor() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("2"),
        t("1"),
        t("note"),
        t("one"),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    let script = f._dir.path().join("editor.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf 'two\\n' > \"$1\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let editor = crate::ui::edit::Editor {
        command: Some(script.clone().into_os_string()),
        runtime_dir: None,
    };
    let mut p = ScriptedPrompter::new(vec![
        t("2"),
        t("12"),
        Pick(0),
        t("12"),
        Pick(0),
        t("0"),
        t("0"),
    ]);
    let mut shell = Shell::new(f.vault(), f.session_file.clone(), None).with_editor(editor);
    shell.run(&mut p).unwrap();
    let out = p.transcript;
    assert!(
        out.iter()
            .any(|l| l.starts_with("Saved note (zt_") && l.ends_with(") as version 2.")),
        "{out:#?}"
    );
    // The second edit writes the same text: nothing to save.
    assert!(has(&out, "No change: version 2 kept."), "{out:#?}");
}

#[test]
fn data_menu_shows_history_and_rolls_back() {
    let f = Fixture::new();
    f.run(signup("alice"));
    let first = f.run(vec![
        t("2"),
        t("1"),
        t("note"),
        t("one"),
        t(""),
        Yes(false),
        t("4"),
        Pick(0),
        t("two"),
        t("0"),
        t("0"),
    ]);
    assert!(
        first.iter().any(|l| l.ends_with("to version 2.")),
        "{first:#?}"
    );
    let out = f.run(vec![
        t("2"),
        t("14"),
        Pick(0),
        t("1"),
        t("2"),
        Pick(0),
        t("0"),
        t("0"),
    ]);
    assert!(
        out.iter().any(|l| l.starts_with("VERSION  WRITTEN")
            && l.contains("\n2        ")
            && l.contains("  current\n1        ")),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l.starts_with("Rolled note (zt_")
            && l.ends_with(") back to the value of version 1, stored as version 3.")),
        "{out:#?}"
    );
    assert!(has(&out, "one"), "{out:#?}");
}

#[test]
fn every_menu_line_fits_80_columns() {
    let f = Fixture::new();
    f.run(signup("alice"));
    // Every submenu of an admin, each left at once.
    let mut script = Vec::new();
    for n in 1..=8 {
        script.push(t(&n.to_string()));
        script.push(t("0"));
    }
    script.push(t("0"));
    let out = f.run(script);
    let menu_lines: Vec<&String> = out
        .iter()
        .filter(|l| l.len() > 2 && l.as_bytes()[..3].contains(&b')'))
        .collect();
    assert!(menu_lines.len() > 40, "{out:#?}");
    for l in out.iter().flat_map(|l| l.lines()) {
        assert!(
            l.chars().count() <= 80,
            "{} columns: {l}",
            l.chars().count()
        );
    }
}

#[test]
fn a_taken_record_name_is_refused_before_the_value_is_asked() {
    let f = Fixture::new();
    f.run(signup("alice"));
    f.run(vec![
        t("2"),
        t("1"),
        t("wifi"),
        t("v"),
        t(""),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    let out = f.run(vec![t("2"), t("1"), t("wifi"), t("0"), t("0")]);
    assert!(
        has(&out, "error: a live record named 'wifi' already exists"),
        "{out:#?}"
    );
    assert!(
        !out.iter().any(|l| l.contains("Value (hidden)")),
        "{out:#?}"
    );
    let out = f.run(vec![t("2"), t("11"), t("wifi"), t("0"), t("0")]);
    assert!(
        has(&out, "error: a live record named 'wifi' already exists"),
        "{out:#?}"
    );
}

/// The recovery key a transcript showed after `lead` (the line after the blank one).
fn shown_key(out: &[String], lead: &str) -> String {
    let at = out
        .iter()
        .rposition(|l| l == lead)
        .unwrap_or_else(|| panic!("{lead:?} in {out:#?}"));
    out[at + 2].trim().to_string()
}

#[test]
fn sign_up_shows_a_recovery_key_that_resets_the_password_from_the_start_menu() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.extend([t("7"), t("3"), t("0"), t("0")]); // log out, exit
    let out = f.run(script);
    let key = shown_key(&out, "Your recovery key:");
    assert_eq!(key.len(), 39, "{key}");
    assert!(has(&out, zencrypt_core::recovery::ADVICE));
    assert!(has(&out, "? Press Enter once it is stored: "));

    let out = f.run(vec![
        t("3"),
        t("alice"),
        t(&key),
        t("brand-new-pw"),
        t("brand-new-pw"),
        t(""),
        t("1"),
        t("alice"),
        t("brand-new-pw"),
        t("0"),
    ]);
    assert!(has(
        &out,
        "Password reset; 0 session(s) were logged out. Log in with the new password (1)."
    ));
    let replacement = shown_key(
        &out,
        "The recovery key you used no longer works; here is its replacement:",
    );
    assert_ne!(replacement, key);
    assert!(has(&out, "zencrypt: alice (admin)"), "{out:#?}");

    // The used key is spent.
    let out = f.run(vec![
        t("7"),
        t("3"),
        t("3"),
        t("alice"),
        t(&key),
        t("another-pw-1"),
        t("another-pw-1"),
        t("0"),
    ]);
    assert!(
        has(&out, "error: invalid username or recovery key"),
        "{out:#?}"
    );
}

#[test]
fn a_new_recovery_key_needs_the_password_and_shows_in_who_am_i() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.extend([
        t("7"),
        t("5"),
        t("wrong-password"),
        t("5"),
        t("password-123"),
        t(""),
        t("1"),
        t("0"),
        t("0"),
    ]);
    let out = f.run(script);
    assert!(has(&out, "error: invalid password"), "{out:#?}");
    let first = shown_key(&out, "Your recovery key:");
    let second = shown_key(&out, "Your new recovery key (the old one no longer works):");
    assert_ne!(first, second);
    assert!(
        out.iter().any(|l| l.starts_with("recovery key: made ")),
        "{out:#?}"
    );
}

#[test]
fn an_admin_adds_a_service_and_its_owner_grants_and_issues_a_token() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.push(t("0"));
    f.run(script);
    {
        let mut vault = f.vault();
        let token_file = std::fs::read_to_string(&f.session_file).unwrap();
        let session = vault
            .authenticate(&SecretString::from(token_file.trim().to_string()))
            .unwrap();
        let opts = zencrypt_core::records::PutOptions {
            name: Some("prod/db".into()),
            ..Default::default()
        };
        vault.data_put(&session, b"s3cret", &opts, None).unwrap();
    }
    let out = f.run(vec![
        // Administration, 7: the service, owned by alice (the only person).
        t("8"),
        t("7"),
        t("ci"),
        Pick(0),
        t("0"),
        // Account, 6: grant prod/*, a token, the list.
        t("7"),
        t("6"),
        t("2"),
        Pick(0),
        t("prod/*"),
        t("password-123"),
        t("4"),
        Pick(0),
        t("password-123"),
        t(""),
        t("1"),
        t("0"),
        t("0"),
        t("0"),
    ]);
    assert!(
        has(
            &out,
            "Added service account ci, owned by alice; it cannot log in."
        ),
        "{out:#?}"
    );
    assert!(
        has(
            &out,
            "Granted 'prod/*' to ci: 1 record(s) readable through it now."
        ),
        "{out:#?}"
    );
    let at = out
        .iter()
        .position(|l| l.starts_with("Token ") && l.ends_with(":"))
        .expect("the token is shown");
    let token = out[at + 2].trim().to_string();
    assert!(token.starts_with("zst_"), "{token}");
    // The token reads the granted record.
    let mut vault = f.vault();
    let session = vault.authenticate(&SecretString::from(token)).unwrap();
    let got = vault
        .data_get(&session, &["prod/db".to_string()], None)
        .unwrap();
    assert_eq!(got.records[0].1.as_slice(), b"s3cret");
}

/// alice, signed up through the shell with one record `prod/db` ("s3cret"), and bob:
/// their session tokens.
fn alice_with_a_record_and_bob(f: &Fixture) -> (String, SecretString) {
    let mut script = signup("alice");
    script.push(t("0"));
    f.run(script);
    let alice_token = std::fs::read_to_string(&f.session_file).unwrap();
    let mut vault = f.vault();
    let session = vault
        .authenticate(&SecretString::from(alice_token.trim().to_string()))
        .unwrap();
    let opts = zencrypt_core::records::PutOptions {
        name: Some("prod/db".into()),
        ..Default::default()
    };
    vault.data_put(&session, b"s3cret", &opts, None).unwrap();
    let bob = vault
        .signup("bob", &SecretString::from("password-456"), None)
        .unwrap();
    (alice_token, bob.token)
}

#[test]
fn a_record_is_shared_read_through_shared_with_me_and_unshared() {
    let f = Fixture::new();
    let (alice_token, bob_token) = alice_with_a_record_and_bob(&f);
    // Encrypted data, 15: the fingerprint and its pin state are shown before confirming.
    let out = f.run(vec![
        t("2"),
        t("15"),
        Pick(0),
        t("bob"),
        Yes(true),
        Yes(true),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.contains("(not pinned yet: compare it with them; the first share pins it)"),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Shared prod/db with bob (read and write). They read it as:\n  alice:prod/db\n\
             and replace its value with `zencrypt data update alice:prod/db`; your client\n\
             makes each such write the record's next version at your next command."
        ),
        "{said}"
    );
    // bob, Encrypted data, 17: the shared record, read.
    f.resume(secrecy::ExposeSecret::expose_secret(&bob_token));
    let out = f.run(vec![
        t("2"),
        t("17"),
        Pick(0),
        Yes(true),
        t("n3w"),
        t("0"),
        t("0"),
    ]);
    assert!(has(&out, "s3cret"), "{out:#?}");
    assert!(
        has(
            &out,
            "Wrote alice:prod/db as version 2: everyone it is shared with reads it now;\n\
             alice's client makes it the record's version at alice's next command."
        ),
        "{out:#?}"
    );
    // alice, 16: unshared and re-encrypted; bob's list is empty.
    f.resume(&alice_token);
    let out = f.run(vec![t("2"), t("16"), Pick(0), t("0"), t("0")]);
    let said = out.join("\n");
    assert!(
        said.contains("Stopped sharing prod/db with bob; re-encrypted as version 3."),
        "{said}"
    );
    f.resume(secrecy::ExposeSecret::expose_secret(&bob_token));
    let out = f.run(vec![t("2"), t("17"), t("0"), t("0")]);
    assert!(has(&out, "Nothing is shared with you."), "{out:#?}");
}

#[test]
fn a_key_is_shared_and_unshared_from_the_keys_menu() {
    let f = Fixture::new();
    let mut script = signup("alice");
    script.push(t("0"));
    f.run(script);
    {
        let mut vault = f.vault();
        let token = std::fs::read_to_string(&f.session_file).unwrap();
        let session = vault
            .authenticate(&SecretString::from(token.trim().to_string()))
            .unwrap();
        vault
            .key_create(&session, "backups", Default::default())
            .unwrap();
        vault
            .signup("bob", &SecretString::from("password-456"), None)
            .unwrap();
    }
    let out = f.run(vec![
        t("1"),
        t("11"),
        Pick(0),
        t("bob"),
        Yes(true),
        Yes(false),
        t("12"),
        Pick(0),
        t("bob"),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.contains("(not pinned yet: compare it with them; the first share pins it)"),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Shared key backups with bob (decrypt only): version(s) 1; later versions follow\n\
             at each rotation."
        ),
        "{said}"
    );
    assert!(
        said.contains("Stopped sharing key backups with bob: 1 version(s) taken back."),
        "{said}"
    );
}

#[test]
fn groups_are_made_filled_shared_with_and_emptied_from_the_account_menu() {
    let f = Fixture::new();
    let (alice_token, bob_token) = alice_with_a_record_and_bob(&f);
    // Account, 7 Groups: create @ops, add bob (his key shown first), list.
    let out = f.run(vec![
        t("7"),
        t("7"),
        t("3"),
        t("@ops"),
        t("4"),
        Pick(0),
        t("bob"),
        Yes(true),
        t("1"),
        t("0"),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        has(
            &out,
            "Created @ops with you as its manager and first member."
        ),
        "{said}"
    );
    assert!(
        said.contains("(not pinned yet: compare it with them; the first share pins it)"),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Added bob to @ops: they read what is shared with @ops from now on."
        ),
        "{said}"
    );
    assert!(
        has(
            &out,
            "GROUP  MANAGER  MEMBERS  YOU\n@ops   alice    2        member"
        ),
        "{said}"
    );
    // Encrypted data, 15: shared with @ops after the group's key is shown.
    let out = f.run(vec![
        t("2"),
        t("15"),
        Pick(0),
        t("@ops"),
        Yes(true),
        Yes(false),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.contains("(managed by alice; members: alice, bob)"),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Shared prod/db with @ops (read-only). They read it as:\n  alice:prod/db"
        ),
        "{said}"
    );
    // bob reads it through the group.
    f.resume(secrecy::ExposeSecret::expose_secret(&bob_token));
    let out = f.run(vec![t("2"), t("17"), Pick(0), t("0"), t("0")]);
    assert!(has(&out, "s3cret"), "{out:#?}");
    // alice removes him (confirmed): a new key, her record re-encrypted.
    f.resume(&alice_token);
    let out = f.run(vec![
        t("7"),
        t("7"),
        t("5"),
        Pick(0),
        t("bob"),
        Yes(true),
        t("0"),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.contains("Removed bob from @ops; the group has a new key (epoch 2).")
            && said.contains("Re-encrypted now under new data keys: alice:prod/db."),
        "{said}"
    );
    f.resume(secrecy::ExposeSecret::expose_secret(&bob_token));
    let out = f.run(vec![t("2"), t("17"), t("0"), t("0")]);
    assert!(has(&out, "Nothing is shared with you."), "{out:#?}");
}

#[test]
fn a_record_is_transferred_from_the_data_menu_and_a_user_removed_from_administration() {
    let f = Fixture::new();
    let (alice_token, _bob_token) = alice_with_a_record_and_bob(&f);
    // Encrypted data, 18: bob's key is shown, then the record is handed to him.
    let out = f.run(vec![
        t("2"),
        t("18"),
        Pick(0),
        t("bob"),
        Yes(true),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.lines()
            .any(|l| l.starts_with("? Hand prod/db (zt_") && l.ends_with(") to bob?")),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Handed prod/db to bob: it becomes theirs when they run `zencrypt data receive`.\n\
             It is deleted on your side (`zencrypt data restore prod/db` takes it back)."
        ),
        "{said}"
    );
    // Administration, 8: bob removed for good, after confirming.
    let out = f.run(vec![t("8"), t("8"), Pick(1), Yes(true), t("0"), t("0")]);
    let said = out.join("\n");
    assert!(
        said.contains("? Remove bob for good? Nothing of theirs can be read again."),
        "{said}"
    );
    assert!(
        has(
            &out,
            "Removed bob: their data can no longer be opened by anyone; 1 session(s) ended."
        ),
        "{said}"
    );
    // The transfer bob never took in ended; alice takes her record back.
    let waiting: i64 = rusqlite::Connection::open(&f.db)
        .unwrap()
        .query_row("SELECT count(*) FROM record_transfers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(waiting, 0);
    let mut vault = f.vault();
    let session = vault
        .authenticate(&SecretString::from(alice_token.trim().to_string()))
        .unwrap();
    assert_eq!(vault.data_restore(&session, "prod/db").unwrap(), 1);
    let got = vault
        .data_get(&session, &["prod/db".to_string()], None)
        .unwrap();
    assert_eq!(got.records[0].1.as_slice(), b"s3cret");
}

#[test]
fn a_group_is_handed_over_and_taken_over_from_the_account_menu() {
    let f = Fixture::new();
    let (alice_token, bob_token) = alice_with_a_record_and_bob(&f);
    // Account, 7 Groups: create @ops, add bob, then 6 hands it to him (his key shown first).
    let out = f.run(vec![
        t("7"),
        t("7"),
        t("3"),
        t("ops"),
        t("4"),
        Pick(0),
        t("bob"),
        Yes(true),
        t("6"),
        Pick(0),
        t("bob"),
        Yes(true),
        t("0"),
        t("0"),
        t("0"),
    ]);
    let said = out.join("\n");
    assert!(
        said.contains("Offered @ops to bob (key ")
            && said.contains("they manage it once they run `zencrypt group receive`"),
        "{said}"
    );
    // bob takes it over with 7, and manages it.
    f.resume(secrecy::ExposeSecret::expose_secret(&bob_token));
    let out = f.run(vec![t("7"), t("7"), t("7"), t("1"), t("0"), t("0"), t("0")]);
    let said = out.join("\n");
    assert!(
        has(
            &out,
            "You manage @ops now (handed over by alice; 2 member rows signed with your key)."
        ),
        "{said}"
    );
    assert!(
        has(
            &out,
            "GROUP  MANAGER  MEMBERS  YOU\n@ops   bob      2        member"
        ),
        "{said}"
    );
    // alice manages no group now: 6 says so.
    f.resume(&alice_token);
    let out = f.run(vec![t("7"), t("7"), t("6"), t("0"), t("0"), t("0")]);
    let said = out.join("\n");
    assert!(said.contains("you manage no group (3 makes one)"), "{said}");
}
