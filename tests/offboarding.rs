//! Offboarding: records handed to another user (`data transfer`, taken in with `data
//! receive`), by their owner or, once the owner is disabled, by the manager of a group
//! they are shared with; and `user remove`, refused until nothing others rely on is left
//! with the user, then crypto-shredding what is.

use crate::common::*;

#[test]
fn an_owner_transfers_a_record_and_the_new_owner_takes_it_in() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    put_as(&env, &bob, "prod/db", b"db-1");
    put_as(&env, &carol, "prod/db", b"carols-own");
    env.as_token(&bob, &["data", "share", "prod/db", "--with", "alice"])
        .ok();
    let r = env.as_token(&bob, &["data", "transfer", "prod/db", "--to", "carol"]);
    r.ok();
    assert!(
        r.stderr.ends_with(
            "Handed prod/db to carol: it becomes theirs when they run `zencrypt data receive`.\n\
             It is deleted on your side (`zencrypt data restore prod/db` takes it back).\n"
        ),
        "{}",
        r.stderr
    );
    // bob's record is gone on his side and its share with alice ended.
    assert_eq!(get(&env, &bob, "prod/db").code, 5);
    assert_eq!(get(&env, &alice, "bob:prod/db").code, 5);
    // Nothing arrives until carol takes it in; she has a prod/db, so it is named after bob.
    assert_eq!(get(&env, &carol, "prod/db.from-bob").code, 5);
    let r = env.as_token(&carol, &["data", "receive"]);
    let line = r.ok().stdout.clone();
    assert!(
        line.starts_with("Received prod/db.from-bob from bob: zt_"),
        "{line}"
    );
    assert_eq!(get(&env, &carol, "prod/db.from-bob").ok().stdout, "db-1");
    let r = env.as_token(&carol, &["data", "receive"]);
    assert_eq!(r.ok().stdout, "No record is waiting for you.\n");
    assert_eq!(get(&env, &carol, "prod/db").ok().stdout, "carols-own");
    let rows = audit_rows(&env, &carol, &["--action", "data.receive"]);
    assert_eq!(rows[0]["detail"]["from"], "bob");
    assert_eq!(rows[0]["detail"]["by"], "bob");
    assert_eq!(rows[0]["detail"]["name"], "prod/db.from-bob");
    assert_eq!(rows[0]["detail"]["taken"], true);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_transfers WHERE taken_at IS NOT NULL"),
        vec![1]
    );
    // A group, oneself and a protected record are refused, and nothing changes.
    put_as(&env, &bob, "kept", b"k");
    let r = env.as_token(&bob, &["data", "transfer", "kept", "--to", "@ops"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: a record is transferred to one user, not to a group")
    );
    let r = env.as_token(&bob, &["data", "transfer", "kept", "--to", "bob"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some("error: the record is yours already: hand it to someone else")
    );
    let pw = env.dir.path().join("rp");
    std::fs::write(&pw, b"record-password-1\n").unwrap();
    env.run_with(
        &[
            "data",
            "put",
            "--name",
            "locked",
            "--protect",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        b"x",
        &[("ZENCRYPT_TOKEN", &bob)],
    )
    .ok();
    let r = env.as_token(&bob, &["data", "transfer", "locked", "--to", "carol"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: record 'locked' is protected by a record password and cannot be \
             transferred: its data key opens only with that password"
        )
    );
    assert_eq!(get(&env, &bob, "kept").ok().stdout, "k");
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_transfers"),
        vec![1]
    );
    // The transfer and share rows are where their audit entries say.
    let v = env
        .as_token(&alice, &["--json", "audit", "verify"])
        .ok()
        .json();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["rows_checked"].as_u64().unwrap() > 0, "{v}");
}

#[test]
fn a_waiting_transfer_is_taken_back_by_restoring_and_a_forged_one_is_dropped() {
    let env = Env::new();
    let (_alice, bob, carol) = three_users(&env);
    put_as(&env, &bob, "ci/token", b"tok-1");
    env.as_token(&bob, &["data", "transfer", "ci/token", "--to", "carol"])
        .ok();
    // bob changes his mind before carol runs anything.
    env.as_token(&bob, &["data", "restore", "ci/token"]).ok();
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_transfers"),
        vec![0]
    );
    assert_eq!(get(&env, &bob, "ci/token").ok().stdout, "tok-1");
    assert_eq!(get(&env, &carol, "ci/token").code, 5);
    // A transfer whose signature does not verify is dropped, audited, and gives nothing;
    // bob's key is not pinned by it.
    env.as_token(&bob, &["data", "transfer", "ci/token", "--to", "carol"])
        .ok();
    env.exec(&format!(
        "UPDATE record_transfers SET signature = {}",
        env.blob(&"00".repeat(64))
    ));
    let r = env.as_token(&carol, &["data", "receive", "--json"]);
    let doc = r.ok().json();
    assert_eq!(doc[0]["state"], "dropped");
    assert_eq!(doc[0]["from"], "bob");
    assert_eq!(
        doc[0]["reason"],
        "what 'bob' is said to have signed does not verify under their key: it was changed \
         outside zencrypt (their key was not pinned)"
    );
    let r = env.as_token(&carol, &["data", "list", "--json"]);
    assert_eq!(r.ok().json(), serde_json::json!([]));
    let rows = audit_rows(&env, &carol, &["--action", "data.receive"]);
    assert_eq!(rows.last().unwrap()["detail"]["dropped"], true);
    let r = env.as_token(&carol, &["user", "show", "bob", "--json"]);
    assert_eq!(r.ok().json()["pin"], "not_pinned");
}

