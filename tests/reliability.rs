//! Concurrent writers against one database.

use crate::common::*;

#[test]
fn six_processes_putting_forty_records_each_lose_nothing() {
    let env = Env::new();
    env.signup("alice");
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let mut c = env.command();
            c.arg("--no-input");
            let script = (0..40)
                .map(|i| {
                    format!("printf 'w{w}-v{i}' | \"$Z\" data put --name w{w}-r{i} -q || exit 1")
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut sh = std::process::Command::new("sh");
            sh.arg("-c").arg(script).env_clear();
            for (k, v) in c.get_envs() {
                if let Some(v) = v {
                    sh.env(k, v);
                }
            }
            sh.env("Z", c.get_program()).env("PATH", "/usr/bin:/bin");
            sh.current_dir(env.dir.path());
            sh.spawn().unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success(), "a writer failed");
    }
    let list = env.run(&["data", "list", "--json"], b"");
    list.ok();
    assert_eq!(list.json().as_array().unwrap().len(), 240);
    assert_eq!(env.run(&["data", "get", "w3-r17"], b"").stdout, "w3-v17");
    let v = env.run(&["audit", "verify", "--json"], b"");
    v.ok();
    assert_eq!(v.json()["ok"], true);
    let n = env.column::<i64>("SELECT count(*) FROM audit_log");
    let max = env.column::<i64>("SELECT max(seq) FROM audit_log");
    assert_eq!(n, max, "seq is contiguous");
}

fn lines(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"value\":\"value number {i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Starts `args` with `stdin`, kills it with SIGKILL after `ms`, and reports whether it
/// was still running then.
fn kill_after(env: &Env, args: &[&str], stdin: &[u8], ms: u64) -> bool {
    use std::io::Write;
    let mut c = env.command();
    c.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    running
}

#[test]
fn killed_bulk_operations_leave_all_or_nothing() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "bulk"], b"").ok();
    // An import killed half-way adds nothing.
    let mut killed_import = false;
    for ms in [150, 400, 800] {
        if kill_after(
            &env,
            &["data", "import", "--key", "bulk"],
            &lines(60_000),
            ms,
        ) {
            killed_import = true;
            break;
        }
    }
    let n = env.run(&["data", "list", "--all", "--json"], b"").json();
    let count = n.as_array().unwrap().len();
    assert!(count == 0 || count == 60_000, "half an import: {count}");
    assert!(
        killed_import,
        "the import finished before it could be killed"
    );
    assert_eq!(count, 0);
    env.run(&["audit", "verify"], b"").ok();

    // A rewrap killed half-way leaves every record on one version, all readable.
    env.run(&["data", "import", "--key", "bulk"], &lines(60_000))
        .ok();
    let killed_rewrap = kill_after(&env, &["key", "rotate", "bulk", "--rewrap"], b"", 150);
    let versions: Vec<i64> = env.column("SELECT DISTINCT key_version FROM records");
    assert_eq!(
        versions.len(),
        1,
        "records split across versions: {versions:?}"
    );
    let latest = env.run(&["key", "show", "bulk", "--json"], b"").json()["latest_version"]
        .as_i64()
        .unwrap();
    if killed_rewrap {
        assert_eq!(versions, [1], "a killed rotation is rolled back whole");
        assert_eq!(latest, 1);
    }
    env.run(&["audit", "verify"], b"").ok();
    let st = env.run(&["db", "status", "--json"], b"").json();
    assert_eq!(st["integrity"], "ok");
    assert_eq!(st["records"], 60_000);
}

// About the file: another connection holds the lock of the database file.
#[test]
fn a_database_locked_longer_than_the_busy_timeout_is_a_clear_error() {
    let env = Env::sqlite();
    env.signup("alice");
    let before = env.run(&["db", "status", "--json"], b"").json()["audit_entries"].clone();
    let holder = env.sql();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = std::time::Instant::now();
    let r = env.run(&["whoami"], b"");
    let waited = started.elapsed();
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: the database at {} is locked by another process; try again when it has finished\n",
            env.db().display()
        )
    );
    assert!(
        waited >= std::time::Duration::from_secs(5),
        "gave up after {waited:?}"
    );
    // Nothing was lost or half-written: the next command works and the chain verifies.
    env.run(&["whoami"], b"").ok();
    env.run(&["audit", "verify"], b"").ok();
    let after = env.run(&["db", "status", "--json"], b"").json()["audit_entries"].clone();
    assert!(after.as_i64() > before.as_i64());
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (up to 20 s) until `found` is true.
fn wait_for(what: &str, mut found: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !found() {
        assert!(started.elapsed().as_secs() < 20, "{what} did not appear");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn an_interrupted_decrypt_leaves_no_partial_plaintext() {
    use std::io::Write;
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    let plain: Vec<u8> = (0..12u32 << 20).map(|i| (i % 251) as u8).collect();
    let ct_path = env.dir.path().join("plain.zc");
    env.run(
        &["encrypt", "--key", "k", "-o", ct_path.to_str().unwrap()],
        &plain,
    )
    .ok();
    let ct = std::fs::read(&ct_path).unwrap();
    let dir = env.dir.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let out = dir.join("plain.bin");
    // Ctrl-C, kill's default and a closed terminal all clean up; the exit code is
    // 128 + the signal's number, as shells report it.
    for (sig, code) in [
        ("INT", 130),
        ("TERM", 143),
        ("HUP", 129),
        ("QUIT", 131),
        ("XFSZ", 153),
    ] {
        let mut child = env
            .command()
            .args(["decrypt", "-", "-o", out.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Half the ciphertext, with stdin left open: decrypt is mid-stream.
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&ct[..ct.len() / 2]).unwrap();
        wait_for("partial output", || {
            std::fs::read_dir(&dir).unwrap().any(|e| {
                let e = e.unwrap();
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".zencrypt-tmp-")
                    && e.metadata().unwrap().len() > 0
            })
        });
        signal(child.id(), sig);
        assert_eq!(child.wait().unwrap().code(), Some(code), "SIG{sig}");
        drop(stdin);
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "SIG{sig} left behind: {left:?}");
    }
}

#[test]
fn a_backup_stopped_by_a_signal_leaves_no_copy() {
    let env = Env::new();
    env.signup("alice");
    // Enough data that the copy takes a while to build.
    let big: String = (0..20_000)
        .map(|i| format!("{{\"value\":\"{i:04096}\"}}\n"))
        .collect();
    env.run(&["data", "import"], big.as_bytes()).ok();
    let dir = env.dir.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    let dest = dir.join("copy.db");
    let mut stopped = 0;
    for sig in ["TERM", "HUP", "TERM", "HUP"] {
        let mut child = env
            .command()
            .args(["db", "backup", dest.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_for("the staging directory", || {
            std::fs::read_dir(&dir).unwrap().next().is_some() || child.try_wait().unwrap().is_some()
        });
        signal(child.id(), sig);
        let status = child.wait().unwrap();
        if status.success() {
            // Finished before the signal: start again.
            std::fs::remove_file(&dest).unwrap();
            continue;
        }
        stopped += 1;
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "SIG{sig} left behind: {left:?}");
    }
    assert!(stopped > 0, "every backup finished before the signal");
}
