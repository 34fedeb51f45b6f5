//! The local environment the binary runs in: which database it may create, which `.env`
//! it trusts, what `-o` may replace, signals, core dumps and what reaches a terminal.

mod common;
use common::*;

const NO_DB_HINT: &str =
    "hint: run `zencrypt signup` to create one, or point --db/ZENCRYPT_DB at an existing vault\n";

#[test]
fn only_signup_creates_a_database() {
    let env = Env::new();
    let dir = env.dir.path().join("typo");
    let db = dir.join("z.db");
    let db_arg = db.to_str().unwrap();
    for args in [
        vec!["--db", db_arg, "whoami"],
        vec![
            "--db",
            db_arg,
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        vec!["--db", db_arg, "data", "list"],
        vec!["--db", db_arg, "db", "status"],
    ] {
        let r = env.run(&args, b"alice-correct-horse\n");
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!("error: no database at {}\n{NO_DB_HINT}", db.display()),
            "{args:?}"
        );
        assert!(!dir.exists(), "{args:?} created {}", dir.display());
    }
    // The default location is not created either, nor the secrets beside it.
    let r = env.run(&["whoami"], b"");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!("error: no database at {}\n{NO_DB_HINT}", env.db().display())
    );
    assert!(!env.data_dir().exists());
    let r = env.run(&["--json", "whoami"], b"");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("\"code\":\"no_database\""),
        "{}",
        r.stderr
    );
    // Commands that need no vault work without one.
    let r = env.run(&["hash"], b"abc");
    r.ok();
    assert_eq!(
        r.stdout,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
    );
    env.run(&["completions", "bash"], b"").ok();
    assert!(!env.data_dir().exists());
    // signup creates it, and then the others work.
    let r = env.run(
        &[
            "--db",
            db_arg,
            "signup",
            "--username",
            "alice",
            "--password-stdin",
        ],
        b"alice-correct-horse\n",
    );
    r.ok();
    assert!(db.is_file());
    env.run(&["--db", db_arg, "whoami"], b"").ok();
}
