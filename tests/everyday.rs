//! Everyday secrets work end to end: generated secrets, running commands with secrets in
//! their environment, templates, and the messages around them.

use crate::common::*;

fn setup() -> Env {
    let env = Env::new();
    env.signup("alice");
    env
}

#[test]
fn generate_needs_no_database_and_prints_only_the_secret() {
    let env = Env::new();
    let r = env.run(&["generate"], b"");
    r.ok();
    // Not a terminal: the secret alone, byte-exact, no newline.
    assert_eq!(r.stdout.len(), 24, "{:?}", r.stdout);
    assert!(r.stdout.bytes().all(|b| b.is_ascii_graphic()));
    assert_eq!(r.stderr, "");
    assert!(!env.db().exists(), "generate creates no database");

    let r = env.run(&["generate", "--length", "40", "--no-symbols"], b"");
    r.ok();
    assert_eq!(r.stdout.len(), 40);
    assert!(r.stdout.bytes().all(|b| b.is_ascii_alphanumeric()));

    let r = env.run(&["generate", "--words", "5", "--separator", "."], b"");
    r.ok();
    let words: Vec<&str> = r.stdout.split('.').collect();
    assert_eq!(words.len(), 5, "{}", r.stdout);
    assert!(words.iter().all(|w| !w.is_empty()));

    let r = env.run(
        &["--json", "generate", "--charset", "digits", "--length", "6"],
        b"",
    );
    r.ok();
    let doc = r.json();
    assert_eq!(doc["kind"], "password");
    assert_eq!(doc["charset"], "digits");
    assert_eq!(doc["length"], 6);
    assert_eq!(doc["entropy_bits"], 19.9);
    let pin = doc["value"].as_str().unwrap();
    assert_eq!(pin.len(), 6);
    assert!(pin.bytes().all(|b| b.is_ascii_digit()));

    let r = env.run(&["--json", "generate", "--words", "6"], b"");
    r.ok();
    assert_eq!(r.json()["entropy_bits"], 77.5);
    assert_eq!(r.json()["separator"], "-");

    let r = env.run(&["generate", "--length", "3"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --length must be between 4 and 256, not 3\n"
    );
    let r = env.run(&["generate", "--words", "65"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --words must be between 3 and 64, not 65\n"
    );
}

#[test]
fn data_put_generate_stores_a_secret_never_shown() {
    let env = setup();
    let r = env.run(
        &[
            "data",
            "put",
            "--name",
            "prod/api-key",
            "--generate",
            "--length",
            "32",
        ],
        b"",
    );
    r.ok();
    let token = r.stdout.trim_end().to_string();
    assert!(token.starts_with("zt_"), "{token}");
    assert_eq!(r.stdout, format!("{token}\n"));
    assert!(
        r.stderr
            .starts_with("Stored a generated 32-character password ("),
        "{}",
        r.stderr
    );
    let value = env.run(&["data", "get", "prod/api-key"], b"");
    value.ok();
    assert_eq!(value.stdout.len(), 32);
    assert!(
        !r.stderr.contains(&value.stdout),
        "the value is never printed"
    );

    let r = env.run(
        &[
            "--json",
            "data",
            "put",
            "--name",
            "wifi",
            "--generate",
            "--words",
            "4",
            "--separator",
            " ",
        ],
        b"",
    );
    r.ok();
    let doc = r.json();
    assert_eq!(doc["name"], "wifi");
    assert_eq!(doc["generated"]["kind"], "passphrase");
    assert_eq!(doc["generated"]["words"], 4);
    assert_eq!(doc["generated"]["entropy_bits"], 51.6);
    assert!(doc.get("value").is_none());
    let value = env.run(&["data", "get", "wifi"], b"");
    assert_eq!(value.stdout.split(' ').count(), 4);

    // Generation options without --generate, and --generate with a value source.
    let r = env.run(&["data", "put", "--name", "x", "--length", "30"], b"v");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --length, --charset, --no-symbols, --words and --separator go with --generate\n"
    );
    let r = env.run(&["data", "put", "--generate", "--file", "f"], b"");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("'--generate' cannot be used with '--file <FILE>'"),
        "{}",
        r.stderr
    );
}

fn put_value(env: &Env, name: &str, value: &[u8]) {
    env.run(&["data", "put", "--name", name], value).ok();
}

fn usage_gets(env: &Env) -> i64 {
    let r = env.run(&["--json", "usage", "--by", "op"], b"");
    r.ok();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["op"] == "data.get")
        .map_or(0, |g| g["count"].as_i64().unwrap())
}

#[test]
fn run_sets_variables_passes_the_exit_code_and_prints_no_secret() {
    let env = setup();
    put_value(&env, "prod/db/password", b"s3cret pw");
    put_value(&env, "api", b"k-123");
    let template = env.dir.path().join("app.env");
    std::fs::write(
        &template,
        "# app\nexport API_KEY=zencrypt://api\nURL=postgres://app:{{ zencrypt://prod/db/password }}@db/app\nMODE=test\n",
    )
    .unwrap();
    let before = usage_gets(&env);
    let r = env.run_with(
        &[
            "run",
            "--env",
            "DB_PASSWORD=prod/db/password",
            "--template",
            template.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "printf '%s|%s|%s|%s|%s' \"$DB_PASSWORD\" \"$API_KEY\" \"$URL\" \"$MODE\" \"${ZENCRYPT_TOKEN-unset}\"; exit 7",
        ],
        b"",
        &[("PATH", "/usr/bin:/bin"), ("ZENCRYPT_TOKEN", &env.token("alice"))],
    );
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "s3cret pw|k-123|postgres://app:s3cret pw@db/app|test|unset"
    );
    assert_eq!(r.stderr, "");
    // Two records read, each counted as a data get, in one audited read.
    assert_eq!(usage_gets(&env), before + 2);
    let audit = env.run(&["--json", "audit", "list", "--action", "data.get"], b"");
    let last = audit.json().as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["target"], "api,prod/db/password");
    assert_eq!(last["detail"]["found"], 2);
    assert!(!audit.stdout.contains("s3cret"));
}

