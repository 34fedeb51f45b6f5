//! Service accounts: `user add --service`, `service grant|ungrant|token|tokens|revoke|list`,
//! and reads with a service token.

use crate::common::*;
use serde_json::json;

/// alice's password, as `--password-stdin` reads it.
static ALICE_PW: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{}\n", pw("alice")));

/// alice (admin) with three records, bob (user), and the service account `ci` of alice's.
fn setup() -> Env {
    let env = Env::new();
    env.signup("alice");
    for (name, value) in [
        ("prod/db/password", "db-secret"),
        ("prod/api", "api-key"),
        ("dev/x", "dev-only"),
    ] {
        env.run(&["data", "put", "--name", name], value.as_bytes())
            .ok();
    }
    let r = env.run(&["user", "add", "--service", "ci"], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        "Added service account ci, owned by alice. It cannot log in: alice grants it records (`zencrypt service grant ci GLOB`) and issues its tokens (`zencrypt service token ci`).\n"
    );
    env
}

fn token(env: &Env, service: &str) -> String {
    let r = env.run(
        &[
            "service",
            "token",
            service,
            "--ttl",
            "1d",
            "--password-stdin",
        ],
        ALICE_PW.as_bytes(),
    );
    r.ok();
    let t = r.stdout.trim_end().to_string();
    assert!(t.starts_with("zst_"), "{}", r.stdout);
    assert_eq!(r.stdout, format!("{t}\n"), "the token alone on stdout");
    t
}

#[test]
fn a_token_reads_what_is_granted_and_nothing_else() {
    let env = setup();
    let r = env.run(
        &["service", "grant", "ci", "PROD/*", "--password-stdin"],
        ALICE_PW.as_bytes(),
    );
    r.ok();
    assert_eq!(
        r.stderr,
        "Granted 'PROD/*' to ci: it can read 2 record(s) through it now, and what you write under it later.\n"
    );
    let t = token(&env, "ci");
    let db = get(&env, &t, "prod/db/password");
    db.ok();
    assert_eq!(db.stdout, "db-secret");
    // Not granted, and not there at all, look the same.
    for missing in ["dev/x", "nothing"] {
        let r = get(&env, &t, missing);
        assert_eq!(r.code, 5);
        assert_eq!(r.stderr, format!("error: record '{missing}' not found\n"));
    }
    // By token too, and several at once with --json.
    let list = env.run(&["data", "list", "prod/api", "--json"], b"");
    let api_token = list.json()[0]["token"].as_str().unwrap().to_string();
    let r = env.as_token(
        &t,
        &["data", "get", &api_token, "prod/db/password", "--json"],
    );
    r.ok();
    let doc = r.json();
    assert_eq!(doc["records"][0]["value"], "api-key");
    assert_eq!(doc["records"][1]["value"], "db-secret");
    assert_eq!(doc["missing"], json!([]));

    // Anything else is refused, exit 4, and audited under the service's name.
    for args in [
        &["data", "list"][..],
        &["key", "list"],
        &["data", "put", "--name", "prod/new"],
        &["data", "update", "prod/api"],
        &["data", "rm", "prod/api", "--yes"],
        &["service", "token", "ci", "--password-stdin"],
    ] {
        let r = env.run_with(args, b"x", &[("ZENCRYPT_TOKEN", &t)]);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with(
                "error: permission denied: a service account only reads the records granted to it ("
            ),
            "{}",
            r.stderr
        );
    }
    let who = env.as_token(&t, &["whoami", "--json"]);
    who.ok();
    assert_eq!(who.json()["username"], "ci");
    assert_eq!(who.json()["role"], "service");

    let audit = env.run(
        &[
            "audit", "list", "--user", "ci", "--action", "data.get", "--json",
        ],
        b"",
    );
    let rows = audit.json();
    let ok: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .collect();
    assert_eq!(ok.len(), 4, "{rows:#}");
    assert!(ok.iter().all(|e| e["actor"] == "ci"));
    assert_eq!(
        ok[0]["detail"],
        json!({ "owner_id": 1, "found": 1, "missing": 0, "expired": 0 })
    );
    let usage = env.run(&["usage", "--by", "user", "--json"], b"");
    let by_user = usage.json();
    let ci = by_user
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"] == "ci")
        .expect("ci in the usage log");
    assert_eq!(ci["count"], 3, "{by_user:#}");
}

