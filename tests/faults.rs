//! Faults: a full disk, a file size limit, a read-only database file, bad `.env`
//! values and a wrong audit key. Each is a clear one-line error with its exit code, and
//! afterwards the database holds exactly what it held before.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// What must survive a fault: the record list, one value, the audit row count.
fn snapshot(run: &dyn Fn(&[&str]) -> Run) -> (String, String, i64) {
    let list = run(&["data", "list", "--json"]);
    list.ok();
    let value = run(&["data", "get", "kept"]);
    value.ok();
    let status = run(&["db", "status", "--json"]);
    status.ok();
    (
        list.stdout,
        value.stdout,
        status.json()["audit_entries"].as_i64().unwrap(),
    )
}

fn assert_chain_intact(run: &dyn Fn(&[&str]) -> Run) {
    let v = run(&["audit", "verify", "--json"]);
    v.ok();
    assert_eq!(v.json()["ok"], true);
}

/// A private mount namespace with a small tmpfs at `dir`, kept alive by a holder process;
/// commands enter it with nsenter. The mount vanishes with the holder.
struct SmallDisk {
    holder: Child,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=\"$1\",mode=0700 tmpfs \"$2\" && echo ready && exec sleep 600")
            .args(["sh", size])
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line, "ready\n",
            "could not mount a tmpfs in a mount namespace"
        );
        SmallDisk { holder }
    }

    fn pid(&self) -> String {
        self.holder.id().to_string()
    }

    /// `path` as seen inside the namespace.
    fn inside(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{}", self.pid(), path.display()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

#[test]
fn a_full_disk_fails_the_write_and_loses_nothing() {
    if !is_root() {
        // Mounting a tmpfs needs root; the file-size-limit test below covers the same
        // path for everyone else.
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let env0 = Env::new();
    let mnt = env0.dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let db = mnt.join("z.db");
    let env = env0.with("ZENCRYPT_DB", db.to_str().unwrap());
    let disk = SmallDisk::mount(&mnt, "1m");
    let pid = disk.pid();
    let ns = ["nsenter", "-t", pid.as_str(), "-m", "--"];
    let run = |args: &[&str]| env.run_wrapped(&ns, args, b"");
    let signup = env.run_wrapped(
        &ns,
        &["signup", "--username", "alice", "--password-stdin"],
        format!("{}\n", pw("alice")).as_bytes(),
    );
    signup.ok();
    env.run_wrapped(&ns, &["data", "put", "--name", "kept"], b"precious")
        .ok();
    let before = snapshot(&run);

    // Fill the disk but for a little room (enough to open the database), then try to
    // store more than is left.
    let filler = disk.inside(&mnt.join("filler"));
    let mut f = std::fs::File::create(&filler).unwrap();
    while f.write_all(&[0u8; 16 * 1024]).is_ok() {}
    let full = f.metadata().unwrap().len();
    f.set_len(full - 96 * 1024).unwrap();
    drop(f);
    let big = vec![b'x'; 256 * 1024];
    let r = env.run_wrapped(&ns, &["data", "put", "--name", "big"], &big);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: the disk holding the database at {} is full; nothing was written\n",
            db.display()
        )
    );
    assert!(r.stdout.is_empty());

    // With space again, everything is as it was and the database works.
    std::fs::remove_file(&filler).unwrap();
    let after = snapshot(&run);
    assert_eq!(after.0, before.0, "the record list changed");
    assert_eq!(after.1, "precious");
    assert_eq!(run(&["data", "get", "big"]).code, 5);
    assert_chain_intact(&run);
    env.run_wrapped(&ns, &["data", "put", "--name", "big"], &big)
        .ok();
    assert_eq!(run(&["data", "get", "big"]).stdout.len(), big.len());
}

// About the file: a file size limit stops the growth of the database file.
#[test]
fn a_file_size_limit_fails_the_write_and_loses_nothing() {
    let env = Env::sqlite();
    env.signup("alice");
    env.run(&["data", "put", "--name", "kept"], b"precious")
        .ok();
    let run = |args: &[&str]| env.run(args, b"");
    let before = snapshot(&run);
    // `ulimit -f` in 1 KiB blocks; SIGXFSZ ignored so the write fails with EFBIG.
    let limited = [
        "/bin/sh",
        "-c",
        "trap '' XFSZ; ulimit -f 1024; exec \"$0\" \"$@\"",
    ];
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = env.run_wrapped(&limited, &["data", "put", "--name", "big"], &big);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: an I/O error stopped the database at {} (a full disk, a file size limit or a failing device); no change was committed\n",
            env.db().display()
        )
    );
    let after = snapshot(&run);
    assert_eq!(after.0, before.0, "the record list changed");
    assert_eq!(after.1, "precious");
    assert_eq!(run(&["data", "get", "big"]).code, 5);
    assert_chain_intact(&run);
}