#[test]
fn run_fails_before_the_command_starts_when_a_reference_is_missing() {
    let env = setup();
    put_value(&env, "there", b"v");
    let marker = env.dir.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    let r = env.run_with(
        &[
            "run",
            "--env",
            "A=there",
            "--env",
            "B=missing",
            "--",
            "sh",
            "-c",
            &cmd,
        ],
        b"",
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(r.code, 5);
    assert_eq!(r.stderr, "error: record 'missing' not found\n");
    assert!(!marker.exists(), "the command never ran");

    env.run(&["data", "rm", "there"], b"").ok();
    let r = env.run_with(
        &[
            "run",
            "--env",
            "A=there",
            "--env",
            "B=missing",
            "--",
            "sh",
            "-c",
            &cmd,
        ],
        b"",
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr,
        "error: cannot read 'missing' (not found), 'there' (deleted)\n"
    );
    assert!(!marker.exists());

    let r = env.run(&["run", "--", "true"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: run needs --env NAME=REF or --template FILE: it has no secret to pass\n"
    );
    let r = env.run(&["run", "--env", "A=there", "true"], b"");
    assert_eq!(r.code, 2, "CMD must come after --: {}", r.stderr);
    put_value(&env, "v", b"x");
    let r = env.run(&["run", "--env", "A=v", "--", "/nonexistent/cmd"], b"");
    assert_eq!(r.code, 127);
    assert_eq!(
        r.stderr,
        "error: cannot run '/nonexistent/cmd': No such file or directory (os error 2)\n"
    );
    let bad = env.dir.path().join("bad.env");
    std::fs::write(&bad, "A=zencrypt://v\nB C=1\n").unwrap();
    let r = env.run(
        &["run", "--template", bad.to_str().unwrap(), "--", "true"],
        b"",
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        format!(
            "error: {}: template line 2: 'B C' is not a variable name (letters, digits and _, not starting with a digit)\n",
            bad.display()
        )
    );
    put_value(&env, "binary", b"a\0b");
    let r = env.run(&["run", "--env", "A=binary", "--", "true"], b"");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: the value for A holds a NUL byte"),
        "{}",
        r.stderr
    );
}

#[test]
fn run_forwards_signals_and_reports_the_one_that_ended_the_command() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let env = setup();
    put_value(&env, "v", b"x");
    let script = "trap 'echo got-term; exit 42' TERM; trap 'echo got-usr1' USR1; echo ready; while :; do sleep 0.05; done";
    let mut child = env
        .command()
        .env("PATH", "/usr/bin:/bin")
        .args(["run", "--env", "V=v", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-USR1", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(lines.next().unwrap().unwrap(), "got-usr1");
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(lines.next().unwrap().unwrap(), "got-term");
    assert_eq!(child.wait().unwrap().code(), Some(42));

    // A command that a signal ends: 128 + its number.
    let r = env.run_with(
        &["run", "--env", "V=v", "--", "sh", "-c", "kill -KILL $$"],
        b"",
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(r.code, 137);
}

#[test]
fn inject_renders_a_template_and_writes_nothing_when_a_reference_is_missing() {
    let env = setup();
    put_value(&env, "prod/db/password", b"p@ss\xff");
    let tpl = env.dir.path().join("config.tpl");
    // Text around the references comes out byte for byte, in any encoding.
    std::fs::write(
        &tpl,
        b"db:\n  password: \"{{ zencrypt://prod/db/password }}\"\n  other: {{ .Values.x }}\xfe\n",
    )
    .unwrap();
    let out = env.dir.path().join("config.yml");
    let r = env.run(
        &[
            "inject",
            "-i",
            tpl.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    r.ok();
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        format!("Wrote {} with 1 reference(s) filled in.\n", out.display())
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"db:\n  password: \"p@ss\xff\"\n  other: {{ .Values.x }}\xfe\n"
    );
    assert_eq!(mode(&out), 0o600);

    // To stdout.
    let r = env
        .command()
        .args(["inject", "-i", tpl.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0));
    assert_eq!(
        r.stdout,
        b"db:\n  password: \"p@ss\xff\"\n  other: {{ .Values.x }}\xfe\n"
    );

    let missing = env.dir.path().join("missing.tpl");
    std::fs::write(
        &missing,
        "a={{ zencrypt://prod/db/password }}\nb={{ zencrypt://nope }}\n",
    )
    .unwrap();
    let out2 = env.dir.path().join("never.txt");
    let r = env.run(
        &[
            "inject",
            "-i",
            missing.to_str().unwrap(),
            "-o",
            out2.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 5);
    assert_eq!(r.stderr, "error: record 'nope' not found\n");
    assert!(!out2.exists());
    // An existing file is left as it was.
    let r = env.run(
        &[
            "inject",
            "-i",
            missing.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 5);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        b"db:\n  password: \"p@ss\xff\"\n  other: {{ .Values.x }}\xfe\n"
    );

    let broken = env.dir.path().join("broken.tpl");
    std::fs::write(&broken, "x\n{{ zencrypt://a b }}\n").unwrap();
    let r = env.run(&["inject", "-i", broken.to_str().unwrap()], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: template line 2: the reference to 'a' is not closed with '}}'\n"
    );
}

#[test]
fn messages_say_what_happened() {
    let env = setup();
    // An empty value is stored byte-exact, and pointed out.
    let r = env.run(&["data", "put", "--name", "empty"], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        "note: the value is empty (0 bytes); it is stored as it is.\n"
    );
    let got = env.run(&["data", "get", "empty"], b"");
    got.ok();
    assert_eq!(got.stdout, "");
    let r = env.run(&["data", "update", "empty"], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        "note: the value is empty (0 bytes); it is stored as it is.\nUpdated empty to version 2.\n"
            .replace(
                "Updated empty",
                &format!("Updated {}", token_of(&env, "empty"))
            )
    );

    // Names sort A to Z by default; times newest first.
    for n in ["b", "c", "a"] {
        env.run(&["data", "put", "--name", n], b"v").ok();
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--json", "data", "list"];
        a.extend_from_slice(args);
        let r = env.run(&a, b"");
        r.ok();
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&["--order-by", "name"]), ["a", "b", "c", "empty"]);
    assert_eq!(
        names(&["--order-by", "name", "--desc"]),
        ["empty", "c", "b", "a"]
    );
    assert_eq!(
        names(&["--order-by", "created", "--limit", "2"]),
        ["a", "c"]
    );

    // Rewrapping a file already at the latest version says so.
    env.run(&["key", "create", "k"], b"").ok();
    let ct = env.dir.path().join("x.zc");
    env.run(
        &["encrypt", "--key", "k", "-o", ct.to_str().unwrap()],
        b"hello",
    )
    .ok();
    let out = env.dir.path().join("y.zc");
    let r = env.run(
        &["rewrap", ct.to_str().unwrap(), "-o", out.to_str().unwrap()],
        b"",
    );
    r.ok();
    assert_eq!(
        r.stderr,
        format!(
            "{} is already at the key's latest version (1); written out unchanged.\n",
            ct.display()
        )
    );
    env.run(&["key", "rotate", "k"], b"").ok();
    let r = env.run(
        &["rewrap", ct.to_str().unwrap(), "-o", out.to_str().unwrap()],
        b"",
    );
    assert_eq!(
        r.stderr,
        format!("Rewrapped {} from version 1 to version 2.\n", ct.display())
    );
}

fn token_of(env: &Env, name: &str) -> String {
    let r = env.run(&["--json", "data", "list", name], b"");
    r.ok();
    r.json()[0]["token"].as_str().unwrap().to_string()
}

#[test]
fn json_covers_argument_errors() {
    let env = Env::new();
    let r = env.run(&["--json", "data", "lsit"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    let doc: serde_json::Value = serde_json::from_str(&r.stderr).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({ "error": {
            "code": "usage",
            "message": "unrecognized subcommand 'lsit'",
            "hint": "a similar subcommand exists: 'list'",
        }})
    );
    let r = env.run(&["data", "list", "--json", "--bogus"], b"");
    assert_eq!(r.code, 2);
    let doc: serde_json::Value = serde_json::from_str(&r.stderr).unwrap();
    assert_eq!(
        doc["error"]["message"],
        "unexpected argument '--bogus' found"
    );
    let r = env.run(&["--json", "data"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "{\"error\":{\"code\":\"usage\",\"message\":\"a subcommand is needed; --help lists them\"}}\n"
    );
    // Without --json, clap's own text; after `--`, --json is an argument, not the flag.
    let r = env.run(&["data", "lsit"], b"");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: unrecognized subcommand 'lsit'\n"),
        "{}",
        r.stderr
    );
    let r = env.run(&["run", "--bogus", "--", "x", "--json"], b"");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: unexpected argument '--bogus' found"),
        "{}",
        r.stderr
    );
}

/// An editor script: logs the file it edits (path, modes) to `log`, then runs `action`
/// with the file as $1.
fn editor(env: &Env, action: &str) -> (String, std::path::PathBuf) {
    let log = env.dir.path().join("editor.log");
    let script = env.dir.path().join(format!("editor-{}.sh", action.len()));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s %s %s\\n' \"$1\" \"$(stat -c %a \"$1\")\" \"$(stat -c %a \"$(dirname \"$1\")\")\" >> {}\n{action}\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    (script.display().to_string(), log)
}

fn logged_file(log: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text.lines().last().unwrap().to_string();
    let mut parts = line.rsplitn(3, ' ');
    let dir_mode = parts.next().unwrap().to_string();
    let file_mode = parts.next().unwrap().to_string();
    (parts.next().unwrap().into(), file_mode, dir_mode)
}

#[test]
fn data_edit_saves_a_changed_value_as_a_new_version_and_wipes_the_temp_file() {
    let env = setup();
    put_value(&env, "prod/app/config.yml", b"port: 1");
    let runtime = env.dir.path().join("runtime");
    std::fs::create_dir(&runtime).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let runtime_s = runtime.display().to_string();

    // What a killed edit left (a process that is gone) is wiped by the next one.
    let stale = runtime.join("zencrypt-edit-999999999-0011223344556677");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("value"), "old plaintext").unwrap();

    // The editor replaces the content; the trailing newline it adds is dropped.
    let (ed, log) = editor(&env, "printf 'port: 2\\n' > \"$1\"");
    let r = env.run_with(
        &["data", "edit", "prod/app/config.yml"],
        b"",
        &[("EDITOR", &ed), ("XDG_RUNTIME_DIR", &runtime_s)],
    );
    r.ok();
    assert_eq!(r.stderr, "Saved 'prod/app/config.yml' as version 2.\n");
    let (file, file_mode, dir_mode) = logged_file(&log);
    assert_eq!((file_mode.as_str(), dir_mode.as_str()), ("600", "700"));
    assert_eq!(file.parent().unwrap().parent().unwrap(), runtime);
    assert_eq!(file.file_name().unwrap(), "config.yml");
    assert!(!file.parent().unwrap().exists(), "the temp dir is removed");
    assert_eq!(std::fs::read_dir(&runtime).unwrap().count(), 0);
    assert_eq!(
        env.run(&["data", "get", "prod/app/config.yml"], b"").stdout,
        "port: 2"
    );

    // The editor does not inherit the session token.
    let seen = env.dir.path().join("seen-token");
    let (peek, _) = editor(
        &env,
        &format!(
            "printf '%s' \"${{ZENCRYPT_TOKEN-unset}}\" > {}",
            seen.display()
        ),
    );
    let token = env.token("alice");
    env.run_with(
        &["data", "edit", "prod/app/config.yml"],
        b"",
        &[("EDITOR", &peek), ("ZENCRYPT_TOKEN", &token)],
    )
    .ok();
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "unset");

    // VISUAL wins over EDITOR; no change saves nothing.
    let (unchanged, _) = editor(&env, "true");
    let r = env.run_with(
        &["data", "edit", "prod/app/config.yml"],
        b"",
        &[
            ("VISUAL", &unchanged),
            ("EDITOR", &ed),
            ("XDG_RUNTIME_DIR", &runtime_s),
        ],
    );
    r.ok();
    assert_eq!(
        r.stderr,
        "No change: 'prod/app/config.yml' stays at version 2.\n"
    );

    // An editor that fails saves nothing, and the file is gone all the same.
    let (failing, log) = editor(&env, "printf 'half' > \"$1\"; exit 3");
    let r = env.run_with(
        &["data", "edit", "prod/app/config.yml"],
        b"",
        &[("EDITOR", &failing), ("XDG_RUNTIME_DIR", &runtime_s)],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!("error: the editor ({failing}) exited with status 3; nothing was saved\n")
    );
    assert!(!logged_file(&log).0.parent().unwrap().exists());
    assert_eq!(
        env.run(&["data", "get", "prod/app/config.yml"], b"").stdout,
        "port: 2"
    );

    // A record updated while the editor runs: the edit is refused, the other update kept.
    let zbin = env.command().get_program().to_owned();
    // (The editor does not inherit the audit key: on PostgreSQL this other client is
    // given it, as a member would have it.)
    let audit_key = if env.on_postgres() {
        format!("ZENCRYPT_AUDIT_KEY={PG_AUDIT_KEY} ")
    } else {
        String::new()
    };
    let racing = format!(
        "printf 'mine' > \"$1\"; printf 'theirs' | {audit_key}{} -q data update prod/app/config.yml",
        zbin.to_string_lossy()
    );
    let (racer, _) = editor(&env, &racing);
    let r = env.run_with(
        &["data", "edit", "prod/app/config.yml"],
        b"",
        &[("EDITOR", &racer), ("XDG_RUNTIME_DIR", &runtime_s)],
    );
    assert_eq!(r.code, 6, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        "error: 'prod/app/config.yml' changed while you edited (it is no longer at version 2); your edit was not saved\n"
    );
    assert_eq!(
        env.run(&["data", "get", "prod/app/config.yml"], b"").stdout,
        "theirs"
    );

    // Binary values are not opened in a text editor.
    put_value(&env, "blob", b"\xff\x00");
    let r = env.run_with(&["data", "edit", "blob"], b"", &[("EDITOR", &ed)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: record 'blob' holds binary data"),
        "{}",
        r.stderr
    );
    let r = env.run_with(&["data", "edit", "nope"], b"", &[("EDITOR", &ed)]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (5, "error: record 'nope' not found\n")
    );
}

#[test]
fn man_pages_need_no_database() {
    let env = Env::new();
    let r = env.run(&["man"], b"");
    r.ok();
    assert!(r.stdout.contains(".TH zencrypt 1 "), "{}", &r.stdout[..200]);
    assert!(
        r.stdout
            .contains("zencrypt \\- A terminal vault for encryption keys and secrets")
    );
    let r = env.run(&["man", "data", "put"], b"");
    r.ok();
    let title = format!(
        ".TH zencrypt-data-put 1  \"zencrypt {}\" \"zencrypt manual\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(r.stdout.contains(&title), "{}", &r.stdout[..200]);
    assert!(r.stdout.contains("\\fB\\-\\-generate\\fR"));
    let r = env.run(&["man", "data", "nope"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: no command 'data nope' to show a page for\n"
    );
    let dir = env.dir.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    let r = env.run(&["man", "--dir", dir.to_str().unwrap()], b"");
    r.ok();
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    assert_eq!(
        r.stderr,
        format!(
            "Wrote {} manual pages into {}.\n",
            pages.len(),
            dir.display()
        )
    );
    for page in [
        "zencrypt.1",
        "zencrypt-run.1",
        "zencrypt-data-edit.1",
        "zencrypt-generate.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} in {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("help")), "{pages:?}");
    assert!(!env.db().exists());
}

#[test]
fn totp_secrets_give_the_current_code() {
    let env = setup();
    // RFC 6238's SHA-1 secret, "12345678901234567890".
    let uri = "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example&digits=8";
    let r = env.run(
        &["data", "put", "--name", "example/otp", "--totp"],
        uri.as_bytes(),
    );
    r.ok();
    // Stored as a canonical URI.
    let stored = env.run(&["data", "get", "example/otp"], b"");
    assert_eq!(
        stored.stdout,
        "otpauth://totp/Example:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=8&period=30"
    );
    let generator = zencrypt_core::totp::Totp::parse(uri).unwrap();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let before = now();
    let r = env.run(&["--json", "data", "totp", "example/otp"], b"");
    let after = now();
    r.ok();
    let doc = r.json();
    let code = doc["code"].as_str().unwrap();
    assert!(
        code == generator.code_at(before).0 || code == generator.code_at(after).0,
        "{code}"
    );
    assert_eq!(code.len(), 8);
    assert_eq!(
        (doc["digits"].as_i64(), doc["period"].as_i64()),
        (Some(8), Some(30))
    );
    let left = doc["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left));

    let r = env.run(&["data", "totp", "example/otp"], b"");
    r.ok();
    assert_eq!(r.stdout.len(), 9, "{}", r.stdout);
    assert!(r.stderr.starts_with("Valid for ") && r.stderr.ends_with(" more second(s).\n"));

    // A bare base32 secret is accepted; anything else is refused before it is stored.
    env.run(
        &["data", "put", "--name", "bare", "--totp"],
        b"jbsw y3dp ehpk 3pxp",
    )
    .ok();
    let r = env.run(&["data", "put", "--name", "bad", "--totp"], b"hunter2");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: not a TOTP secret: the secret is not base32 (A-Z and 2-7)\n"
    );
    assert_eq!(env.run(&["data", "get", "bad"], b"").code, 5);
    env.run(&["data", "put", "--name", "plain"], b"not totp")
        .ok();
    let r = env.run(&["data", "totp", "plain"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: record 'plain' does not hold a TOTP secret; store one with `zencrypt data put --totp`\n"
    );
}

fn versions(env: &Env, reference: &str) -> Vec<i64> {
    let r = env.run(&["--json", "data", "history", reference], b"");
    r.ok();
    r.json()["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect()
}

#[test]
fn history_keeps_earlier_versions_and_rolls_back() {
    let env = setup();
    put_value(&env, "db", b"v1");
    for i in 2..=12 {
        env.run(&["-q", "data", "update", "db"], format!("v{i}").as_bytes())
            .ok();
    }
    // The current version and the 9 before it.
    assert_eq!(versions(&env, "db"), (3..=12).rev().collect::<Vec<_>>());
    let r = env.run(&["data", "get", "db", "--version", "5"], b"");
    r.ok();
    assert_eq!(r.stdout, "v5");
    let r = env.run(&["data", "get", "db", "--version", "2"], b"");
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr,
        "error: version 2 of record 'db' is no longer kept (`zencrypt data history db` lists what is)\n"
    );
    let r = env.run(&["data", "get", "db", "--version", "13"], b"");
    assert_eq!(r.code, 5);
    assert_eq!(
        r.stderr,
        "error: record 'db' has no version 13 (it is at version 12)\n"
    );
    let r = env.run(&["--json", "data", "get", "db", "--version", "12"], b"");
    r.ok();
    assert_eq!(r.json()["records"][0]["value"], "v12");
    assert_eq!(r.json()["records"][0]["version"], 12);

    let r = env.run(&["data", "rollback", "db", "--to", "5"], b"");
    r.ok();
    assert_eq!(
        r.stderr,
        "Rolled 'db' back to the value of version 5, stored as version 13.\n"
    );
    assert_eq!(env.run(&["data", "get", "db"], b"").stdout, "v5");
    assert_eq!(versions(&env, "db"), (4..=13).rev().collect::<Vec<_>>());
    let r = env.run(&["data", "rollback", "db", "--to", "13"], b"");
    assert_eq!(r.code, 6);
    assert_eq!(r.stderr, "error: record 'db' is already at version 13\n");
    let audit = env.run(
        &["--json", "audit", "list", "--action", "data.rollback"],
        b"",
    );
    let entries = audit.json();
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(entries[0]["detail"]["to"], 5);
    assert_eq!(entries[0]["outcome"], "ok");

    // A soft delete keeps the history; a hard delete removes every version.
    env.run(&["data", "rm", "db"], b"").ok();
    env.run(&["data", "restore", "db"], b"").ok();
    assert_eq!(versions(&env, "db").len(), 10);
    let kept: Vec<i64> = env.column("SELECT count(*) FROM record_versions");
    assert_eq!(kept, vec![9]);
    env.run(&["data", "rm", "db", "--hard", "--yes"], b"").ok();
    let kept: Vec<i64> = env.column("SELECT count(*) FROM record_versions");
    assert_eq!(kept, vec![0]);
}

#[test]
fn history_length_is_configurable_and_versions_are_bound() {
    let env = Env::sqlite().with("ZENCRYPT_HISTORY", "2");
    env.signup("alice");
    put_value(&env, "a", b"1");
    put_value(&env, "b", b"B1");
    for v in ["2", "3", "4"] {
        env.run(&["-q", "data", "update", "a"], v.as_bytes()).ok();
    }
    env.run(&["-q", "data", "update", "b"], b"B2").ok();
    assert_eq!(versions(&env, "a"), vec![4, 3, 2]);
    let r = env.run_with(
        &["data", "history", "a"],
        b"",
        &[("ZENCRYPT_HISTORY", "101")],
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: ZENCRYPT_HISTORY must be a whole number from 0 to 100 (earlier versions kept per record), not '101'\n"
    );
    // A version row moved to another record, or given another data key, fails its check.
    let sql = env.sql();
    let a_id: i64 = sql
        .query_row("SELECT id FROM records WHERE name = 'a'", [], |r| r.get(0))
        .unwrap();
    let b_id: i64 = sql
        .query_row("SELECT id FROM records WHERE name = 'b'", [], |r| r.get(0))
        .unwrap();
    sql.execute(
        "UPDATE record_versions SET record_id = ?1, version = 3 WHERE record_id = ?2 AND version = 1",
        [a_id, b_id],
    )
    .unwrap_err(); // (a, 3) exists: the primary key refuses
    sql.execute(
        "UPDATE record_versions SET record_id = ?1, version = 1 WHERE record_id = ?2 AND version = 1",
        [a_id, b_id],
    )
    .unwrap();
    let r = env.run(&["data", "get", "a", "--version", "1"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: record_versions row {a_id}/1 failed its integrity check: it was changed outside zencrypt (restore the database from a backup)\n"
        )
    );
    let r = env.run(&["data", "history", "a"], b"");
    assert_eq!(r.code, 7);
    sql.execute(
        "DELETE FROM record_versions WHERE record_id = ?1 AND version = 1",
        [a_id],
    )
    .unwrap();
    sql.execute(
        "UPDATE record_versions SET wrapped_dek = (SELECT wrapped_dek FROM records WHERE id = ?1) WHERE record_id = ?1 AND version = 2",
        [a_id],
    )
    .unwrap();
    let r = env.run(&["data", "get", "a", "--version", "2"], b"");
    assert_eq!(r.code, 7, "{}", r.stderr);
    // The current value is untouched.
    assert_eq!(env.run(&["data", "get", "a"], b"").stdout, "4");
}

fn names(env: &Env, glob: &str) -> Vec<String> {
    let r = env.run(&["--json", "data", "list", glob, "--order-by", "name"], b"");
    r.ok();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn imports_from_other_managers_map_names_and_are_all_or_nothing() {
    let env = setup();
    let dir = env.dir.path();
    // A .env file, under a prefix, with a dry run first.
    let dotenv = dir.join("app.env");
    std::fs::write(
        &dotenv,
        "# app\nDB_PASSWORD=s3cret\nexport API_KEY=\"k\\n2\"\n",
    )
    .unwrap();
    let r = env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            dotenv.to_str().unwrap(),
            "--prefix",
            "prod/app/",
            "--dry-run",
        ],
        b"",
    );
    r.ok();
    assert_eq!(r.stdout, "prod/app/DB_PASSWORD\nprod/app/API_KEY\n");
    assert_eq!(
        r.stderr,
        "Would import 2 record(s); nothing was stored (--dry-run).\n"
    );
    assert!(!r.stdout.contains("s3cret"));
    assert_eq!(names(&env, "*"), Vec::<String>::new());
    let r = env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            dotenv.to_str().unwrap(),
            "--prefix",
            "prod/app/",
        ],
        b"",
    );
    r.ok();
    assert_eq!(r.stdout, "2\n");
    assert_eq!(
        env.run(&["data", "get", "prod/app/API_KEY"], b"").stdout,
        "k\n2"
    );

    // CSV with its own column names; names with spaces and colons are mapped visibly.
    let csv = dir.join("export.csv");
    std::fs::write(
        &csv,
        "title,url,password\nGitHub (work),https://github.com,\"p,1\"\nmail: home,,p2\n",
    )
    .unwrap();
    let r = env.run(
        &[
            "--json",
            "data",
            "import",
            "--format",
            "csv",
            csv.to_str().unwrap(),
            "--name-column",
            "title",
            "--value-column",
            "password",
            "--dry-run",
        ],
        b"",
    );
    r.ok();
    assert_eq!(
        r.json()["records"],
        serde_json::json!([
            { "name": "GitHub--work-", "from": "GitHub (work)" },
            { "name": "mail--home", "from": "mail: home" },
        ])
    );
    env.run(
        &[
            "data",
            "import",
            "--format",
            "csv",
            csv.to_str().unwrap(),
            "--name-column",
            "title",
            "--value-column",
            "password",
        ],
        b"",
    )
    .ok();
    assert_eq!(
        env.run(&["data", "get", "GitHub--work-"], b"").stdout,
        "p,1"
    );

    // Bitwarden's unencrypted export.
    let bw = dir.join("bitwarden_export.json");
    std::fs::write(
        &bw,
        r#"{"encrypted":false,"folders":[{"id":"f1","name":"Work"}],"items":[
            {"id":"1","type":1,"name":"Jira","folderId":"f1","login":{"username":"me","password":"jira-pw","totp":"JBSWY3DPEHPK3PXP"}},
            {"id":"2","type":2,"name":"Server notes","notes":"ssh root@x"},
            {"id":"3","type":3,"name":"Visa","card":{"number":"4111111111111111"}}]}"#,
    )
    .unwrap();
    let r = env.run(
        &[
            "data",
            "import",
            "--format",
            "bitwarden-json",
            bw.to_str().unwrap(),
            "--prefix",
            "bw/",
        ],
        b"",
    );
    r.ok();
    assert_eq!(r.stdout, "3\n");
    assert_eq!(
        r.stderr,
        "Skipped 'Visa': nothing secret to store (a card, an identity, or a login without a password).\n"
    );
    assert_eq!(
        names(&env, "bw/*"),
        ["bw/Server-notes", "bw/Work/Jira", "bw/Work/Jira/totp"]
    );
    assert_eq!(
        env.run(&["data", "get", "bw/Work/Jira"], b"").stdout,
        "jira-pw"
    );
    env.run(&["data", "totp", "bw/Work/Jira/totp"], b"").ok();

    // All or nothing: a bad line is named and nothing from the file is stored.
    let bad = dir.join("bad.env");
    std::fs::write(&bad, "GOOD=1\nthis line has the secret hunter2\n").unwrap();
    let r = env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            bad.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: line 2: expected NAME=VALUE; nothing was imported\n"
    );
    assert_eq!(env.run(&["data", "get", "GOOD"], b"").code, 5);
    // An imported name that exists already: nothing is stored either.
    let again = env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            dotenv.to_str().unwrap(),
            "--prefix",
            "prod/app/",
        ],
        b"",
    );
    assert_eq!(again.code, 6, "{}", again.stderr);
    assert_eq!(names(&env, "prod/*").len(), 2);
    let r = env.run(
        &[
            "data",
            "import",
            "--format",
            "dotenv",
            dotenv.to_str().unwrap(),
            "--prefix",
            "prod",
        ],
        b"",
    );
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --prefix must be a path ending in '/', such as 'imported/' or 'prod/app/', not 'prod'\n"
    );
}

