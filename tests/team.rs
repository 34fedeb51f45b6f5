//! Moving a vault between databases: `db copy` makes a new database whose audit chain
//! continues from the source's head, and refuses targets that are not empty.

use crate::common::*;

/// A vault with alice (admin) and one record.
fn vault_with_a_record() -> Env {
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "prod/db"], b"s3cret")
        .ok();
    env
}

#[test]
fn a_copy_continues_the_chain_under_an_id_of_its_own() {
    let env = vault_with_a_record();
    let target = env.dir.path().join("copy.db");
    let t = target.to_str().unwrap();
    let source_head = env.run(&["audit", "list", "--json"], b"").ok().json();
    // The listing is itself audited: the head is one past the last row it showed.
    let source_seq = serde_json::json!(
        source_head.as_array().unwrap().last().unwrap()["seq"]
            .as_i64()
            .unwrap()
            + 1
    );
    let copied = env
        .run(&["--json", "db", "copy", "--to", t], b"")
        .ok()
        .json();
    assert_eq!(copied["to"], t);
    assert_eq!(copied["source_seq"], source_seq);
    assert_eq!(copied["handover_seq"], source_seq.as_i64().unwrap() + 1);
    assert_ne!(copied["copy_id"], copied["source_id"]);
    // Sessions do not travel: the copy needs a login of its own.
    let r = env.run(&["--db", t, "data", "get", "prod/db"], b"");
    assert_eq!(r.code, 3, "{}", r.stderr);
    env.run(
        &[
            "--db",
            t,
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    )
    .ok();
    let got = env.run(&["--db", t, "data", "get", "prod/db"], b"");
    assert_eq!(got.ok().stdout, "s3cret");
    let v = env
        .run(&["--db", t, "--json", "audit", "verify"], b"")
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["first_bad_seq"], serde_json::Value::Null);
    let handover = env
        .run(
            &[
                "--db",
                t,
                "--json",
                "audit",
                "list",
                "--action",
                "db.copied-from",
            ],
            b"",
        )
        .ok()
        .json();
    let detail = &handover[0]["detail"];
    assert_eq!(detail["source_id"], copied["source_id"]);
    assert_eq!(detail["copy_id"], copied["copy_id"]);
    assert_eq!(detail["source_seq"], source_seq);
    // The source records the copy, and both still verify.
    let made = env
        .run(&["--json", "audit", "list", "--action", "db.copy"], b"")
        .ok()
        .json();
    assert_eq!(made[0]["detail"]["copy_id"], copied["copy_id"]);
    assert_eq!(made[0]["target"], t);
    env.run(&["audit", "verify"], b"").ok();
    // The original keeps working with its own session.
    assert_eq!(
        env.run(&["data", "get", "prod/db"], b"").ok().stdout,
        "s3cret"
    );
}

#[test]
fn a_copy_refuses_a_target_that_is_not_empty() {
    let env = vault_with_a_record();
    let target = env.dir.path().join("copy.db");
    let t = target.to_str().unwrap();
    env.run(&["db", "copy", "--to", t], b"").ok();
    let again = env.run(&["db", "copy", "--to", t], b"");
    assert_eq!(again.code, 6, "{}", again.stderr);
    assert_eq!(
        again.stderr,
        format!(
            "error: {t} is not empty (it holds 1 users, 1 keys, 1 records and 3 audit entries); copy into a new database\n"
        )
    );
    let own = env.run(&["db", "copy", "--to", env.db().to_str().unwrap()], b"");
    if !env.on_postgres() {
        assert_eq!(own.code, 2, "{}", own.stderr);
        assert_eq!(
            own.stderr,
            "error: --to names the database this command runs on; give a new one\n"
        );
    }
}

