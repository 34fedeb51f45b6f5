//! The local environment the binary runs in: which database it may create, which `.env`
//! it trusts, what `-o` may replace, signals, core dumps and what reaches a terminal.

use crate::common::*;

const NO_DB_HINT: &str =
    "hint: run `zencrypt signup` to create one, or point --db/ZENCRYPT_DB at an existing vault\n";

// About the file: it checks which commands create the database file.
#[test]
fn only_signup_creates_a_database() {
    let env = Env::sqlite();
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

// About the file: a .env file names the database file to open, and the error names its path.
#[test]
fn a_dotenv_file_is_loaded_only_when_it_is_the_users_own() {
    use std::os::unix::fs::{PermissionsExt, chown, symlink};
    let env = Env::sqlite();
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

/// Makes a device node with `mknod`, or says why the test cannot.
fn mknod(path: &std::path::Path, kind: &str, major: &str, minor: &str) -> bool {
    let out = std::process::Command::new("mknod")
        .arg(path)
        .args([kind, major, minor])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "note: skipping device cases: mknod is not permitted here ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    out.status.success()
}

fn mkfifo(path: &std::path::Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Reads a FIFO to its end on another thread.
fn drain(fifo: &std::path::Path) -> std::thread::JoinHandle<Vec<u8>> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || std::fs::read(fifo).unwrap())
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn output_to_devices_and_fifos_is_written_through_and_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "greeting"], b"hello, fifo")
        .ok();
    let ct = env.run(
        &["encrypt", "--key", "default", "--armor"],
        b"secret plaintext",
    );
    ct.ok();
    let out = env.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let fifo = out.join("fifo");
    mkfifo(&fifo);
    let arg = fifo.to_str().unwrap();
    for (args, stdin, want) in [
        (
            vec!["data", "get", "greeting", "-o", arg],
            &b""[..],
            &b"hello, fifo"[..],
        ),
        (
            vec!["decrypt", "-o", arg],
            ct.stdout.as_bytes(),
            &b"secret plaintext"[..],
        ),
    ] {
        let reader = drain(&fifo);
        let r = env.run(&args, stdin);
        r.ok();
        // Checked before joining: a replaced FIFO would leave the reader waiting forever.
        let t = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(t.is_fifo(), "{args:?} replaced the FIFO");
        assert_eq!(reader.join().unwrap(), want, "{args:?}");
    }
    let reader = drain(&fifo);
    env.run(&["data", "export", "-o", arg], b"").ok();
    let exported = String::from_utf8(reader.join().unwrap()).unwrap();
    assert!(exported.contains("\"value\":\"hello, fifo\""), "{exported}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // A character device (a private null device): written to, still a device.
    let null = out.join("null");
    if mknod(&null, "c", "1", "3") {
        let arg = null.to_str().unwrap();
        env.run(&["data", "get", "greeting", "-o", arg], b"").ok();
        env.run(&["decrypt", "-o", arg], ct.stdout.as_bytes()).ok();
        env.run(&["data", "export", "-o", arg], b"").ok();
        let t = std::fs::symlink_metadata(&null).unwrap().file_type();
        assert!(t.is_char_device(), "the device was replaced");
        // A block device is refused (nothing is written to a disk by accident).
        let block = out.join("block");
        assert!(mknod(&block, "b", "7", "200"));
        let r = env.run(
            &["data", "get", "greeting", "-o", block.to_str().unwrap()],
            b"",
        );
        assert_eq!(r.code, 2);
        assert_eq!(
            r.stderr,
            format!(
                "error: refusing to write to {}: it is a block device\n",
                block.display()
            )
        );
        assert!(
            std::fs::symlink_metadata(&block)
                .unwrap()
                .file_type()
                .is_block_device()
        );
        std::fs::remove_file(&block).unwrap();
        std::fs::remove_file(&null).unwrap();
    }
    assert_eq!(names_in(&out), ["fifo"], "no temp file was left");
}

