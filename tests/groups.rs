//! Groups: a keypair per group wrapped to each member, managed by its creator; records
//! and keys shared with `@group`; removing a member replaces the group's keypair and
//! re-encrypts what was shared with it.

use crate::common::*;

fn put_as(env: &Env, token: &str, name: &str, value: &[u8]) -> String {
    let r = env.run_with(
        &["data", "put", "--name", name, "-q"],
        value,
        &[("ZENCRYPT_TOKEN", token)],
    );
    r.ok();
    r.stdout.trim().to_string()
}

/// alice (the installation's admin), bob and carol, logged in.
fn three_users(env: &Env) -> (String, String, String) {
    env.signup("alice");
    env.signup("bob");
    env.signup("carol");
    (env.token("alice"), env.token("bob"), env.token("carol"))
}

fn get(env: &Env, token: &str, reference: &str) -> Run {
    env.as_token(token, &["data", "get", reference])
}

#[test]
fn a_group_reads_what_is_shared_with_it_and_a_removed_member_loses_it() {
    let env = Env::new();
    let (alice, bob, carol) = three_users(&env);
    // bob makes @ops and adds carol; alice, the admin, is not a member.
    let r = env.as_token(&bob, &["group", "create", "ops", "--json"]);
    r.ok();
    assert_eq!(r.json()["members"], serde_json::json!(["bob"]));
    assert_eq!(r.json()["epoch"], 1);
    let r = env.as_token(&bob, &["group", "add", "@ops", "carol"]);
    r.ok();
    println!("{}", r.stderr);
    // Shares with the group from the manager and from a member.
    put_as(&env, &bob, "prod/db", b"db-secret-1");
    put_as(&env, &carol, "ci/token", b"ci-secret-1");
    let r = env.as_token(&bob, &["data", "share", "prod/db", "--with", "@ops"]);
    r.ok();
    println!("{}", r.stderr);
    env.as_token(&carol, &["data", "share", "ci/token", "--with", "@ops"])
        .ok();
    assert_eq!(get(&env, &carol, "bob:prod/db").ok().stdout, "db-secret-1");
    assert_eq!(get(&env, &bob, "carol:ci/token").ok().stdout, "ci-secret-1");
    let r = env.as_token(&carol, &["data", "list", "--shared-with-me"]);
    println!("{}", r.ok().stdout);
    let r = env.as_token(&carol, &["group", "show", "ops"]);
    println!("{}", r.ok().stdout);
    let r = env.as_token(&alice, &["group", "list"]);
    println!("{}", r.ok().stdout);
    // The admin reads nothing shared with the group, and cannot join it.
    let r = get(&env, &alice, "bob:prod/db");
    assert_eq!(r.code, 5, "{}", r.stderr);
    let r = env.as_token(&alice, &["group", "add", "ops", "alice"]);
    println!("{} {}", r.code, r.stderr);
    // bob removes carol.
    let r = env.as_token(&bob, &["group", "remove", "ops", "carol"]);
    r.ok();
    println!("{}", r.stderr);
    let r = get(&env, &carol, "bob:prod/db");
    println!("{} {}", r.code, r.stderr);
    assert_eq!(get(&env, &bob, "carol:ci/token").ok().stdout, "ci-secret-1");
    // carol's next command re-encrypts her record for the group's new key.
    let r = env.as_token(&carol, &["whoami"]);
    r.ok();
    assert_eq!(get(&env, &bob, "carol:ci/token").ok().stdout, "ci-secret-1");
    let r = env.as_token(
        &alice,
        &["audit", "list", "--action", "group.rekey", "--json"],
    );
    println!("{}", r.stdout);
    let r = env.as_token(&alice, &["audit", "verify"]);
    println!("{} {} {}", r.code, r.stdout, r.stderr);
}