#[test]
fn later_writes_are_readable_and_an_ungrant_takes_them_back() {
    let env = setup();
    env.run(
        &["service", "grant", "ci", "prod/*", "--password-stdin"],
        ALICE_PW.as_bytes(),
    )
    .ok();
    let t = token(&env, "ci");
    // An update, a new record, a rollback and an import under the grant: all readable.
    env.run(&["data", "update", "prod/api"], b"api-key-2").ok();
    assert_eq!(get(&env, &t, "prod/api").ok().stdout, "api-key-2");
    env.run(&["data", "put", "--name", "prod/new"], b"fresh")
        .ok();
    assert_eq!(get(&env, &t, "prod/new").ok().stdout, "fresh");
    env.run(&["data", "rollback", "prod/api", "--to", "1"], b"")
        .ok();
    assert_eq!(get(&env, &t, "prod/api").ok().stdout, "api-key");
    env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            "--prefix",
            "prod/app/",
        ],
        b"TOKEN=imported\n",
    )
    .ok();
    assert_eq!(get(&env, &t, "prod/app/TOKEN").ok().stdout, "imported");
    // A protected record is never granted.
    let pw = env.dir.path().join("record.pw");
    std::fs::write(&pw, "record-password\n").unwrap();
    env.run(
        &[
            "data",
            "put",
            "--name",
            "prod/locked",
            "--protect",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        b"locked",
    )
    .ok();
    assert_eq!(get(&env, &t, "prod/locked").code, 5);
    // Deleted and restored.
    env.run(&["data", "rm", "prod/new"], b"").ok();
    let gone = get(&env, &t, "prod/new");
    assert_eq!(gone.code, 5, "{}", gone.stderr);
    env.run(&["data", "restore", "prod/new"], b"").ok();
    assert_eq!(get(&env, &t, "prod/new").ok().stdout, "fresh");

    let list = env.run(&["service", "list", "--json"], b"");
    let doc = list.json();
    assert_eq!(doc[0]["name"], "ci");
    assert_eq!(doc[0]["owner"], "alice");
    assert_eq!(doc[0]["grants"], json!(["prod/*"]));
    // db/password, api, new and app/TOKEN; not the protected one.
    assert_eq!(doc[0]["readable_records"], 4);

    let r = env.run(&["service", "ungrant", "ci", "prod/*"], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        "Took 'prod/*' back from ci: 4 record(s) are no longer readable to it. Values it read before stay read: rotate them at their source if that matters.\n"
    );
    assert_eq!(get(&env, &t, "prod/api").code, 5);
    env.run(&["data", "update", "prod/api"], b"api-key-3").ok();
    assert_eq!(get(&env, &t, "prod/api").code, 5);
    let again = env.run(&["service", "ungrant", "ci", "prod/*"], b"");
    assert_eq!(again.code, 5);
    assert_eq!(again.stderr, "error: 'prod/*' is not granted to 'ci'\n");
    // A narrower grant brings back exactly one.
    let r = env.run(
        &[
            "service",
            "grant",
            "ci",
            "prod/api",
            "--json",
            "--password-stdin",
        ],
        ALICE_PW.as_bytes(),
    );
    assert_eq!(
        r.json(),
        json!({ "service": "ci", "glob": "prod/api", "records": 1 })
    );
    assert_eq!(get(&env, &t, "prod/api").ok().stdout, "api-key-3");
    assert_eq!(get(&env, &t, "prod/db/password").code, 5);
    let dup = env.run(
        &["service", "grant", "ci", "prod/api", "--password-stdin"],
        ALICE_PW.as_bytes(),
    );
    assert_eq!(dup.code, 6);
    assert_eq!(dup.stderr, "error: 'prod/api' is already granted to 'ci'\n");
    // Everything checks out afterwards.
    let v = env.run(&["--json", "audit", "verify"], b"").ok().json();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn tokens_are_listed_revoked_and_expire() {
    let env = setup();
    env.run(
        &["service", "grant", "ci", "prod/api", "--password-stdin"],
        ALICE_PW.as_bytes(),
    )
    .ok();
    let first = token(&env, "ci");
    let second = token(&env, "ci");
    let tokens = env
        .run(&["service", "tokens", "ci", "--json"], b"")
        .ok()
        .json();
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    let ids: Vec<String> = tokens
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let first_id = ids
        .iter()
        .find(|id| first.starts_with(&format!("zst_{id}.")))
        .expect("the first token is listed")
        .clone();
    assert!(
        ids.iter()
            .any(|id| second.starts_with(&format!("zst_{id}.")))
    );
    assert!(
        !env.run(&["service", "tokens", "ci"], b"")
            .stdout
            .contains(&first[20..])
    );

    let r = env.run(&["service", "revoke", "ci", "--token", &first_id[..8]], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        format!("Revoked token {} of ci.\n", &first_id[..8])
    );
    let revoked = get(&env, &first, "prod/api");
    assert_eq!(revoked.code, 3);
    assert_eq!(
        revoked.stderr,
        "error: the service token has been revoked\nhint: its owner issues a new one: `zencrypt service token NAME`\n"
    );
    assert_eq!(get(&env, &second, "prod/api").ok().stdout, "api-key");
    let unknown = env.run(&["service", "revoke", "ci", "--token", "00000000"], b"");
    assert_eq!(unknown.code, 5);
    assert_eq!(
        unknown.stderr,
        "error: service account 'ci' has no token '00000000'\n"
    );

    // A token with a changed key does not open.
    let forged = format!(
        "{}{}",
        &second[..second.len() - 2],
        if second.ends_with("AA") { "AB" } else { "AA" }
    );
    let r = get(&env, &forged, "prod/api");
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: invalid session token\nhint: run `zencrypt login` for a new session (or unset ZENCRYPT_TOKEN if it is stale)\n"
    );

    // Disabling the service ends its tokens; so does `service revoke` of all.
    env.run(&["user", "disable", "ci"], b"").ok();
    assert_eq!(get(&env, &second, "prod/api").code, 3);
    env.run(&["user", "enable", "ci"], b"").ok();
    let third = token(&env, "ci");
    let r = env.run(&["service", "revoke", "ci", "--json"], b"");
    assert_eq!(r.json(), json!({ "service": "ci", "revoked_tokens": 1 }));
    assert_eq!(get(&env, &third, "prod/api").code, 3);

    // A token past its lifetime.
    let short = env.run(
        &["service", "token", "ci", "--ttl", "1s", "--password-stdin"],
        ALICE_PW.as_bytes(),
    );
    let short = short.ok().stdout.trim_end().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = get(&env, &short, "prod/api");
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.starts_with("error: the service token expired at "),
        "{}",
        r.stderr
    );

    let bad_ttl = env.run(
        &[
            "service",
            "token",
            "ci",
            "--ttl",
            "500d",
            "--password-stdin",
        ],
        ALICE_PW.as_bytes(),
    );
    assert_eq!(bad_ttl.code, 2);
    assert_eq!(bad_ttl.stderr, "error: --ttl must be between 1s and 400d\n");
}

