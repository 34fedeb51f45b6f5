//! Groups: a keypair per group wrapped to each member, managed by its creator; records
//! and keys shared with `@group`; removing a member replaces the group's keypair and
//! re-encrypts what was shared with it.

use crate::common::*;

/// bob makes @ops and adds carol.
fn ops(env: &Env, bob: &str) {
    env.as_token(bob, &["group", "create", "ops"]).ok();
    env.as_token(bob, &["group", "add", "@ops", "carol"]).ok();
}

/// alice, bob and carol; bob makes @ops, adds carol and shares his prod/db
/// ("db-secret-1") with it.
fn ops_reading_prod_db(env: &Env) -> (String, String, String) {
    let (alice, bob, carol) = three_users(env);
    ops(env, &bob);
    put_as(env, &bob, "prod/db", b"db-secret-1");
    env.as_token(&bob, &["data", "share", "prod/db", "--with", "@ops"])
        .ok();
    (alice, bob, carol)
}

#[test]
fn a_group_reads_what_is_shared_with_it_and_a_removed_member_loses_it() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    let r = env.as_token(&bob, &["group", "create", "ops", "--json"]);
    r.ok();
    assert_eq!(r.json()["members"], serde_json::json!(["bob"]));
    assert_eq!(r.json()["manager"], "bob");
    assert_eq!(r.json()["epoch"], 1);
    let group_fp = r.json()["fingerprint"].as_str().unwrap().to_string();
    let r = env.as_token(&bob, &["group", "add", "@ops", "carol"]);
    r.ok();
    assert!(
        r.stderr
            .ends_with("Added carol to @ops: they read what is shared with @ops from now on.\n"),
        "{}",
        r.stderr
    );
    // The manager and a member share with the group.
    let db_token = put_as(&env, &bob, "prod/db", b"db-secret-1");
    put_as(&env, &carol, "ci/token", b"ci-secret-1");
    let r = env.as_token(&bob, &["data", "share", "prod/db", "--with", "@ops"]);
    r.ok();
    assert_eq!(
        r.stderr,
        "Shared prod/db with @ops (read-only). They read it as:\n  bob:prod/db\n"
    );
    env.as_token(
        &carol,
        &[
            "data",
            "share",
            "ci/token",
            "--with",
            "@ops",
            "--fingerprint",
            &group_fp,
        ],
    )
    .ok();
    assert_eq!(get(&env, &carol, "bob:prod/db").ok().stdout, "db-secret-1");
    assert_eq!(get(&env, &carol, &db_token).ok().stdout, "db-secret-1");
    assert_eq!(get(&env, &bob, "carol:ci/token").ok().stdout, "ci-secret-1");
    let r = env.as_token(&carol, &["data", "list", "--shared-with-me", "--json"]);
    assert_eq!(r.ok().json()[0]["reference"], "bob:prod/db");
    assert_eq!(r.json()[0]["via"], "@ops");
    let r = env.as_token(&bob, &["data", "list", "--shared", "--json"]);
    assert_eq!(r.ok().json()[0]["with"], "@ops");
    let r = env.as_token(&carol, &["group", "show", "ops", "--json"]);
    assert_eq!(
        r.ok().json()["members"],
        serde_json::json!(["bob", "carol"])
    );
    assert_eq!(r.json()["fingerprint"], group_fp.as_str());
    // alice, the installation's admin, is not a member: she reads nothing shared with the
    // group and cannot add herself.
    let r = env.as_token(&alice, &["group", "list"]);
    assert_eq!(
        r.ok().stdout,
        "GROUP  MANAGER  MEMBERS  YOU\n@ops   bob      2        -\n"
    );
    for reference in ["bob:prod/db", db_token.as_str(), "carol:ci/token"] {
        let r = get(&env, &alice, reference);
        assert_eq!(r.code, 5, "{}", r.stderr);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            format!("error: record '{reference}' not found")
        );
    }
    let r = env.as_token(&alice, &["group", "add", "ops", "alice"]);
    assert_eq!(r.code, 4);
    assert_eq!(
        r.stderr,
        "error: permission denied: only the manager of group '@ops' (bob) changes its members or hands it over\nhint: ask bob\n"
    );
    let old_share: Vec<Option<Vec<u8>>> = env.blobs(
        "SELECT wrapped_dek FROM record_shares WHERE owner_id = (SELECT id FROM users WHERE username = 'bob')",
    );
    // bob removes carol: a new group key; his record is re-encrypted now, carol's at her
    // next command; what she could read is listed.
    let r = env.as_token(&bob, &["group", "remove", "ops", "carol", "--json"]);
    r.ok();
    assert_eq!(
        r.stderr,
        "Removed carol from @ops; the group has a new key (epoch 2).\n\
         carol could read through @ops:\n  bob:prod/db\n  carol:ci/token\n\
         Re-encrypted now under new data keys: bob:prod/db.\n\
         Re-encrypted at their owner's next zencrypt command: carol:ci/token.\n\
         What carol already read, they know: rotate those secrets at their source if that matters.\n"
    );
    assert_eq!(r.json()["epoch"], 2);
    let r = env.as_token(&bob, &["data", "history", "prod/db", "--json"]);
    assert_eq!(r.ok().json()["versions"][0]["version"], 2, "{}", r.stdout);
    let r = env.as_token(&bob, &["group", "show", "ops", "--json"]);
    assert_eq!(r.ok().json()["members"], serde_json::json!(["bob"]));
    assert_ne!(r.json()["fingerprint"], group_fp.as_str());
    for reference in ["bob:prod/db", db_token.as_str()] {
        let r = get(&env, &carol, reference);
        assert_eq!(r.code, 5, "{}", r.stderr);
    }
    // carol's next command re-encrypts her record for the group's new key; bob still reads
    // it, and the audit says so.
    env.as_token(&carol, &["whoami"]).ok();
    assert_eq!(get(&env, &bob, "carol:ci/token").ok().stdout, "ci-secret-1");
    let rekeys = audit_rows(&env, &alice, &["--action", "group.rekey"]);
    let who: Vec<(&str, i64)> = rekeys
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["detail"]["version"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(who, [("bob", 2), ("carol", 2)]);
    // Both shares are now wrapped to the group's new key, bob's under a new data key.
    assert_eq!(
        env.column::<i64>("SELECT epoch FROM record_shares ORDER BY id"),
        [2, 2]
    );
    let new_share: Vec<Option<Vec<u8>>> = env.blobs(
        "SELECT wrapped_dek FROM record_shares WHERE owner_id = (SELECT id FROM users WHERE username = 'bob')",
    );
    assert_ne!(new_share, old_share);
}

