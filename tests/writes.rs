//! Write shares: a recipient allowed to write replaces a shared record's value with a
//! write signed by their key, which every recipient reads at once and the owner's client
//! takes in as the record's next version; a recipient who may only read gets nothing
//! accepted, whatever they put in the database.

use crate::common::*;

fn update(env: &Env, token: &str, reference: &str, value: &[u8]) -> Run {
    env.run_with(
        &["data", "update", reference],
        value,
        &[("ZENCRYPT_TOKEN", token)],
    )
}

/// The audit rows of `action` the holder of `token` can see, newest first.
fn audited(env: &Env, token: &str, action: &str) -> Vec<serde_json::Value> {
    audit_rows(env, token, &["--action", action])
}

/// alice stores prod/db ("v1") and shares it with bob to write and with carol to read.
fn shared_for_writing(env: &Env) -> (String, String, String) {
    let (alice, bob, carol) = three_users(env);
    put_as(env, &alice, "prod/db", b"v1");
    let r = env.as_token(
        &alice,
        &["data", "share", "prod/db", "--with", "bob", "--write"],
    );
    r.ok();
    assert!(
        r.stderr.ends_with(
            "Shared prod/db with bob (read and write). They read it as:\n  alice:prod/db\n\
             and replace its value with `zencrypt data update alice:prod/db`; your client\n\
             makes each such write the record's next version at your next command.\n"
        ),
        "{}",
        r.stderr
    );
    env.as_token(&alice, &["data", "share", "prod/db", "--with", "carol"])
        .ok();
    (alice, bob, carol)
}

#[test]
fn a_writer_updates_a_shared_record_and_everyone_reads_it_then_the_owner_takes_it_in() {
    let env = Env::new();
    let (alice, bob, carol) = shared_for_writing(&env);
    let r = update(&env, &bob, "alice:prod/db", b"v2");
    r.ok();
    assert_eq!(
        r.stderr,
        "Wrote alice:prod/db as version 2: everyone it is shared with reads it now;\n\
         alice's client makes it the record's version at alice's next command.\n"
    );
    // Every recipient reads the new value at once, before alice does anything.
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v2");
    assert_eq!(get(&env, &bob, "alice:prod/db").ok().stdout, "v2");
    let r = env.as_token(&carol, &["data", "get", "alice:prod/db", "--json"]);
    assert_eq!(r.ok().json()["records"][0]["version"], 2);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![1]
    );
    // alice's next command takes it in as version 2 under her own key, audited.
    assert_eq!(get(&env, &alice, "prod/db").ok().stdout, "v2");
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![0]
    );
    assert_eq!(
        env.column::<i64>("SELECT version FROM records WHERE name = 'prod/db'"),
        vec![2]
    );
    let taken = audited(&env, &alice, "data.take");
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["detail"]["by"], "bob");
    assert_eq!(taken[0]["detail"]["taken"], true);
    assert_eq!(taken[0]["detail"]["version"], 2);
    // Still readable by both through shares of version 2, and history keeps version 1.
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v2");
    let r = env.as_token(&alice, &["data", "get", "prod/db", "--version", "1"]);
    assert_eq!(r.ok().stdout, "v1");
    // bob's listing says he may write; carol's says she may only read.
    let r = env.as_token(&bob, &["data", "list", "--shared-with-me", "--json"]);
    assert_eq!(r.ok().json()[0]["write"], true);
    let r = env.as_token(&carol, &["data", "list", "--shared-with-me", "--json"]);
    assert_eq!(r.ok().json()[0]["write"], false);
    let r = env.as_token(&alice, &["data", "list", "--shared"]);
    let lines: Vec<&str> = r.ok().stdout.lines().collect();
    assert!(lines[0].starts_with("TOKEN"), "{}", r.stdout);
    assert!(lines[0].contains("  ACCESS  "), "{}", r.stdout);
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    // A write over a version that moved on is refused with --if-version.
    let r = env.run_with(
        &["data", "update", "alice:prod/db", "--if-version", "1"],
        b"v3",
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr
            .starts_with("error: record 'alice:prod/db' is at version 2, not 1\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_reader_cannot_write_and_a_forged_or_changed_write_is_refused_and_dropped() {
    let env = Env::new();
    let (alice, bob, carol) = shared_for_writing(&env);
    // carol may only read.
    let r = update(&env, &carol, "alice:prod/db", b"evil");
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: 'alice:prod/db' is shared with you to read only: ask alice to share it \
             with --write\n"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![0]
    );
    // bob writes; an insider then says carol wrote it (she holds the data key, but no
    // grant to write): every reader passes over it, and alice's client drops it.
    update(&env, &bob, "alice:prod/db", b"v2").ok();
    let carol_id = user_id(&env, "carol");
    env.exec(&format!("UPDATE record_writes SET writer_id = {carol_id}"));
    assert_eq!(get(&env, &bob, "alice:prod/db").ok().stdout, "v1");
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v1");
    assert_eq!(get(&env, &alice, "prod/db").ok().stdout, "v1");
    let taken = audited(&env, &alice, "data.take");
    assert_eq!(taken[0]["detail"]["taken"], false);
    assert_eq!(taken[0]["detail"]["by"], "carol");
    assert_eq!(taken[0]["detail"]["reason"], "not allowed");
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![0]
    );
    // A write whose ciphertext was changed does not verify under bob's key (which carol
    // pinned when she read his last write).
    update(&env, &bob, "alice:prod/db", b"v2").ok();
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v2");
    let ct = env.blob_of("SELECT ciphertext FROM record_writes");
    let mut changed = ct.clone();
    let last = changed.len() - 1;
    changed[last] ^= 1;
    env.exec(&format!(
        "UPDATE record_writes SET ciphertext = {}",
        env.blob(&hex(&changed))
    ));
    let r = get(&env, &carol, "alice:prod/db");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: the new value of 'alice:prod/db' said to be written by bob does not carry \
             their valid signature: it was changed outside zencrypt\n"
        ),
        "{}",
        r.stderr
    );
    // The changed write stands in nobody's way: bob's next write replaces it.
    let r = update(&env, &bob, "alice:prod/db", b"v3");
    assert_eq!(r.ok().stdout, "");
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v3");
    assert_eq!(get(&env, &alice, "prod/db").ok().stdout, "v3");
}