#[test]
fn a_user_is_removed_only_once_their_shared_records_are_handed_over() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    // bob manages @ops with carol; dave shares a record with the group and a key with
    // carol, then leaves.
    env.signup("dave");
    let dave = env.token("dave");
    env.as_token(&bob, &["group", "create", "ops"]).ok();
    env.as_token(&bob, &["group", "add", "@ops", "carol"]).ok();
    env.as_token(&bob, &["group", "add", "@ops", "dave"]).ok();
    put_as(&env, &dave, "prod/api", b"api-1");
    put_as(&env, &dave, "notes", b"private");
    put_as(&env, &dave, "prod/web", b"web-1");
    env.as_token(&dave, &["data", "share", "prod/web", "--with", "@ops"])
        .ok();
    env.as_token(&dave, &["data", "share", "prod/api", "--with", "@ops"])
        .ok();
    env.as_token(&dave, &["key", "create", "backups"]).ok();
    env.as_token(&dave, &["key", "share", "backups", "--with", "carol"])
        .ok();
    // Not yet: the record is shared, and dave is in a group.
    let r = env.as_token(&alice, &["user", "remove", "dave", "--yes"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next(),
        Some(
            "error: cannot remove 'dave' yet: dave:prod/api is shared with @ops (`data transfer \
             dave:prod/api --to USER` by its owner or the group's manager, or `data unshare`); \
             dave:prod/web is shared with @ops (`data transfer dave:prod/web --to USER` by its \
             owner or the group's manager, or `data unshare`); they are a member of @ops (its manager bob runs `group remove ops dave`)"
        )
    );
    // Without --yes and without a terminal, nothing happens.
    let r = env.as_token(&alice, &["user", "remove", "dave"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    // While dave is active, the group's manager may not hand his record on.
    let r = env.as_token(
        &bob,
        &["data", "transfer", "dave:prod/api", "--to", "carol"],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: 'dave:prod/api' is dave's, who is active: they transfer it themselves; a \
         group's manager hands on what the group reads only once its owner is disabled"
    );
    // dave is disabled; bob hands the record to carol, a member (alice is not one).
    env.as_token(&alice, &["user", "disable", "dave"]).ok();
    let r = env.as_token(
        &bob,
        &["data", "transfer", "dave:prod/api", "--to", "alice"],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: alice is not a member of the group 'dave:prod/api' is shared with: a group's \
         manager hands what it reads to its members"
    );
    let r = env.as_token(
        &bob,
        &["data", "transfer", "dave:prod/api", "--to", "carol"],
    );
    r.ok();
    assert!(
        r.stderr.ends_with(
            "Handed dave:prod/api to carol: it becomes theirs when they run `zencrypt data receive`.\n\
             Its owner's record stays as it is.\n"
        ),
        "{}",
        r.stderr
    );
    let r = env.as_token(&alice, &["user", "remove", "dave", "--yes"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains("waits for carol to take it in"),
        "a waiting transfer blocks too: {}",
        r.stderr
    );
    let r = env.as_token(&carol, &["data", "receive"]);
    assert!(
        r.ok()
            .stdout
            .starts_with("Received prod/api from dave (handed on by bob): zt_"),
        "{}",
        r.stdout
    );
    assert_eq!(get(&env, &carol, "prod/api").ok().stdout, "api-1");
    // The manager, a member too, takes the other record himself.
    env.as_token(&bob, &["data", "transfer", "dave:prod/web", "--to", "bob"])
        .ok();
    let r = env.as_token(&bob, &["data", "receive", "--json"]);
    assert_eq!(r.ok().json()[0]["state"], "taken");
    assert_eq!(r.json()[0]["name"], "prod/web");
    assert_eq!(get(&env, &bob, "prod/web").ok().stdout, "web-1");
    env.as_token(&bob, &["group", "remove", "@ops", "dave"])
        .ok();
    // An ordinary user may not remove anyone.
    let r = env.as_token(&bob, &["user", "remove", "dave", "--yes"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let r = env.as_token(&alice, &["user", "remove", "dave", "--yes", "--json"]);
    r.ok();
    assert_eq!(r.json()["keys_unshared"], 1);
    assert_eq!(r.json()["services"], serde_json::json!([]));
    // dave's data opens for nobody: his user key and keypair are gone, he cannot log in,
    // and he cannot be enabled again.
    assert_eq!(
        env.blobs("SELECT wrapped_user_key FROM users WHERE username = 'dave'"),
        vec![Some(Vec::new())]
    );
    assert_eq!(
        env.blobs("SELECT public_key FROM users WHERE username = 'dave'"),
        vec![None]
    );
    let r = env.run(
        &["login", "--username", "dave", "--password-stdin"],
        format!("{}\n", pw("dave")).as_bytes(),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(get(&env, &dave, "notes").code, 3);
    let r = env.as_token(&alice, &["user", "enable", "dave"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: 'dave' was removed: their data was crypto-shredded"),
        "{}",
        r.stderr
    );
    let users = env.as_token(&alice, &["user", "list", "--json"]).json();
    let dave_row = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "dave")
        .unwrap()
        .clone();
    assert_eq!(dave_row["status"], "removed");
    // An account an admin made, not yet logged in (no user key yet), is not a removed one.
    env.run_with(
        &["user", "add", "erin", "--password-stdin"],
        b"admin-chose-this\n",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    env.as_token(&alice, &["user", "disable", "erin"]).ok();
    env.as_token(&alice, &["user", "enable", "erin"]).ok();
    // What carol took in is hers, and the removal is in the audit log.
    assert_eq!(get(&env, &carol, "prod/api").ok().stdout, "api-1");
    let rows = audit_rows(&env, &alice, &["--action", "user.remove"]);
    let outcomes: Vec<&str> = rows
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "denied", "ok"]);
    assert!(rows.iter().all(|r| r["target"] == "dave"));
}
