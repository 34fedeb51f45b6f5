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

/// `whoami` names the database it would open: the `.env` file's, when that is trusted.
fn database_named(env: &Env, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.push("whoami");
    env.run(&all, b"")
}

#[test]
fn a_dotenv_file_is_loaded_only_when_it_is_the_users_own() {
    use std::os::unix::fs::{PermissionsExt, chown, symlink};
    let env = Env::new();
    let dotenv = env.dir.path().join(".env");
    let elsewhere = env.dir.path().join("from-dotenv.db");
    std::fs::write(&dotenv, format!("ZENCRYPT_DB={}\n", elsewhere.display())).unwrap();
    let set_mode =
        |m: u32| std::fs::set_permissions(&dotenv, std::fs::Permissions::from_mode(m)).unwrap();
    // Owned by the caller, 0600 or 0644: loaded.
    for m in [0o600, 0o644] {
        set_mode(m);
        let r = database_named(&env, &[]);
        assert_eq!(
            r.stderr,
            format!(
                "error: no database at {}\n{NO_DB_HINT}",
                elsewhere.display()
            )
        );
    }
    let hint = "hint: fix its owner or mode (chown, chmod go-w ./.env), or pass --env-file with a file of your own\n";
    // Writable by the group or by everyone: refused, whatever it says.
    for (m, shown) in [(0o620, "0620"), (0o646, "0646"), (0o666, "0666")] {
        set_mode(m);
        let r = database_named(&env, &[]);
        assert_eq!(r.code, 2, "mode {shown}");
        assert_eq!(
            r.stderr,
            format!(
                "error: refusing to load ./.env: it is writable by group or others (mode {shown})\n{hint}"
            )
        );
    }
    // Another user's file (this runs as root; 65534 is nobody): refused even at 0644.
    set_mode(0o644);
    if let Err(e) = chown(&dotenv, Some(65534), None) {
        eprintln!("note: skipping the other-owner cases: chown is not permitted here ({e})");
        return;
    }
    let me = effective_uid();
    let r = database_named(&env, &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: refusing to load ./.env: it belongs to uid 65534, not you (uid {me})\n{hint}"
        )
    );
    // --env-file gets the same check.
    let r = database_named(&env, &["--env-file", dotenv.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: refusing to load {}: it belongs to uid 65534, not you (uid {me})\nhint: fix its owner or mode (chown, chmod go-w {})\n",
            dotenv.display(),
            dotenv.display()
        )
    );
    // A link to a good file is refused too: the link's target is not what was checked.
    std::fs::remove_file(&dotenv).unwrap();
    let good = env.dir.path().join("good.env");
    std::fs::write(&good, format!("ZENCRYPT_DB={}\n", elsewhere.display())).unwrap();
    symlink(&good, &dotenv).unwrap();
    let r = database_named(&env, &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: refusing to load ./.env: it is a symbolic link\n{hint}")
    );
    // The good file itself, named with --env-file, loads.
    let r = database_named(&env, &["--env-file", good.to_str().unwrap()]);
    assert_eq!(
        r.stderr,
        format!(
            "error: no database at {}\n{NO_DB_HINT}",
            elsewhere.display()
        )
    );
    // A directory called .env (a Python virtualenv) is not a settings file: passed over.
    std::fs::remove_file(&dotenv).unwrap();
    std::fs::create_dir(&dotenv).unwrap();
    let r = database_named(&env, &[]);
    assert_eq!(
        r.stderr,
        format!("error: no database at {}\n{NO_DB_HINT}", env.db().display())
    );
}

/// The effective uid of this test process, from /proc (the tests do not link rustix).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}