#[test]
fn narrowing_a_write_share_leaves_the_old_grant_behind() {
    let env = Env::new();
    let (alice, bob, carol) = shared_for_writing(&env);
    let grant = env.blob_of("SELECT grant_signature FROM record_shares WHERE can_write = 1");
    let signature = env.blob_of("SELECT signature FROM record_shares WHERE can_write = 1");
    let wrapped = env.blob_of("SELECT wrapped_dek FROM record_shares WHERE can_write = 1");
    let r = env.as_token(&alice, &["data", "share", "prod/db", "--with", "bob"]);
    r.ok();
    assert!(
        r.stderr
            .starts_with("Changed the share of prod/db with bob (read-only)."),
        "{}",
        r.stderr
    );
    // Narrowing made version 2, so the write grant signed for version 1 no longer counts.
    assert_eq!(
        env.column::<i64>("SELECT version FROM records WHERE name = 'prod/db'"),
        vec![2]
    );
    let r = update(&env, &bob, "alice:prod/db", b"evil");
    assert_eq!(r.code, 6, "{}", r.stderr);
    // An insider puts the old write grant back: it is for version 1, so bob still may
    // not write, and the readers see the record as it is.
    let bob_id = user_id(&env, "bob");
    env.exec(&format!(
        "UPDATE record_shares SET can_write = 1, version = 1, grant_signature = {}, \
         signature = {}, wrapped_dek = {} WHERE recipient_id = {bob_id}",
        env.blob(&hex(&grant)),
        env.blob(&hex(&signature)),
        env.blob(&hex(&wrapped))
    ));
    let r = update(&env, &bob, "alice:prod/db", b"evil");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: the share of 'alice:prod/db' opens version 1, not the current version 2"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![0]
    );
    assert_eq!(get(&env, &carol, "alice:prod/db").ok().stdout, "v1");
    // alice's client sees that the share set is not the one she made.
    let r = env.as_token(
        &alice,
        &["data", "share", "prod/db", "--with", "bob", "--write"],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
}

#[test]
fn a_group_allowed_to_write_has_its_members_writes_taken_in() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.as_token(&bob, &["group", "create", "ops"]).ok();
    env.as_token(&bob, &["group", "add", "@ops", "carol"]).ok();
    put_as(&env, &alice, "prod/api", b"k1");
    env.as_token(
        &alice,
        &["data", "share", "prod/api", "--with", "@ops", "--write"],
    )
    .ok();
    update(&env, &carol, "alice:prod/api", b"k2").ok();
    assert_eq!(get(&env, &bob, "alice:prod/api").ok().stdout, "k2");
    assert_eq!(get(&env, &alice, "prod/api").ok().stdout, "k2");
    let taken = audited(&env, &alice, "data.take");
    assert_eq!(taken[0]["detail"]["by"], "carol");
    // Once carol leaves the group, her writes are refused.
    env.as_token(&bob, &["group", "remove", "@ops", "carol"])
        .ok();
    let r = update(&env, &carol, "alice:prod/api", b"k3");
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert_eq!(get(&env, &bob, "alice:prod/api").ok().stdout, "k2");
}

