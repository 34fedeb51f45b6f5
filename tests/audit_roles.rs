//! Roles and the audit log end to end: denials, the role matrix, chain verification
//! after tampering with the database, and who sees which rows.

use crate::common::*;

fn setup() -> (Env, String, String, String) {
    let env = Env::new();
    env.signup("alice");
    env.signup("bob");
    env.signup("carol");
    let alice = env.token("alice");
    env.as_token(&alice, &["user", "role", "carol", "auditor"])
        .ok();
    let bob = env.token("bob");
    let carol = env.token("carol");
    (env, alice, bob, carol)
}

#[test]
fn a_denial_is_refused_with_4_and_found_by_the_admin() {
    let (env, alice, bob, _) = setup();
    let r = env.as_token(&bob, &["user", "list"]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "error: permission denied: user.list requires the admin role\nhint: ask an administrator for a role that allows it\n"
    );
    let denied = audit_rows(&env, &alice, &["--outcome", "denied"]);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["actor"], "bob");
    assert_eq!(denied[0]["action"], "user.list");
    assert_eq!(denied[0]["outcome"], "denied");
    assert_eq!(denied[0]["detail"]["error"], "permission_denied");
}

#[test]
fn every_admin_command_is_refused_for_user_and_auditor() {
    let (env, alice, bob, carol) = setup();
    let commands: Vec<(Vec<&str>, &str, &str)> = vec![
        (vec!["user", "list"], "user.list", "-"),
        (
            vec!["user", "add", "dave", "--password-stdin"],
            "user.add",
            "dave",
        ),
        (vec!["user", "role", "alice", "user"], "user.role", "alice"),
        (vec!["user", "disable", "alice"], "user.disable", "alice"),
        (vec!["user", "enable", "alice"], "user.enable", "alice"),
        (vec!["user", "revoke", "alice"], "user.revoke", "alice"),
    ];
    for (who, token) in [("bob", &bob), ("carol", &carol)] {
        for (args, action, target) in &commands {
            let r = env.run_with(args, b"dave-password-1\n", &[("ZENCRYPT_TOKEN", token)]);
            assert_eq!(r.code, 4, "{who} {args:?}: {}", r.stderr);
            assert_eq!(
                r.stderr.lines().next().unwrap(),
                format!("error: permission denied: {action} requires the admin role")
            );
            let rows = audit_rows(&env, &alice, &["--user", who, "--action", action]);
            let last = rows
                .last()
                .unwrap_or_else(|| panic!("no audit row for {who} {action}"));
            assert_eq!(last["outcome"], "denied", "{who} {action}");
            assert_eq!(last["target"], *target);
        }
    }
    // Nothing was changed by the refused commands.
    let users = env.as_token(&alice, &["user", "list", "--json"]).json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(users[0]["role"], "admin");
    assert_eq!(users[0]["status"], "active");
}

#[test]
fn users_see_their_own_rows_and_auditors_see_all() {
    let (env, _alice, bob, carol) = setup();
    let own = audit_rows(&env, &bob, &[]);
    assert!(!own.is_empty());
    assert!(own.iter().all(|r| r["actor"] == "bob"), "{own:?}");
    let r = env.as_token(&bob, &["audit", "list", "--user", "alice"]);
    assert_eq!(r.code, 4);
    let all = audit_rows(&env, &carol, &[]);
    for who in ["alice", "bob", "carol"] {
        assert!(all.iter().any(|r| r["actor"] == who), "{who}");
    }
    assert_eq!(env.as_token(&bob, &["audit", "verify"]).code, 4);
    let v = env.as_token(&carol, &["audit", "verify", "--json"]);
    v.ok();
    assert_eq!(v.json()["ok"], true);
    assert_eq!(v.json()["first_bad_seq"], serde_json::Value::Null);
}