#[test]
fn output_through_a_link_replaces_the_file_it_names_and_keeps_the_link() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "v"], b"new value").ok();
    let out = env.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let real = out.join("real.txt");
    std::fs::write(&real, b"old").unwrap();
    let link = out.join("link.txt");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.run(&["data", "get", "v", "-o", link.to_str().unwrap()], b"")
        .ok();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&real).unwrap(), b"new value");
    // A link to nothing is refused, and nothing is created.
    let dangling = out.join("dangling");
    std::os::unix::fs::symlink(out.join("missing"), &dangling).unwrap();
    let r = env.run(&["data", "get", "v", "-o", dangling.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: refusing to write to {}: it is a symbolic link to a missing file\n",
            dangling.display()
        )
    );
    // A directory is refused.
    let r = env.run(&["data", "get", "v", "-o", out.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!("error: {} is a directory\n", out.display())
    );
    assert_eq!(names_in(&out), ["dangling", "link.txt", "real.txt"]);
}

#[test]
fn leftovers_of_killed_processes_are_swept_but_a_live_ones_are_kept() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["data", "put", "--name", "v"], b"value").ok();
    let out = env.dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // 999999999 is above the kernel's largest pid: that process is surely gone.
    let dead_temp = out.join(".zencrypt-tmp-999999999-0123456789ab");
    let dead_staging = out.join(".zencrypt-staging-999999999-0123456789ab");
    let live_temp = out.join(format!(".zencrypt-tmp-{}-0123456789ab", std::process::id()));
    let not_ours = out.join(".zencrypt-tmp-999999999-notours");
    std::fs::write(&dead_temp, b"half a plaintext").unwrap();
    std::fs::create_dir(&dead_staging).unwrap();
    std::fs::write(dead_staging.join("copy.db"), b"half a backup").unwrap();
    std::fs::write(&live_temp, b"being written").unwrap();
    std::fs::write(&not_ours, b"someone's file").unwrap();
    env.run(
        &[
            "data",
            "get",
            "v",
            "-o",
            out.join("v.txt").to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    assert_eq!(
        names_in(&out),
        [
            format!(".zencrypt-tmp-{}-0123456789ab", std::process::id()),
            ".zencrypt-tmp-999999999-notours".to_string(),
            "v.txt".to_string()
        ]
    );
    // A backup sweeps its directory as well.
    std::fs::create_dir(&dead_staging).unwrap();
    env.run(&["db", "backup", out.join("b.db").to_str().unwrap()], b"")
        .ok();
    assert!(!dead_staging.exists());
    assert!(live_temp.exists());
}

/// Runs `zencrypt hash` (which waits for the end of stdin) and reads the line of
/// `/proc/<pid>/<file>` starting with `prefix` until `done` accepts it or 2 s pass; returns
/// the last line read.
fn line_of_a_waiting_process(file: &str, prefix: &str, done: impl Fn(&str) -> bool) -> String {
    let env = Env::new();
    let mut child = env
        .command()
        .arg("hash")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let path = format!("/proc/{}/{file}", child.id());
    let mut line = String::new();
    for _ in 0..400 {
        let text = std::fs::read_to_string(&path).unwrap();
        line = text
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap()
            .to_string();
        if done(&line) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    line
}

#[test]
fn core_dumps_are_off_while_a_command_runs() {
    // (The soft limit is often 0 already; the hard limit shows the process lowered it.)
    let line = line_of_a_waiting_process("limits", "Max core file size", |l| {
        l.split_whitespace().nth(5) == Some("0")
    });
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[4..], ["0", "0", "bytes"], "{line}");
}

#[test]
fn terminal_controls_from_the_database_and_argv_are_shown_escaped() {
    let env = Env::new();
    env.signup("alice");
    env.run(&["key", "create", "k"], b"").ok();
    // Names the CLI would refuse cannot be written into bound rows unnoticed; the
    // unbound logs can be edited by whoever can write the database: their text is escaped.
    let osc52 = "copy\x1b]52;c;ZWNobyBwd25lZA==\x07me";
    env.exec(&format!(
        "UPDATE audit_log SET target = '{osc52}' WHERE seq = (SELECT max(seq) FROM audit_log);
         UPDATE key_events SET actor = '\x1b[31mred\x1b[0m';"
    ));
    env.forget_witness();
    let r = env.run(&["audit", "list", "--limit", "1000"], b"");
    r.ok();
    assert!(
        !r.stdout.contains('\x1b') && !r.stdout.contains('\x07'),
        "{:?}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("copy\\u{1b}]52;c;ZWNobyBwd25lZA==\\u{7}me"),
        "{}",
        r.stdout
    );
    let r = env.run(&["key", "history", "k"], b"");
    r.ok();
    assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    assert!(
        r.stdout.contains("\\u{1b}[31mred\\u{1b}[0m"),
        "{}",
        r.stdout
    );
    // JSON keeps the exact text, escaped the JSON way.
    let r = env.run(&["key", "history", "k", "--json"], b"");
    assert!(!r.stdout.contains('\x1b'));
    assert_eq!(r.json()[0]["actor"], "\x1b[31mred\x1b[0m");

    // A right-to-left override in an audit target (from a lookup of a missing record).
    let r = env.run(&["data", "get", "invoice\u{202e}fdp.exe"], b"");
    assert_eq!(r.code, 5);
    assert!(!r.stderr.contains('\u{202e}'), "{}", r.stderr);
    let r = env.run(&["audit", "list", "--limit", "1000"], b"");
    r.ok();
    assert!(!r.stdout.contains('\u{202e}'), "{}", r.stdout);
    // (An attempted name is stored with control and bidi characters replaced.)
    assert!(r.stdout.contains("invoice?fdp.exe"), "{}", r.stdout);

    // An error echoing argv.
    let r = env.run(&["key", "show", "\x1b[31mX"], b"");
    assert_eq!(r.code, 5);
    assert_eq!(r.stderr, "error: key '\\u{1b}[31mX' not found\n");
}