#[test]
fn a_key_shared_for_writing_encrypts_for_its_owner_and_a_read_share_does_not() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    env.as_token(&alice, &["key", "create", "deploy"]).ok();
    let r = env.as_token(
        &alice,
        &["key", "share", "deploy", "--with", "bob", "--write"],
    );
    r.ok();
    assert!(
        r.stderr
            .contains("\nShared key deploy with bob (decrypt and encrypt): version(s) 1;"),
        "{}",
        r.stderr
    );
    env.as_token(&alice, &["key", "share", "deploy", "--with", "carol"])
        .ok();
    let file = encrypt_as(&env, &bob, &["--key", "alice:deploy"], "m.zc", b"from bob");
    let r = env.as_token(&alice, &["decrypt", &file]);
    assert_eq!(r.ok().stdout, "from bob");
    let r = env.as_token(&carol, &["decrypt", &file]);
    assert_eq!(r.ok().stdout, "from bob");
    let out = env.dir.path().join("c.zc");
    let r = env.run_with(
        &[
            "encrypt",
            "--key",
            "alice:deploy",
            "-o",
            out.to_str().unwrap(),
        ],
        b"from carol",
        &[("ZENCRYPT_TOKEN", &carol)],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "error: key 'alice:deploy' is shared with you to decrypt only: ask alice to share \
             it with --write to encrypt with it\n"
        ),
        "{}",
        r.stderr
    );
    assert!(!out.exists());
    // After a rotation bob encrypts with the new version.
    env.as_token(&alice, &["key", "rotate", "deploy"]).ok();
    let file = encrypt_as(&env, &bob, &["--key", "alice:deploy"], "m2.zc", b"again");
    let r = env.as_token(&alice, &["decrypt", &file]);
    assert_eq!(r.ok().stdout, "again");
    let encrypted = audit_rows(&env, &bob, &["--action", "crypto.encrypt"]);
    let versions: Vec<_> = encrypted
        .iter()
        .map(|e| e["detail"]["version"].clone())
        .collect();
    assert_eq!(versions, [serde_json::json!(1), serde_json::json!(2)]);
}

#[test]
fn a_write_that_cannot_be_taken_in_yet_waits_without_holding_up_the_owner() {
    let env = Env::new();
    let (alice, bob, _carol) = three_users(&env);
    // alice's key rotates every second and is shared with carol; prod/db is under it and
    // bob may write it.
    env.as_token(&alice, &["key", "create", "fast", "--rotate-every", "1s"])
        .ok();
    env.run_with(
        &["data", "put", "--name", "prod/db", "--key", "fast", "-q"],
        b"v1",
        &[("ZENCRYPT_TOKEN", &alice)],
    )
    .ok();
    env.as_token(&alice, &["key", "share", "fast", "--with", "carol"])
        .ok();
    env.as_token(
        &alice,
        &["data", "share", "prod/db", "--with", "bob", "--write"],
    )
    .ok();
    update(&env, &bob, "alice:prod/db", b"v2").ok();
    // The rotation is due, and carol's key in the database is no longer the one alice
    // pinned: taking the write in would rotate the key and fail on carol's share.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (mut bobs, mut carols) = (None, None);
    env.rebind_user("bob", |u| bobs = u.keys.clone());
    env.rebind_user("carol", |u| {
        carols = u.keys.clone();
        u.keys = bobs.clone();
    });
    // alice's commands still run; the write waits, and bob still reads it.
    let r = env.as_token(&alice, &["data", "list", "--json"]);
    assert_eq!(r.ok().json()[0]["version"], 1);
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM record_writes"),
        vec![1]
    );
    assert!(audit_rows(&env, &alice, &["--action", "data.take"]).is_empty());
    assert_eq!(get(&env, &bob, "alice:prod/db").ok().stdout, "v2");
    // Once carol's key is the one alice pinned again, alice's next command takes it in.
    env.rebind_user("carol", |u| u.keys = carols.clone());
    let r = env.as_token(&alice, &["data", "list", "--json"]);
    assert_eq!(r.ok().json()[0]["version"], 2);
    let taken = audit_rows(&env, &alice, &["--action", "data.take"]);
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0]["detail"]["taken"], true);
    assert_eq!(get(&env, &alice, "prod/db").ok().stdout, "v2");
}