#[test]
fn only_the_owner_grants_and_a_service_never_logs_in() {
    let env = setup();
    env.run(
        &["signup", "--username", "bob", "--password-stdin"],
        format!("{}\n", pw("bob")).as_bytes(),
    )
    .ok();
    let bob = env.token("bob");
    let bob_pw = format!("{}\n", pw("bob"));
    env.login("alice");
    let r = env.run_with(
        &["service", "grant", "ci", "*", "--password-stdin"],
        bob_pw.as_bytes(),
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 4);
    assert_eq!(
        r.stderr,
        "error: permission denied: service.grant of service account 'ci' requires the owner role\nhint: ask an administrator for a role that allows it\n"
    );
    let r = env.run_with(
        &["service", "token", "ci", "--password-stdin"],
        bob_pw.as_bytes(),
        &[("ZENCRYPT_TOKEN", &bob)],
    );
    assert_eq!(r.code, 4);
    let r = env.as_token(&bob, &["user", "add", "--service", "bots"]);
    assert_eq!(r.code, 4);
    // An admin makes a service for bob; bob's grants cover bob's records only.
    env.run(
        &["user", "add", "--service", "bobs-ci", "--owner", "bob"],
        b"",
    )
    .ok();
    env.run_with(
        &["data", "put", "--name", "prod/db/password"],
        b"bobs-secret",
        &[("ZENCRYPT_TOKEN", &bob)],
    )
    .ok();
    env.run_with(
        &["service", "grant", "bobs-ci", "*", "--password-stdin"],
        bob_pw.as_bytes(),
        &[("ZENCRYPT_TOKEN", &bob)],
    )
    .ok();
    let t = env
        .run_with(
            &["service", "token", "bobs-ci", "--password-stdin"],
            bob_pw.as_bytes(),
            &[("ZENCRYPT_TOKEN", &bob)],
        )
        .ok()
        .stdout
        .trim_end()
        .to_string();
    assert_eq!(get(&env, &t, "prod/db/password").ok().stdout, "bobs-secret");
    // The admin sees bob's service, but not its grants (bound under bob's key).
    let list = env.run(&["service", "list", "--json"], b"").ok().json();
    let bobs = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bobs-ci")
        .unwrap();
    assert_eq!(bobs["owner"], "bob");
    assert_eq!(bobs["grants"], serde_json::Value::Null);

    let login = env.run(
        &["login", "--username", "ci", "--password-stdin"],
        b"anything-at-all\n",
    );
    assert_eq!(login.code, 3);
    assert_eq!(login.stderr, "error: invalid username or password\n");
    let role = env.run(&["user", "role", "ci", "admin"], b"");
    assert_eq!(role.code, 2);
    assert_eq!(
        role.stderr,
        "error: 'ci' is a service account: service accounts and people do not change into each other\n"
    );
    let users = env.run(&["user", "list", "--json"], b"").ok().json();
    let ci = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ci")
        .unwrap();
    assert_eq!(ci["role"], "service");
}