#[test]
fn an_import_line_past_the_cap_is_refused_with_bounded_memory() {
    use std::io::Write;
    const CAP: usize = 344 << 20;
    let env = Env::new();
    env.signup("alice");
    let mut child = env
        .command()
        .args(["data", "import"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    // Two good lines, then one a byte past the cap, written a MiB at a time; the writer
    // stops when zencrypt closes the pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(b"{\"name\":\"one\",\"value\":\"1\"}\n{\"value\":\"2\"}\n");
        let mut left = CAP + 1;
        let _ = stdin.write_all(b"{\"value\":\"");
        left -= 10;
        let chunk = vec![b'a'; 1 << 20];
        while left > 0 {
            let n = left.min(chunk.len());
            if stdin.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n;
        }
        let _ = stdin.write_all(b"\"}\n");
    });
    // The peak memory of the process, read while it runs.
    let mut peak_kib = 0u64;
    let status_file = format!("/proc/{pid}/status");
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kib = l.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: import line 3: longer than 344 MiB; nothing was imported\n"
    );
    assert!(
        peak_kib < 2 * (CAP as u64 >> 10),
        "peak memory {peak_kib} KiB for a {CAP}-byte line"
    );
    let listed = env.run(&["data", "list", "--json"], b"");
    assert_eq!(listed.json(), serde_json::json!([]), "nothing was stored");
}

#[test]
fn memory_is_locked_when_the_limit_allows_it() {
    // Locked only without a memory-lock limit (root, or `ulimit -l unlimited`); under a
    // limit nothing is locked, and the command works all the same.
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let unlimited = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .is_some_and(|l| l.split_whitespace().nth(3) == Some("unlimited"));
    let kib = |l: &str| -> u64 { l.split_whitespace().nth(1).unwrap().parse().unwrap() };
    let line = line_of_a_waiting_process("status", "VmLck:", |l| kib(l) > 0);
    if unlimited {
        assert!(kib(&line) > 0, "no page was locked: {line}");
    } else {
        assert_eq!(kib(&line), 0, "{line}");
    }
}