// About the file: the database file is made read-only.
#[test]
fn a_read_only_database_file_is_a_clear_error_and_stays_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    env.signup("alice");
    env.run(&["data", "put", "--name", "kept"], b"precious")
        .ok();
    env.run(&["key", "create", "k"], b"").ok();
    let run = |args: &[&str]| env.run(args, b"");
    let before = snapshot(&run);
    let bytes_before = std::fs::read(env.db()).unwrap();
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o444)).unwrap();
    // Root ignores file modes unless it gives up the capability that overrides them.
    let wrapper: &[&str] = if is_root() {
        &[
            "setpriv",
            "--bounding-set",
            "-dac_override,-dac_read_search",
            "--",
        ]
    } else {
        &["env", "--"]
    };
    let expected = format!(
        "error: the database at {} is read-only; check the permissions of the file and its directory (nothing was written)\n",
        env.db().display()
    );
    for (args, stdin) in [
        (&["data", "put", "--name", "new"][..], &b"v"[..]),
        (&["data", "get", "kept"][..], &b""[..]),
        (&["key", "rotate", "k"][..], &b""[..]),
        (&["encrypt", "--key", "k"][..], &b"plain"[..]),
    ] {
        let r = env.run_wrapped(wrapper, args, stdin);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr, expected, "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?} printed {}", r.stdout);
    }
    assert_eq!(std::fs::read(env.db()).unwrap(), bytes_before);
    std::fs::set_permissions(env.db(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let after = snapshot(&run);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, "precious");
    // Only the snapshot's own reads (list, get, status) were audited in between.
    assert_eq!(after.2, before.2 + 3);
    assert_chain_intact(&run);
}

// About the data directory's files: it sets ZENCRYPT_AUDIT_KEY in .env and loosens audit.key, where the PostgreSQL run passes the key in the environment.
#[test]
fn bad_env_values_are_exit_2_and_change_nothing() {
    let env = Env::sqlite();
    env.signup("alice");
    env.run(&["data", "put", "--name", "kept"], b"precious")
        .ok();
    let run = |args: &[&str]| env.run(args, b"");
    let before = snapshot(&run);
    let dotenv = env.dir.path().join(".env");
    let cases: [(&[u8], &str); 8] = [
        (
            b"ZENCRYPT_SESSION_TTL=forever\n",
            "ZENCRYPT_SESSION_TTL: invalid duration 'forever' (use e.g. 8h)",
        ),
        (
            b"ZENCRYPT_SESSION_TTL=0s\n",
            "ZENCRYPT_SESSION_TTL must be between 1s and 30d",
        ),
        (
            b"ZENCRYPT_SIGNUP=sometimes\n",
            "ZENCRYPT_SIGNUP must be open, admin-only or closed, not 'sometimes'",
        ),
        (
            b"ZENCRYPT_JWT_SECRET=short\n",
            "ZENCRYPT_JWT_SECRET is too short: it must be at least 32 bytes",
        ),
        (
            b"ZENCRYPT_AUDIT_KEY=short\n",
            "ZENCRYPT_AUDIT_KEY is too short: it must be at least 32 bytes",
        ),
        (
            b"ZENCRYPT_SIGNUP=\"open\n",
            "./.env is not a valid .env file: parse error at character 22",
        ),
        (
            b"ZENCRYPT_SIGNUP=\xff\n",
            "./.env is not a valid .env file: stream did not contain valid UTF-8",
        ),
        (
            // A different audit key would start a second chain: refused before any write.
            b"ZENCRYPT_AUDIT_KEY=0123456789abcdef0123456789abcdef0123\n",
            "the audit key (ZENCRYPT_AUDIT_KEY, ZENCRYPT_AUDIT_KEY_FILE, or audit.key in the data dir) is not the one this database's audit log is written with (if it was rotated, an administrator hands out the new one); nothing was changed",
        ),
    ];
    for (content, message) in cases {
        std::fs::write(&dotenv, content).unwrap();
        for args in [
            &["data", "put", "--name", "new"][..],
            &["data", "get", "kept"][..],
            &["audit", "verify"][..],
        ] {
            let r = env.run(args, b"value");
            assert_eq!(r.code, 2, "{message}: {args:?}: {}", r.stderr);
            assert_eq!(r.stderr, format!("error: {message}\n"), "{args:?}");
            assert!(r.stdout.is_empty());
        }
    }
    std::fs::remove_file(&dotenv).unwrap();
    // The argon2 test setting is read from the process environment only, and checked.
    let r = env.run_with(&["whoami"], b"", &[("ZENCRYPT_ARGON2_MEMORY_KIB", "lots")]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: ZENCRYPT_ARGON2_MEMORY_KIB must be a whole number from 8 to 262144, not 'lots'\n"
    );
    // Secret files someone else could read or have written are refused, not used.
    use std::os::unix::fs::PermissionsExt;
    for file in [
        env.data_dir().join("audit.key"),
        env.data_dir().join("jwt.secret"),
        env.session_file(),
    ] {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = env.run(&["data", "get", "kept"], b"");
        assert_eq!(r.code, 2, "{}", file.display());
        assert_eq!(
            r.stderr,
            format!(
                "error: {} can be read or written by other users (mode 0644); run `chmod 600 {}`\n",
                file.display(),
                file.display()
            )
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let after = snapshot(&run);
    assert_eq!(after.0, before.0);
    assert_eq!(after.1, "precious");
    assert_eq!(
        after.2,
        before.2 + 3,
        "only the snapshot's reads (list, get, status) were audited"
    );
    assert_chain_intact(&run);
}