fn decrypt(env: &Env, token: &str, file: &str) -> Run {
    env.as_token(token, &["decrypt", file])
}

#[test]
fn keys_and_age_files_shared_with_a_group() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    ops(&env, &bob);
    env.as_token(&bob, &["key", "create", "backups"]).ok();
    let v1 = encrypt_as(&env, &bob, &["--key", "backups"], "v1.zc", b"backup one");
    let r = env.as_token(
        &bob,
        &["key", "share", "backups", "--with", "@ops", "--json"],
    );
    r.ok();
    assert_eq!(r.json()["with"], "@ops");
    // A member decrypts with the group's copy of the key; the admin does not.
    assert_eq!(decrypt(&env, &carol, &v1).ok().stdout, "backup one");
    assert_eq!(decrypt(&env, &alice, &v1).code, 5);
    // An age file to the group: a member reads it with no flag, the admin does not.
    let age = encrypt_as(&env, &bob, &["--to", "@ops"], "note.age", b"for the group");
    assert_eq!(decrypt(&env, &carol, &age).ok().stdout, "for the group");
    let r = decrypt(&env, &alice, &age);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: this age file is not addressed to any identity at hand (your keypair, your groups' keys, or --identity)\n"
    );
    // carol leaves: the key's next version does not reach her, the earlier ones did.
    env.as_token(&bob, &["group", "remove", "ops", "carol"])
        .ok();
    env.as_token(&bob, &["key", "rotate", "backups"]).ok();
    let v2 = encrypt_as(&env, &bob, &["--key", "backups"], "v2.zc", b"backup two");
    let r = decrypt(&env, &carol, &v2);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(!r.stdout.contains("backup two"));
    assert_eq!(decrypt(&env, &bob, &v2).ok().stdout, "backup two");
    // An age file to the group's new key is not hers either.
    let age2 = encrypt_as(&env, &bob, &["--to", "@ops"], "note2.age", b"after carol");
    assert_eq!(decrypt(&env, &carol, &age2).code, 5);
    // Unsharing from the group takes the versions back.
    let r = env.as_token(
        &bob,
        &["key", "unshare", "backups", "--from", "@ops", "--json"],
    );
    r.ok();
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM key_shares"),
        vec![0]
    );
}

