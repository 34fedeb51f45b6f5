//! Hostile input: the fuzzed decoders replayed over every kept input and over random
//! bytes, and the binary itself fed random ciphertexts, import files, tokens and
//! durations. Nothing panics; every failure is its documented exit code with one line.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

use crate::common::Env;
use proptest::prelude::*;

/// Every file in `dir` (none if it does not exist).
fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| {
            let p = e.expect("directory entry").path();
            let data = std::fs::read(&p).expect("readable input");
            (p.display().to_string(), data)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, run) in harness::TARGETS {
        let seeds = inputs(&root.join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target} has no seed inputs");
        for (name, data) in seeds
            .iter()
            .chain(inputs(&root.join("regressions").join(target)).iter())
        {
            let outcome = std::panic::catch_unwind(|| run(data));
            assert!(outcome.is_ok(), "{target}: {name} broke an invariant");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_survive_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for (_, run) in harness::TARGETS {
            run(&data);
        }
    }

    #[test]
    fn decoders_survive_random_text(text in "[ -~\\n]{0,300}") {
        for (_, run) in harness::TARGETS {
            run(text.as_bytes());
        }
    }
}

/// An error from the binary: the exit code expected and one `error: ` line on stderr.
fn assert_one_line_error(r: &crate::common::Run, codes: &[i32], what: &str) {
    assert!(
        codes.contains(&r.code),
        "{what}: exit {} not in {codes:?}: {}",
        r.code,
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{what}: printed {:?}", r.stdout);
    assert!(
        r.stderr.starts_with("error: ") && r.stderr.lines().count() <= 2,
        "{what}: {:?}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
}

#[test]
fn the_binary_refuses_random_input_with_its_exit_codes() {
    let env = Env::new();
    env.signup("alice").ok();
    env.run(&["key", "create", "k"], b"").ok();
    let real = env.run(&["encrypt", "--key", "k", "--armor"], b"attack at dawn");
    assert_eq!(real.code, 0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    let cases = (
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<usize>(),
        any::<u8>(),
    );
    runner
        .run(&cases, |(noise, at, byte)| {
            // Random bytes, as binary ciphertext and as import lines.
            let r = env.run(&["decrypt"], &noise);
            assert_one_line_error(&r, &[7], "decrypt of random bytes");
            let r = env.run(&["data", "import"], &noise);
            if r.code != 0 {
                assert_one_line_error(&r, &[2], "import of random bytes");
            }
            // A real armored ciphertext with one byte changed: fails, or (when the change
            // is blank space the armor ignores) decrypts to the original.
            let mut edited = real.stdout.clone().into_bytes();
            let i = at % edited.len();
            edited[i] = byte;
            let r = env.run(&["decrypt"], &edited);
            if r.code == 0 {
                assert_eq!(r.stdout, "attack at dawn");
            } else {
                assert_one_line_error(&r, &[7], "decrypt of edited armor");
            }
            // The same bytes as a session token (env values cannot hold NUL).
            let token = format!("ey{}", String::from_utf8_lossy(&noise).replace('\0', ""));
            let r = env.run_with(&["whoami"], b"", &[("ZENCRYPT_TOKEN", &token)]);
            assert_one_line_error(&r, &[3], "random session token");
            Ok(())
        })
        .expect("no failure");
}

#[test]
fn the_binary_refuses_random_durations_and_tokens_with_exit_2() {
    let env = Env::new();
    env.signup("alice").ok();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(16));
    runner
        // Text with at least one character that no duration or token allows.
        .run(
            &"[0-9a-z]{0,3}[!-,./:-@\\[-^`{-~]{1,3}[0-9a-z]{0,6}",
            |text| {
                let r = env.run(
                    &["key", "create", "k1", &format!("--rotate-every={text}")],
                    b"",
                );
                assert_one_line_error(&r, &[2], "random --rotate-every");
                let r = env.run(&["data", "put", &format!("--token={text}")], b"v");
                assert_one_line_error(&r, &[2], "random --token");
                Ok(())
            },
        )
        .expect("no failure");
}