#[test]
fn exports_to_dotenv_and_csv_read_back() {
    let env = setup();
    put_value(&env, "prod/db-password", b"p\"w $HOME");
    put_value(&env, "notes", b"two\nlines");
    let out = env.dir.path().join("all.env");
    let r = env.run(
        &[
            "data",
            "export",
            "--format",
            "dotenv",
            "-o",
            out.to_str().unwrap(),
        ],
        b"",
    );
    r.ok();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "PROD_DB_PASSWORD=\"p\\\"w \\$HOME\"\nNOTES=\"two\\nlines\"\n"
    );
    assert_eq!(mode(&out), 0o600);
    let csv = env.run(&["data", "export", "--format", "csv"], b"");
    csv.ok();
    assert_eq!(
        csv.stdout,
        "name,value\nprod/db-password,\"p\"\"w $HOME\"\nnotes,\"two\nlines\"\n"
    );
    // Both read back into another vault.
    let other = Env::new();
    other.signup("bob");
    other
        .run(
            &[
                "data",
                "import",
                "--format",
                "dotenv",
                out.to_str().unwrap(),
            ],
            b"",
        )
        .ok();
    assert_eq!(
        other.run(&["data", "get", "PROD_DB_PASSWORD"], b"").stdout,
        "p\"w $HOME"
    );
    put_value(&env, "bin", b"\xff\x00");
    let r = env.run(&["data", "export", "--format", "dotenv"], b"");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: record 'bin' holds binary data, which a .env file cannot carry; use --format jsonl\n"
    );
    assert_eq!(r.stdout, "");
}