#[test]
fn a_group_changed_in_the_database_is_refused() {
    let env = Env::new();
    let (alice, bob, carol) = ops_reading_prod_db(&env);
    // An insider adds alice as a member row of her own making: the member set is no
    // longer the one bob signed.
    let (alice_id, bob_id, carol_id) = (
        user_id(&env, "alice"),
        user_id(&env, "bob"),
        user_id(&env, "carol"),
    );
    env.exec(&format!(
        "INSERT INTO group_members (id, group_id, user_id, epoch, wrapped_identity, signature, added_at) \
         SELECT 99, group_id, {alice_id}, epoch, wrapped_identity, signature, added_at \
         FROM group_members WHERE user_id = {carol_id}"
    ));
    let r = get(&env, &alice, "bob:prod/db");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(!r.stdout.contains("db-secret"));
    let reads: [(&String, &[&str]); 2] = [
        (&carol, &["data", "get", "bob:prod/db"]),
        (&bob, &["group", "show", "ops"]),
    ];
    for (who, args) in reads {
        let r = env.as_token(who, args);
        assert_eq!(r.code, 7, "{}", r.stderr);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            "error: the members of group '@ops' are not the ones its manager signed: a member was added or removed outside zencrypt (restore the database from a backup)"
        );
    }
    env.exec("DELETE FROM group_members WHERE id = 99");
    assert_eq!(get(&env, &carol, "bob:prod/db").ok().stdout, "db-secret-1");
    // An insider hands the group to alice: carol pinned bob as its manager.
    env.exec(&format!(
        "UPDATE groups SET manager_id = {alice_id} WHERE manager_id = {bob_id}"
    ));
    let r = get(&env, &carol, "bob:prod/db");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(!r.stdout.contains("db-secret"));
    let r = env.as_token(&carol, &["group", "show", "ops"]);
    assert_eq!(r.code, 7);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: what 'alice' is said to have signed does not verify under their key: it was changed outside zencrypt (their key was not pinned)"
    );
}

