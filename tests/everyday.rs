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