/// The README's scripted session, as written, in a prepared directory.
#[test]
fn the_readme_scripted_session_runs_as_written() {
    use std::os::unix::fs::PermissionsExt;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```sh\nset -e\nexport ZENCRYPT_TOKEN")
        .expect("the block")
        + 6;
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let shown = {
        let at = readme.find("What it prints on stderr").unwrap();
        let from = at + readme[at..].find("```text\n").unwrap() + 8;
        readme[from..from + readme[from..].find("```").unwrap()].to_string()
    };

    let env = Env::new();
    env.signup("alice");
    env.signup("deploy");
    let deploy = env.token("deploy");
    env.login("alice");
    env.run(&["user", "role", "deploy", "auditor"], b"").ok();
    env.run(&["logout"], b"").ok();
    env.as_token(&deploy, &["key", "create", "backups"]).ok();
    env.run_with(
        &["data", "put", "--name", "prod/db-password"],
        b"s3cret",
        &[("ZENCRYPT_TOKEN", &deploy)],
    )
    .ok();
    let dir = env.dir.path();
    std::fs::write(dir.join("deploy.pw"), format!("{}\n", pw("deploy"))).unwrap();
    std::fs::set_permissions(
        dir.join("deploy.pw"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        dir.join("migrate.sh"),
        "#!/bin/sh\n[ \"$DB_PASSWORD\" = s3cret ]\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.join("migrate.sh"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(
        dir.join("app.conf.tpl"),
        "password = {{ zencrypt://prod/db-password }}\n",
    )
    .unwrap();
    std::fs::write(dir.join("db.dump"), vec![7u8; 1 << 20]).unwrap();
    let head = env.as_token(&deploy, &["audit", "checkpoint"]);
    std::fs::write(dir.join("audit-head.json"), head.ok().stdout.as_bytes()).unwrap();

    let inner = env.command();
    let bin_dir = std::path::Path::new(inner.get_program())
        .parent()
        .unwrap()
        .to_owned();
    let mut sh = std::process::Command::new("/bin/sh");
    sh.arg("-c")
        .arg(block)
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .current_dir(dir);
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            sh.env(k, v);
        }
    }
    let r: Run = assert_cmd::Command::from_std(sh).output().unwrap().into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("app.conf")).unwrap(),
        "password = s3cret\n"
    );
    assert_eq!(mode(&dir.join("app.conf")), 0o600);
    assert!(dir.join("db.dump.zc").exists());
    assert!(
        std::fs::read_to_string(dir.join("usage.json"))
            .unwrap()
            .contains("data.get")
    );
    // The stderr lines the README shows, numbers aside.
    let digits = |s: &str| -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() || c == '…' {
                if !out.ends_with('#') {
                    out.push('#');
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(digits(&r.stderr), digits(&shown), "{}", r.stderr);
    assert!(r.stdout.starts_with("audit chain intact: "), "{}", r.stdout);
}

/// gpg with the test's own home (its keyring and agent).
fn gpg(env: &Env, args: &[&str], stdin: &[u8]) -> Run {
    let mut c = std::process::Command::new("gpg");
    c.args(["--batch", "--quiet"])
        .args(args)
        .env_clear()
        .env("HOME", env.home())
        .env("GNUPGHOME", env.home().join(".gnupg"))
        .env("PATH", "/usr/bin:/bin");
    let mut a = assert_cmd::Command::from_std(c);
    a.write_stdin(stdin.to_vec());
    a.output().unwrap().into()
}

#[test]
fn imports_a_pass_store_through_gpg() {
    if std::process::Command::new("gpg")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(!in_ci(), "CI installs gnupg (.ci/run)");
        eprintln!("skipped: gpg is not installed");
        return;
    }
    let env = setup();
    let gnupg = env.home().join(".gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    gpg(
        &env,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            "pass test <pass@example.test>",
            "default",
            "default",
            "never",
        ],
        b"",
    )
    .ok();
    let store = env.home().join(".password-store");
    for (name, value) in [
        ("email/work", "mail-pw\n"),
        ("web/Git Hub", "gh-pw\nuser: me\n"),
        ("top", "top-pw\n"),
    ] {
        let path = store.join(format!("{name}.gpg"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        gpg(
            &env,
            &[
                "-e",
                "-r",
                "pass@example.test",
                "-o",
                path.to_str().unwrap(),
            ],
            value.as_bytes(),
        )
        .ok();
    }
    std::fs::create_dir_all(store.join(".git")).unwrap();
    std::fs::write(store.join(".git/config.gpg"), "not an entry").unwrap();
    std::fs::write(store.join(".gpg-id"), "pass@example.test\n").unwrap();
    let path_env = [("PATH", "/usr/bin:/bin")];
    let r = env.run_with(
        &[
            "data",
            "import",
            "--format",
            "pass",
            "--prefix",
            "pass/",
            "--dry-run",
        ],
        b"",
        &path_env,
    );
    r.ok();
    assert_eq!(
        r.stdout,
        "pass/email/work\npass/top\npass/web/Git-Hub  <- web/Git Hub\n"
    );
    let r = env.run_with(
        &["data", "import", "--format", "pass", "--prefix", "pass/"],
        b"",
        &path_env,
    );
    r.ok();
    assert_eq!(r.stdout, "3\n");
    assert_eq!(
        env.run(&["data", "get", "pass/email/work"], b"").stdout,
        "mail-pw"
    );
    assert_eq!(
        env.run(&["data", "get", "pass/web/Git-Hub"], b"").stdout,
        "gh-pw\nuser: me"
    );
    // An entry gpg cannot open stops the whole import.
    std::fs::write(store.join("broken.gpg"), "garbage").unwrap();
    let r = env.run_with(
        &["data", "import", "--format", "pass", "--prefix", "again/"],
        b"",
        &path_env,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with(&format!(
            "error: gpg could not decrypt {}: ",
            store.join("broken.gpg").display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.ends_with("; nothing was imported\n"),
        "{}",
        r.stderr
    );
    assert_eq!(env.run(&["data", "get", "again/top"], b"").code, 5);
    let _ = std::process::Command::new("gpgconf")
        .args(["--kill", "gpg-agent"])
        .env("GNUPGHOME", &gnupg)
        .status();
}

#[test]
fn data_list_tree_shows_the_paths() {
    let env = setup();
    for name in ["prod/db/user", "a", "prod/db/password", "prod/api"] {
        put_value(&env, name, b"v");
    }
    let unnamed = env
        .run(&["data", "put"], b"v")
        .ok()
        .stdout
        .trim()
        .to_string();
    env.run(&["-q", "data", "update", "prod/api"], b"w").ok();
    env.run(&["data", "rm", "a"], b"").ok();
    let r = env.run(&["data", "list", "--all", "--tree"], b"");
    r.ok();
    assert_eq!(
        r.stdout,
        format!(
            "├── a  (v1, deleted)\n└── prod\n    ├── api  (v2)\n    └── db\n        ├── password  (v1)\n        └── user  (v1)\n{unnamed}  (v1)\n"
        )
    );
    let r = env.run(&["data", "list", "prod/db/*", "--tree"], b"");
    assert_eq!(
        r.stdout,
        "└── prod\n    └── db\n        ├── password  (v1)\n        └── user  (v1)\n"
    );
}

/// An X server of the test's own, stopped when dropped.
struct Xvfb {
    child: std::process::Child,
    display: String,
}

impl Xvfb {
    fn start() -> Option<Xvfb> {
        let have = |tool: &str| {
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !have("Xvfb") || !have("xclip") {
            assert!(!in_ci(), "CI installs xvfb and xclip (.ci/run)");
            eprintln!("skipped: Xvfb or xclip is not installed");
            return None;
        }
        // `-displayfd 1`: Xvfb picks a free display itself and writes its number to stdout
        // once it accepts connections, so there is no guessing at a number or at readiness.
        let mut child = std::process::Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_default();
        let n: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb did not start: it printed {line:?}"));
        Some(Xvfb {
            child,
            display: format!(":{n}"),
        })
    }

    fn clipboard(&self) -> Option<String> {
        let out = std::process::Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", &self.display)
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM, so that Xvfb removes its socket and lock file; SIGKILL would leave them.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn clip_copies_a_value_for_a_while_and_fails_clearly_without_a_display() {
    let env = setup();
    put_value(&env, "wifi", b"hunter2-wifi");
    // No display: exit 1, nothing printed on stdout.
    let r = env.run(&["data", "get", "wifi", "--clip"], b"");
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.starts_with("error: no clipboard to copy to ("),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .ends_with("); on a machine without a display, use `data get` to a pipe or -o FILE\n"),
        "{}",
        r.stderr
    );
    let r = env.run(&["data", "get", "wifi", "--clip", "-o", "x"], b"");
    assert_eq!(r.code, 2);

    let Some(x) = Xvfb::start() else {
        return;
    };
    let r = env.run_with(
        &["data", "get", "wifi", "--clip"],
        b"",
        &[("DISPLAY", &x.display), ("ZENCRYPT_CLIP_SECONDS", "2")],
    );
    r.ok();
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "Copied 'wifi' (version 1) to the clipboard; it is cleared in 2 s if the clipboard still holds it.\n"
    );
    assert_eq!(x.clipboard().as_deref(), Some("hunter2-wifi"));
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert_eq!(x.clipboard(), None, "cleared");
    // Something copied meanwhile is left alone.
    env.run_with(
        &["data", "get", "wifi", "--clip"],
        b"",
        &[("DISPLAY", &x.display), ("ZENCRYPT_CLIP_SECONDS", "2")],
    )
    .ok();
    let mut other = std::process::Command::new("xclip")
        .args(["-selection", "clipboard"])
        .env("DISPLAY", &x.display)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut other.stdin.take().unwrap(), b"copied later").unwrap();
    other.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3500));
    assert_eq!(x.clipboard().as_deref(), Some("copied later"));
    // A read of the secret, audited like any other.
    let audit = env.run(&["--json", "audit", "list", "--action", "data.get"], b"");
    assert_eq!(audit.json().as_array().unwrap().len(), 2);
}

#[test]
fn completion_offers_record_and_key_names_from_the_saved_session() {
    let env = setup();
    put_value(&env, "prod/db/password", b"v");
    put_value(&env, "prod/api", b"v");
    put_value(&env, "other", b"v");
    env.run(&["key", "create", "backups"], b"").ok();
    let complete = |words: &[&str]| -> String {
        let mut args = vec!["--", "zencrypt"];
        args.extend_from_slice(words);
        let r = env.run_with(&args, b"", &[("ZENCRYPT_COMPLETE", "fish")]);
        r.ok();
        r.stdout
    };
    let before = env.column::<i64>("SELECT count(*) FROM audit_log")[0];
    assert_eq!(
        complete(&["data", "get", "prod/"]),
        "prod/api\nprod/db/password\n"
    );
    assert_eq!(complete(&["data", "edit", "o"]), "other\n");
    assert_eq!(complete(&["encrypt", "--key", "b"]), "backups\n");
    assert!(complete(&["key", "rotate", ""]).starts_with("backups\ndefault\n--db\t"));
    assert_eq!(complete(&["key", "rotate", "d"]), "default\n");
    assert!(complete(&["data", "ed"]).starts_with("edit\t"));
    // Completing reads names only, and writes nothing (no audit entry per Tab).
    assert_eq!(
        env.column::<i64>("SELECT count(*) FROM audit_log")[0],
        before
    );
    // Without a session: nothing to offer, and no error.
    env.run(&["logout"], b"").ok();
    assert_eq!(complete(&["data", "get", "prod/"]), "");
}