#[test]
fn a_database_writer_cannot_grant_or_swap_what_a_service_reads() {
    let env = setup();
    env.run(
        &["service", "grant", "ci", "prod/api", "--password-stdin"],
        ALICE_PW.as_bytes(),
    )
    .ok();
    let t = token(&env, "ci");
    // A grant row inserted by hand has no valid binding: alice's next write refuses it.
    env.exec(&format!(
        "INSERT INTO service_grants (id, service_id, owner_id, pattern, created_at, row_mac) \
         VALUES (99, 2, 1, '*', 0, {})",
        env.blob(&"00".repeat(16))
    ));
    let r = env.run(&["data", "update", "prod/db/password"], b"changed");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: service_grants row 99 failed its integrity check: it was changed outside zencrypt (restore the database from a backup)\n"
    );
    env.exec("DELETE FROM service_grants WHERE id = 99");
    // The data key wrapped for prod/api, moved onto another record, does not open it.
    env.exec(
        "UPDATE service_record_keys SET record_id = (SELECT id FROM records WHERE name = 'dev/x')",
    );
    let r = get(&env, &t, "dev/x");
    assert_eq!(r.code, 7);
    assert!(
        r.stderr.starts_with(
            "error: records row 3 does not match the data key its owner gave this service"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn grants_and_tokens_need_the_password_and_recovery_ends_the_tokens() {
    let env = setup();
    for args in [
        &["service", "grant", "ci", "*"][..],
        &["service", "token", "ci", "--password-stdin"],
    ] {
        let mut with = args.to_vec();
        with.push("--password-stdin");
        let r = env.run(&with, b"not-alices-password\n");
        assert_eq!(r.code, 3, "{args:?}");
        assert_eq!(r.stderr, "error: invalid password\n");
    }
    let list = env.run(&["service", "list", "--json"], b"").ok().json();
    assert_eq!(list[0]["grants"], json!([]));
    assert_eq!(list[0]["tokens"], json!([]));
    env.run(
        &["service", "grant", "ci", "prod/api", "--password-stdin"],
        ALICE_PW.as_bytes(),
    )
    .ok();
    let t = token(&env, "ci");
    // A destroyed key takes the records under it from the service too.
    env.run(&["key", "disable", "default"], b"").ok();
    assert_eq!(get(&env, &t, "prod/api").code, 5);
    env.run(&["key", "enable", "default"], b"").ok();
    assert_eq!(get(&env, &t, "prod/api").ok().stdout, "api-key");
    env.run(&["data", "rm", "prod/api"], b"").ok();
    assert_eq!(get(&env, &t, "prod/api").code, 5);
    env.run(&["data", "restore", "prod/api"], b"").ok();
    assert_eq!(get(&env, &t, "prod/api").ok().stdout, "api-key");
    // Recovering the account ends the tokens of its services.
    let signup_key = env.run(
        &["account", "recovery-key", "--rotate", "--password-stdin"],
        ALICE_PW.as_bytes(),
    );
    let key = signup_key.ok().stdout.trim_end().to_string();
    env.run(
        &[
            "account",
            "recover",
            "--username",
            "alice",
            "--password-stdin",
        ],
        format!("{key}\nalices-new-password\n").as_bytes(),
    )
    .ok();
    let r = get(&env, &t, "prod/api");
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: the service token has been revoked\nhint: its owner issues a new one: `zencrypt service token NAME`\n"
    );
    let logout = env.as_token(&t, &["logout", "--all"]);
    assert_eq!(logout.code, 3);
}