#[test]
fn audit_list_filters() {
    let (env, alice, _, _) = setup();
    let logins = audit_rows(&env, &alice, &["--action", "auth.login"]);
    assert_eq!(logins.len(), 3);
    assert!(logins.iter().all(|r| r["action"] == "auth.login"));
    let family = audit_rows(&env, &alice, &["--action", "auth."]);
    assert!(
        family
            .iter()
            .all(|r| r["action"].as_str().unwrap().starts_with("auth."))
    );
    assert!(family.len() > logins.len());
    let limited = audit_rows(&env, &alice, &["--limit", "2"]);
    assert_eq!(limited.len(), 2);
    let seqs: Vec<i64> = limited.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs[1], seqs[0] + 1, "the most recent rows, in order");
    assert!(audit_rows(&env, &alice, &["--since", "1h"]).len() > 5);
    let bad = env.as_token(&alice, &["audit", "list", "--outcome", "meh"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn editing_or_deleting_audit_rows_breaks_verification_at_that_seq() {
    let (env, alice, _, _) = setup();
    env.as_token(&alice, &["audit", "verify"]).ok();
    let set_detail = |detail: &str| {
        env.exec(&format!(
            "UPDATE audit_log SET detail = '{}' WHERE seq = 4",
            detail.replace('\'', "''")
        ))
    };
    let [original] = &env.column::<String>("SELECT detail FROM audit_log WHERE seq = 4")[..] else {
        panic!("one row at seq 4");
    };
    let mut edited = original.clone().into_bytes();
    edited[1] ^= 0x01;
    set_detail(&String::from_utf8(edited).unwrap());

    let r = env.as_token(&alice, &["audit", "verify"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: audit chain is broken at seq 4: row was modified (mac mismatch)"
    );
    let j = env.as_token(&alice, &["audit", "verify", "--json"]);
    assert_eq!(j.code, 7);
    assert_eq!(j.json()["ok"], false);
    assert_eq!(j.json()["first_bad_seq"], 4);
    assert_eq!(j.json()["checked"], 3);

    set_detail(original);
    let ok = env.as_token(&alice, &["audit", "verify"]);
    ok.ok();
    assert!(ok.stdout.starts_with("audit chain intact: "));

    env.exec("DELETE FROM audit_log WHERE seq = 6");
    let r = env.as_token(&alice, &["audit", "verify", "--json"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.json()["first_bad_seq"], 6);
    assert!(
        r.stderr
            .contains("\"message\":\"audit chain is broken at seq 6: row 6 is missing\"")
    );
}

#[test]
fn editing_the_mac_or_the_outcome_is_detected() {
    let (env, alice, _, _) = setup();
    env.exec("UPDATE audit_log SET outcome = 'failed' WHERE seq = 2");
    let r = env.as_token(&alice, &["audit", "verify", "--json"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.json()["first_bad_seq"], 2);
    env.exec("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2");
    env.exec(&format!(
        "UPDATE audit_log SET mac = {} WHERE seq = 3",
        env.blob(&"00".repeat(32))
    ));
    let r = env.as_token(&alice, &["audit", "verify", "--json"]);
    assert_eq!(r.json()["first_bad_seq"], 3);
}

#[test]
fn disabling_a_user_ends_their_sessions_and_blocks_login() {
    let (env, alice, bob, _) = setup();
    let r = env.as_token(&alice, &["user", "disable", "bob", "--json"]);
    r.ok();
    assert_eq!(r.json()["revoked_sessions"], 1);
    let w = env.as_token(&bob, &["whoami"]);
    assert_eq!(w.code, 3);
    let l = env.run(
        &["login", "--username", "bob", "--password-stdin"],
        format!("{}\n", pw("bob")).as_bytes(),
    );
    assert_eq!(l.code, 3);
    assert_eq!(
        l.stderr,
        "error: account is disabled\nhint: ask an administrator to enable the account\n"
    );
    env.as_token(&alice, &["user", "enable", "bob"]).ok();
    env.login("bob");
}

#[test]
fn the_last_active_admin_cannot_be_demoted_or_disabled() {
    let (env, alice, _, _) = setup();
    let r = env.as_token(&alice, &["user", "role", "alice", "user"]);
    assert_eq!(r.code, 6);
    assert_eq!(
        r.stderr,
        "error: cannot demote 'alice': it is the last active admin\n"
    );
    let r = env.as_token(&alice, &["user", "disable", "alice"]);
    assert_eq!(r.code, 6);
    env.as_token(&alice, &["user", "role", "bob", "admin"]).ok();
    env.as_token(&alice, &["user", "role", "alice", "user"])
        .ok();
    // The role is read from the database: alice's old token is now a plain user's.
    assert_eq!(env.as_token(&alice, &["user", "list"]).code, 4);
    let missing = env.as_token(&env.token("bob"), &["user", "role", "nobody", "user"]);
    assert_eq!(missing.code, 5);
    assert_eq!(missing.stderr, "error: user 'nobody' not found\n");
}

#[test]
fn revoke_ends_all_sessions_of_a_user() {
    let (env, alice, bob, _) = setup();
    let r = env.as_token(&alice, &["user", "revoke", "bob", "--json"]);
    r.ok();
    assert_eq!(r.json()["revoked_sessions"], 1);
    assert_eq!(env.as_token(&bob, &["whoami"]).code, 3);
}

#[test]
fn an_impossible_outcome_value_is_named_by_verify() {
    let (env, alice, _, _) = setup();
    // Whoever owns the database can lift the check that keeps such a value out.
    let lift_the_check = if env.on_postgres() {
        "ALTER TABLE audit_log DROP CONSTRAINT audit_log_outcome_check;"
    } else {
        "PRAGMA ignore_check_constraints = 1;"
    };
    env.exec(&format!(
        "{lift_the_check} UPDATE audit_log SET outcome = 'okay' WHERE seq = 3;"
    ));
    let r = env.as_token(&alice, &["audit", "verify", "--json"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.json()["first_bad_seq"], 3);
}

#[test]
fn another_databases_audit_log_does_not_verify_here() {
    let (env, alice, _, _) = setup();
    // Same audit key in both, from the start: only the database identity differs. (On
    // PostgreSQL every test installation is given the same key.)
    let other = Env::new();
    if !env.on_postgres() {
        std::fs::create_dir_all(other.data_dir()).unwrap();
        let key_file = other.data_dir().join("audit.key");
        std::fs::write(
            &key_file,
            std::fs::read(env.data_dir().join("audit.key")).unwrap(),
        )
        .unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    other.signup("alice");
    other.signup("bob");
    env.exec("DELETE FROM audit_log");
    env.copy_rows(&other, "audit_log");
    // Every client refuses it at open, whether or not it saw this database's own log.
    for forget in [false, true] {
        if forget {
            env.forget_witness();
        }
        let r = env.as_token(&alice, &["audit", "verify", "--json"]);
        assert_eq!(r.code, 7);
        assert!(
            r.stderr
                .contains("this database's identity was changed (its audit log begins from another database id)"),
            "{}",
            r.stderr
        );
    }
}