#[test]
fn a_group_rolled_back_to_an_old_key_or_replaced_under_its_name_is_refused() {
    let env = Env::new();
    let (_, bob, carol) = ops_reading_prod_db(&env);
    put_as(&env, &bob, "later", b"later-secret");
    // The group's rows at epoch 1, as an insider keeps them.
    let old_group: Vec<Option<Vec<u8>>> = env.blobs("SELECT history FROM groups");
    let old: Vec<String> = env.column::<String>("SELECT recipient FROM groups");
    let old_digest: Vec<Option<Vec<u8>>> = env.blobs("SELECT members_digest FROM groups");
    let old_sig: Vec<Option<Vec<u8>>> = env.blobs("SELECT signature FROM groups");
    let members: Vec<Option<Vec<u8>>> =
        env.blobs("SELECT wrapped_identity FROM group_members ORDER BY user_id");
    let member_sigs: Vec<Option<Vec<u8>>> =
        env.blobs("SELECT signature FROM group_members ORDER BY user_id");
    let ids = env.column::<i64>("SELECT user_id FROM group_members ORDER BY user_id");
    let added = env.column::<i64>("SELECT added_at FROM group_members ORDER BY user_id");
    env.as_token(&bob, &["group", "remove", "ops", "carol"])
        .ok();
    // The insider puts epoch 1 back, carol's membership with it.
    env.exec(&format!(
        "UPDATE groups SET recipient = '{}', epoch = 1, history = {}, members_digest = {}, \
         signature = {}",
        old[0],
        env.blob(&hex(old_group[0].as_deref().unwrap_or_default())),
        env.blob(&hex(old_digest[0].as_ref().unwrap())),
        env.blob(&hex(old_sig[0].as_ref().unwrap())),
    ));
    env.exec("DELETE FROM group_members");
    for i in 0..ids.len() {
        env.exec(&format!(
            "INSERT INTO group_members (id, group_id, user_id, epoch, wrapped_identity, signature, \
             added_at) SELECT {}, id, {}, 1, {}, {}, {} FROM groups",
            50 + i,
            ids[i],
            env.blob(&hex(members[i].as_ref().unwrap())),
            env.blob(&hex(member_sigs[i].as_ref().unwrap())),
            added[i],
        ));
    }
    // bob's client saw epoch 2: nothing more is wrapped to the old key.
    let r = env.as_token(&bob, &["data", "share", "later", "--with", "@ops"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: group '@ops' holds the key of epoch 1, older than the epoch 2 you saw: it was changed outside zencrypt (restore the database from a backup)"
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_shares"),
        vec![1]
    );
    // A group made anew under a name bob used before is not the one he used.
    env.exec("DELETE FROM record_shares");
    env.exec("DELETE FROM group_members");
    env.exec("UPDATE groups SET name = 'old-ops'");
    env.as_token(&carol, &["group", "create", "ops"]).ok();
    let r = env.as_token(&bob, &["data", "share", "later", "--with", "@ops"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: group '@ops' is not the group of that name you used before: it was changed outside zencrypt (restore the database from a backup)"
    );
}

#[test]
fn a_manager_hands_a_group_over_and_every_member_follows() {
    let env = Env::new();
    let (alice, bob, carol) = ops_reading_prod_db(&env);
    // carol relies on the group before the hand-over: she pins bob as its manager.
    assert_eq!(get(&env, &carol, "bob:prod/db").ok().stdout, "db-secret-1");
    // bob manages @ops, so he cannot be removed yet.
    let r = env.as_token(&alice, &["user", "remove", "bob", "--yes"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "they manage @ops (they hand it to a member with `group transfer ops --to USER`, \
             who runs `group receive`)"
        ),
        "{}",
        r.stderr
    );
    // Only the manager offers it, and only to a member.
    let r = env.as_token(&carol, &["group", "transfer", "ops", "--to", "carol"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: permission denied: only the manager of group '@ops' (bob) changes its members \
         or hands it over\nhint: ask bob\n"
    );
    let r = env.as_token(&bob, &["group", "transfer", "ops", "--to", "alice"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: 'alice' is not a member of '@ops' with the key you added them with: add them \
         first (`group add ops alice`)"
    );
    let r = env.as_token(&bob, &["group", "transfer", "ops"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    for args in [
        &["group", "transfer", "ops", "--to", "@ops"][..],
        &["group", "add", "ops", "@ops"][..],
    ] {
        let r = env.as_token(&bob, args);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            "error: '@ops' is a group: a group's members and its manager are users"
        );
    }
    let carol_fp = env
        .as_token(&bob, &["user", "show", "carol", "--json"])
        .ok()
        .json()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let r = env.as_token(
        &bob,
        &[
            "group",
            "transfer",
            "@ops",
            "--to",
            "carol",
            "--fingerprint",
            "0000 0000 0000 0000 0000 0000 0000 0000",
        ],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        format!(
            "error: the key of 'carol' is now {carol_fp}, not the 0000 0000 0000 0000 0000 0000 \
             0000 0000 you confirmed: the group was not offered"
        )
    );
    let r = env.as_token(&carol, &["group", "show", "ops", "--json"]);
    assert_eq!(r.ok().json()["offered_to"], serde_json::Value::Null);
    // Offered, then withdrawn: nothing to take over.
    let r = env.as_token(&bob, &["group", "transfer", "ops", "--to", "carol"]);
    r.ok();
    assert_eq!(
        r.stderr,
        format!(
            "Offered @ops to carol (key {carol_fp}): they manage it once they run `zencrypt \
             group receive`; until then you do, and `group transfer ops --cancel` withdraws \
             the offer.\n"
        )
    );
    let r = env.as_token(&carol, &["group", "show", "ops", "--json"]);
    assert_eq!(r.ok().json()["offered_to"], "carol");
    assert_eq!(r.json()["manager"], "bob");
    let r = env.as_token(&bob, &["group", "transfer", "ops", "--cancel"]);
    assert_eq!(r.ok().stderr, "Withdrew the offer of @ops to carol.\n");
    let r = env.as_token(&carol, &["group", "receive"]);
    assert_eq!(r.ok().stdout, "No group is offered to you.\n");
    let r = env.as_token(&bob, &["group", "transfer", "ops", "--cancel"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    // Offered again; carol takes it over.
    env.as_token(
        &bob,
        &[
            "group",
            "transfer",
            "ops",
            "--to",
            "carol",
            "--fingerprint",
            &carol_fp,
        ],
    )
    .ok();
    let r = env.as_token(&carol, &["group", "receive"]);
    assert_eq!(
        r.ok().stdout,
        "You manage @ops now (handed over by bob; 2 member rows signed with your key).\n"
    );
    let audit = env.as_token(
        &alice,
        &["--json", "audit", "list", "--action", "group.receive"],
    );
    let rows = audit.ok().json();
    let last = rows.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["detail"]["group"], "ops");
    assert_eq!(last["detail"]["from"], "bob");
    // Every member follows the hand-over from the manager they pinned.
    for who in [&bob, &carol] {
        let r = env.as_token(who, &["group", "show", "ops", "--json"]);
        assert_eq!(r.ok().json()["manager"], "carol");
        assert_eq!(r.json()["offered_to"], serde_json::Value::Null);
        assert_eq!(get(&env, who, "bob:prod/db").ok().stdout, "db-secret-1");
    }
    // Only carol changes the members now; bob is an ordinary member.
    let r = env.as_token(&bob, &["group", "add", "ops", "alice"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: permission denied: only the manager of group '@ops' (carol) changes its members or hands it over"
    );
    env.as_token(&carol, &["group", "add", "ops", "alice"]).ok();
    assert_eq!(get(&env, &alice, "bob:prod/db").ok().stdout, "db-secret-1");
    env.as_token(&carol, &["group", "remove", "ops", "bob"])
        .ok();
    let r = env.as_token(&alice, &["user", "remove", "bob", "--yes"]);
    assert_eq!(r.code, 6, "{}", r.stderr);
    // What is left is bob's record, no longer the group.
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: cannot remove 'bob' yet: bob:prod/db is shared with @ops (`data transfer \
         bob:prod/db --to USER` by its owner or the group's manager, or `data unshare`)"
    );
    assert_eq!(get(&env, &alice, "bob:prod/db").ok().stdout, "db-secret-1");
}

#[test]
fn a_group_handed_back_or_forged_in_the_database_is_refused() {
    let env = Env::new();
    let (_, bob, carol) = ops_reading_prod_db(&env);
    assert_eq!(get(&env, &carol, "bob:prod/db").ok().stdout, "db-secret-1");
    // The rows before the hand-over, as an insider keeps them.
    let before_sig = env.blobs("SELECT signature FROM groups");
    let before_members = env.blobs("SELECT signature FROM group_members ORDER BY user_id");
    let users = env.column::<i64>("SELECT user_id FROM group_members ORDER BY user_id");
    let bob_id = user_id(&env, "bob");
    env.as_token(&bob, &["group", "transfer", "ops", "--to", "carol"])
        .ok();
    // A withdrawn offer put back by an insider: carol saw the withdrawal.
    let offer_row = env.blobs("SELECT signature FROM groups");
    let offer_links = env.blobs("SELECT handovers FROM groups");
    env.as_token(&bob, &["group", "transfer", "ops", "--cancel"])
        .ok();
    env.as_token(&carol, &["group", "show", "ops"]).ok();
    let kept_row = env.blobs("SELECT signature FROM groups");
    let kept_links = env.blobs("SELECT handovers FROM groups");
    let put = |sig: &Option<Vec<u8>>, links: &Option<Vec<u8>>| {
        env.exec(&format!(
            "UPDATE groups SET signature = {}, handovers = {}",
            env.blob(&hex(sig.as_ref().unwrap())),
            env.blob(&hex(links.as_ref().unwrap()))
        ))
    };
    put(&offer_row[0], &offer_links[0]);
    let r = env.as_token(&carol, &["group", "receive"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: group '@ops' was handed over 0 times, fewer than the 1 you saw: it was \
         changed outside zencrypt (restore the database from a backup)"
    );
    put(&kept_row[0], &kept_links[0]);
    env.as_token(&bob, &["group", "transfer", "ops", "--to", "carol"])
        .ok();
    // An offer changed in the database (here its last byte) breaks bob's signature.
    let offer = env.blobs("SELECT handovers FROM groups")[0]
        .clone()
        .unwrap();
    let mut changed = offer.clone();
    *changed.last_mut().unwrap() ^= 1;
    env.exec(&format!(
        "UPDATE groups SET handovers = {}",
        env.blob(&hex(&changed))
    ));
    let r = env.as_token(&carol, &["group", "receive"]);
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().next().unwrap(),
        "error: group '@ops' does not carry its manager's valid signature: it was changed \
         outside zencrypt (restore the database from a backup)"
    );
    env.exec(&format!(
        "UPDATE groups SET handovers = {}",
        env.blob(&hex(&offer))
    ));
    env.as_token(&carol, &["group", "receive"]).ok();
    assert_eq!(get(&env, &bob, "bob:prod/db").ok().stdout, "db-secret-1");
    // The insider puts the rows from before the hand-over back: bob managing, signed by
    // him. Both saw the hand-over, so both refuse it.
    env.exec(&format!(
        "UPDATE groups SET manager_id = {bob_id}, handovers = {}, signature = {}",
        env.blob(""),
        env.blob(&hex(before_sig[0].as_ref().unwrap()))
    ));
    for (user, sig) in users.iter().zip(&before_members) {
        env.exec(&format!(
            "UPDATE group_members SET signature = {} WHERE user_id = {user}",
            env.blob(&hex(sig.as_ref().unwrap()))
        ));
    }
    // (A withdrawn offer counts: it left a void link in its place.)
    for who in [&bob, &carol] {
        let r = env.as_token(who, &["group", "show", "ops"]);
        assert_eq!(r.code, 7, "{}", r.stderr);
        assert_eq!(
            r.stderr.lines().next().unwrap(),
            "error: group '@ops' was handed over 0 times, fewer than the 2 you saw: it was \
             changed outside zencrypt (restore the database from a backup)"
        );
    }
    let r = get(&env, &carol, "bob:prod/db");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(r.stdout.is_empty());
}