#[test]
fn only_admins_copy() {
    let env = vault_with_a_record();
    env.signup("bob");
    let bob = env.token("bob");
    let target = env.dir.path().join("copy.db");
    let r = env.as_token(&bob, &["db", "copy", "--to", target.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(!target.exists());
}

#[test]
fn a_copy_whose_identity_was_changed_is_refused() {
    let env = Env::new();
    env.signup("alice");
    // The copy goes to a new database of the suite's backend.
    let target = Env::new();
    let t = match &target.pg {
        Some(db) => db.url.clone(),
        None => {
            std::fs::create_dir_all(target.data_dir()).unwrap();
            target.db().to_str().unwrap().to_string()
        }
    };
    env.run(&["db", "copy", "--to", &t], b"").ok();
    target.exec(&format!(
        "UPDATE meta SET value = {} WHERE key = 'database_id'",
        target.blob("5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e")
    ));
    let r = env.run(
        &[
            "--db",
            &t,
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: this copy's hand-over entry is missing or was changed: it does not vouch for this database's identity; restore it from a backup\n"
    );
}

/// The privileges a team member's database role gets (README, "A team vault on
/// PostgreSQL"): everything a member's commands write, but not the columns that hold
/// roles and account status, and nothing that rewrites or removes audit entries.
const MEMBER_GRANTS: &str = "
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
GRANT INSERT ON audit_log, sessions, keys, key_versions, key_events, records, usage_events,
    password_identities, record_versions TO {role};
GRANT UPDATE ON audit_head, sessions, keys, key_versions, records, password_identities TO {role};
GRANT DELETE ON records, record_versions, service_record_keys, service_grants, record_shares,
    key_shares, group_members, record_writes, record_transfers TO {role};
GRANT INSERT, UPDATE ON record_shares, key_shares, groups, group_members, record_writes,
    record_transfers TO {role};
GRANT INSERT ON service_grants, service_record_keys TO {role};
GRANT UPDATE ON service_record_keys TO {role};
GRANT UPDATE (password_hash, kek_salt, kek_m_kib, kek_t, kek_p, wrapped_user_key,
    last_login_at, must_change_password, rows_bound, row_mac, recovery_salt,
    recovery_wrapped_key, recovery_created_at, public_key, signing_key, wrapped_keypair,
    key_pins) ON users TO {role};
GRANT USAGE, SELECT, UPDATE ON SEQUENCE records_id_high TO {role};
";

#[test]
fn a_member_with_least_privilege_cannot_change_roles_or_the_log() {
    let env = Env::new();
    let Some(db) = &env.pg else {
        return; // A property of PostgreSQL's privileges: the PostgreSQL half runs it.
    };
    env.signup("alice");
    env.signup("bob");
    let role = format!("{}_member", db.name);
    psql(&db.url, &format!("CREATE ROLE {role} LOGIN"));
    psql(&db.url, &MEMBER_GRANTS.replace("{role}", &role));
    let mut member_url = url::Url::parse(&db.url).unwrap();
    member_url.set_username(&role).unwrap();
    let member_url = member_url.to_string();
    // bob works as usual through the member role...
    let login = env.run(
        &[
            "--db",
            &member_url,
            "login",
            "--username",
            "bob",
            "--password-stdin",
        ],
        format!("{}\n", pw("bob")).as_bytes(),
    );
    login.ok();
    env.run(
        &["--db", &member_url, "data", "put", "--name", "mine"],
        b"v1",
    )
    .ok();
    env.run(&["--db", &member_url, "data", "update", "mine"], b"v2")
        .ok();
    assert_eq!(
        env.run(&["--db", &member_url, "data", "get", "mine"], b"")
            .ok()
            .stdout,
        "v2"
    );
    env.run(
        &["--db", &member_url, "data", "rm", "--hard", "--yes", "mine"],
        b"",
    )
    .ok();
    // ...but the database itself stops a member who holds the audit key from raising a
    // role or rewriting the log, whatever client they use.
    for sql in [
        "UPDATE users SET role = 'admin' WHERE username = 'bob'",
        "UPDATE users SET status = 'active'",
        "DELETE FROM audit_log",
        "UPDATE audit_log SET detail = '{}'",
    ] {
        let out = std::process::Command::new("psql")
            .args([member_url.as_str(), "-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("permission denied"),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // bob's login replaced alice's saved session (one per database id): alice again.
    env.login("alice");
    env.run(&["audit", "verify"], b"").ok();
    psql(
        &db.url,
        &format!("REASSIGN OWNED BY {role} TO postgres; DROP OWNED BY {role}; DROP ROLE {role}"),
    );
}
