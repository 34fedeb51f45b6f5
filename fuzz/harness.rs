//! The decoders under fuzzing, each driven from raw bytes. Shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets`) and by `tests/hostile_input.rs`, which replays every input kept in
//! `fuzz/regressions/<target>/` and runs the same functions over random bytes.
//!
//! Each function panics when an invariant breaks: a decoder panicking, an error with the
//! wrong exit code or no message, a round trip that does not return its input, or a
//! modified ciphertext that decrypts.

#![allow(dead_code)]

use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use zencrypt_core::Error;
use zencrypt_core::crypto::Key32;
use zencrypt_core::crypto::armor::{ArmorReader, ArmorWriter, is_armored};
use zencrypt_core::crypto::mac::MacKey;
use zencrypt_core::crypto::stream::{Header, StreamError, decrypt_body, encrypt_body};
use zencrypt_core::error::exit;
use zencrypt_core::ids::{KeyId, KeyVersion};

/// A decoder driven from raw bytes.
pub type Target = fn(&[u8]);

/// Every fuzz target, by the name of its `fuzz_targets/<name>.rs` file.
pub const TARGETS: [(&str, Target); 15] = [
    ("ciphertext", ciphertext),
    ("stream_tamper", stream_tamper),
    ("armor", armor),
    ("jwt", jwt),
    ("import", import),
    ("duration", duration),
    ("token", token),
    ("state_digests", state_digests),
    ("template", template),
    ("totp", totp),
    ("import_formats", import_formats),
    ("recovery_key", recovery_key),
    ("service_token", service_token),
    ("age_files", age_files),
    ("group_handovers", group_handovers),
];

/// The fixed data key the ciphertext targets decrypt with.
fn dek() -> Key32 {
    Key32::from_bytes([7u8; 32])
}

fn check_error(e: &Error, code: i32, what: &str) {
    assert_eq!(e.exit_code(), code, "{what}: wrong exit code for {e:?}");
    assert!(!e.to_string().trim().is_empty(), "{what}: empty message");
    assert!(
        !e.to_string().contains('\n'),
        "{what}: message is not one line: {e}"
    );
}

/// What `decrypt` does with its input before the key lookup, then the body under a fixed
/// key: armor detection, de-armoring, the header and the chunk stream. Any input fails
/// with exit 7 (the fuzzer cannot forge a tag), and never panics.
pub fn ciphertext(data: &[u8]) {
    let mut input: &[u8] = data;
    let armored = is_armored(&mut input).expect("in-memory read");
    let mut reader: Box<dyn Read + Send> = if armored {
        Box::new(ArmorReader::new(input))
    } else {
        Box::new(input)
    };
    let result = Header::read_from(&mut reader).and_then(|header| {
        let mut out = Vec::new();
        decrypt_body(&dek(), &header, &mut reader, &mut out, &mut |_| {})
    });
    let Err(e) = result else {
        panic!("ciphertext: random input decrypted under a fixed key");
    };
    check_error(
        &zencrypt_core::cipher::stream_error(e, "reading"),
        exit::INTEGRITY,
        "ciphertext",
    );
}

/// Reads the input as a recipe: a chunk size, a plaintext and a list of edits (flip a
/// bit, truncate, append, swap two chunks) applied to a real ciphertext of that
/// plaintext. An unchanged ciphertext must decrypt to the plaintext; a changed one must
/// fail authentication.
pub fn stream_tamper(data: &[u8]) {
    let mut u = Bytes(data);
    let chunk_size = u32::from(u.byte() % 64) + 1;
    let plain_len = usize::from(u.byte()) * 2;
    let plain = u.take(plain_len).to_vec();
    let header = Header::new(KeyId(1), KeyVersion(1));
    let header = Header {
        chunk_size,
        ..header
    };
    let mut sealed = Vec::new();
    encrypt_body(&dek(), &header, &mut &plain[..], &mut sealed, &mut |_| {})
        .expect("encrypting to memory");
    let original = sealed.clone();
    let edits = u.byte() % 4;
    for _ in 0..edits {
        let at = usize::from(u.byte()) << 8 | usize::from(u.byte());
        match u.byte() % 4 {
            0 if !sealed.is_empty() => {
                let i = at % sealed.len();
                sealed[i] ^= 1 << (u.byte() % 8);
            }
            1 => sealed.truncate(at % (sealed.len() + 1)),
            2 => {
                let n = usize::from(u.byte() % 32) + 1;
                sealed.extend_from_slice(u.take(n));
            }
            _ => {
                let full = chunk_size as usize + 16;
                let chunks = sealed.len() / full;
                if chunks >= 2 {
                    let a = at % chunks;
                    let b = (a + 1) % chunks;
                    let (x, y) = (a.min(b) * full, a.max(b) * full);
                    let (left, right) = sealed.split_at_mut(y);
                    left[x..x + full].swap_with_slice(&mut right[..full]);
                }
            }
        }
    }
    let mut out = Vec::new();
    let result = decrypt_body(&dek(), &header, &mut &sealed[..], &mut out, &mut |_| {});
    if sealed == original {
        assert_eq!(
            result.expect("an intact ciphertext decrypts"),
            plain.len() as u64
        );
        assert_eq!(
            out, plain,
            "stream_tamper: round trip changed the plaintext"
        );
    } else {
        match result {
            Err(e @ StreamError::Tampered(_)) => check_error(
                &zencrypt_core::cipher::stream_error(e, "reading"),
                exit::INTEGRITY,
                "stream_tamper",
            ),
            other => panic!("stream_tamper: a modified ciphertext gave {other:?}"),
        }
    }
}

/// De-armors any input (failing with exit 7, never panicking), and armors then
/// de-armors the input as binary data, which must return it unchanged.
pub fn armor(data: &[u8]) {
    let mut out = Vec::new();
    if let Err(e) = ArmorReader::new(data).read_to_end(&mut out) {
        let e = zencrypt_core::cipher::stream_error(StreamError::Io(e), "reading");
        check_error(&e, exit::INTEGRITY, "armor");
    }
    let mut w = ArmorWriter::new(Vec::new());
    w.write_all(data).expect("armoring to memory");
    let text = w.finish().expect("armoring to memory");
    let mut r: &[u8] = &text;
    assert!(is_armored(&mut r).expect("in-memory read"));
    let mut back = Vec::new();
    ArmorReader::new(r)
        .read_to_end(&mut back)
        .expect("own armor reads back");
    assert_eq!(back, data, "armor: round trip changed the data");
}

/// Session tokens, two ways (chosen by the first byte). Even: the rest is a token as read
/// from the session file or `ZENCRYPT_TOKEN`, which must fail with exit 3 (the fuzzer
/// cannot forge a signature). Odd: the rest is a claims payload that gets a valid HS256
/// signature, so the claim checks behind the signature (issuer, audience, times, user id,
/// session key) see any input; they either accept it or fail with exit 3.
pub fn jwt(data: &[u8]) {
    const SECRET: [u8; 32] = [9u8; 32];
    let keys = zencrypt_core::session::JwtKeys::new(&SECRET).expect("a 32-byte secret");
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let text = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        let signing_input = format!("{}.{}", b64(br#"{"typ":"JWT","alg":"HS256"}"#), b64(rest));
        let sig = MacKey::new(SECRET.to_vec()).compute(&[signing_input.as_bytes()]);
        format!("{signing_input}.{}", b64(&sig))
    };
    match zencrypt_core::session::validate(&keys, &SecretString::from(text)) {
        Ok(contents) => {
            assert!(mode % 2 == 1, "jwt: an unsigned token was accepted");
            let claims: serde_json::Value =
                serde_json::from_slice(rest).expect("accepted claims are JSON");
            assert_eq!(
                claims["sub"].as_str(),
                Some(contents.user_id.to_string().as_str())
            );
        }
        Err(e) => check_error(&e, exit::AUTH, "jwt"),
    }
}

/// `data import` lines: parsed or refused with exit 2, naming the line.
pub fn import(data: &[u8]) {
    match zencrypt_core::records::parse_import(data) {
        Ok(items) => assert!(items.len() <= data.split(|b| *b == b'\n').count()),
        Err(e) => {
            check_error(&e, exit::USAGE, "import");
            assert!(e.to_string().starts_with("import line "), "import: {e}");
        }
    }
}

/// Durations (`--ttl`, `--rotate-every`, `--expires-in`, ...): parsed or refused with exit
/// 2; a parsed value formats to text that parses back to the same value.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match zencrypt_core::duration::parse(text) {
        Ok(secs) => {
            let shown = zencrypt_core::duration::format(secs);
            assert_eq!(
                zencrypt_core::duration::parse(&shown).ok(),
                Some(secs),
                "duration: {text:?} -> {secs} -> {shown:?}"
            );
        }
        Err(e) => check_error(&e, exit::USAGE, "duration"),
    }
}

/// Custom record tokens: accepted exactly when 8-64 characters of `[A-Za-z0-9_-]`,
/// otherwise refused with exit 2.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let valid = (8..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match zencrypt_core::records::token::validate_custom(text) {
        Ok(()) => assert!(valid, "token: accepted {text:?}"),
        Err(e) => {
            assert!(!valid, "token: refused {text:?}");
            check_error(&e, exit::USAGE, "token");
        }
    }
}

/// The row-state digests an audit row carries (read back from the database): decoding
/// never panics, and an input in canonical order encodes back to the same bytes.
pub fn state_digests(data: &[u8]) {
    use zencrypt_core::integrity::StateDigests;
    let mut rows = Vec::new();
    if StateDigests::decode_each(data, |row, d| rows.push((row, d))).is_none() {
        return;
    }
    let canonical = rows.windows(2).all(|w| w[0].0 < w[1].0);
    let mut s = StateDigests::default();
    for (row, d) in rows {
        s.set(row, d);
    }
    if canonical {
        assert_eq!(
            s.encode(),
            data,
            "state_digests: a canonical input does not round-trip"
        );
    }
}

/// A group's hand-over links (read back from the database): decoding never panics, and
/// whatever decodes encodes back to the same bytes.
pub fn group_handovers(data: &[u8]) {
    use zencrypt_core::sharing::HandoverChain;
    if let Some(chain) = HandoverChain::decode(data) {
        assert_eq!(
            chain.encode(),
            data,
            "group_handovers: decoded links do not encode back to their bytes"
        );
        assert_eq!(chain.is_empty(), data.is_empty());
    }
}

/// A cursor over the fuzz input that yields zeros once it runs out.
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// Templates (`inject`, `run --template`): parsed or refused with exit 2 and a one-line
/// message; a parsed text template whose references are written back in canonical form
/// parses to the same pieces, and an environment template names each variable once.
pub fn template(data: &[u8]) {
    use zencrypt_core::template::{self, Piece};
    match template::parse_text(data) {
        Ok(pieces) => {
            let canonical: std::collections::HashMap<String, Vec<u8>> =
                template::references(&pieces)
                    .into_iter()
                    .map(|r| {
                        let text = format!("{{{{ zencrypt://{r} }}}}").into_bytes();
                        (r, text)
                    })
                    .collect();
            let values = canonical.iter().map(|(r, v)| (r.clone(), &v[..])).collect();
            let written = template::render(&pieces, &values).expect("every reference has a value");
            assert_eq!(
                template::parse_text(&written).ok().as_ref(),
                Some(&pieces),
                "template: {data:?} does not survive a round trip"
            );
            for p in &pieces {
                if let Piece::Text(t) = p {
                    assert!(!t.is_empty(), "template: an empty text piece");
                }
            }
        }
        Err(e) => check_error(&e, exit::USAGE, "template"),
    }
    match template::parse_env(data) {
        Ok(vars) => {
            let mut names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            names.sort_unstable();
            let n = names.len();
            names.dedup();
            assert_eq!(names.len(), n, "template: a variable set twice");
            assert!(vars.iter().all(|v| template::is_env_name(&v.name)));
        }
        Err(e) => check_error(&e, exit::USAGE, "env template"),
    }
}

/// TOTP secrets (`data put --totp`): an otpauth URI or base32, parsed or refused with exit
/// 2 and a one-line message; a parsed secret's canonical URI gives the same codes.
pub fn totp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match zencrypt_core::totp::Totp::parse(text) {
        Ok(t) => {
            let again = zencrypt_core::totp::Totp::parse(&t.uri()).expect("a canonical URI parses");
            for now in [0u64, 59, 1_111_111_109, 20_000_000_000] {
                assert_eq!(
                    again.code_at(now),
                    t.code_at(now),
                    "totp: {text:?} at {now}"
                );
            }
            assert_eq!(t.code_at(59).0.len(), t.digits as usize);
        }
        Err(e) => check_error(&e, exit::USAGE, "totp"),
    }
}

/// Recovery keys as typed to `account recover`: read or refused with exit 2 and a
/// one-line message; what reads prints as eight groups of four and reads back the same.
pub fn recovery_key(data: &[u8]) {
    use secrecy::{ExposeSecret, SecretString};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match zencrypt_core::recovery::RecoveryCode::parse(&SecretString::from(text)) {
        Ok(code) => {
            let shown = code.display();
            let again = zencrypt_core::recovery::RecoveryCode::parse(&shown)
                .expect("a shown key reads back");
            assert_eq!(again.display().expose_secret(), shown.expose_secret());
            assert_eq!(shown.expose_secret().len(), 39, "recovery_key: {text:?}");
        }
        Err(e) => check_error(&e, exit::USAGE, "recovery_key"),
    }
}

/// Service tokens as `ZENCRYPT_TOKEN` carries them: what reads as one has a 32-hex id and
/// a 32-byte key, and prints back as the same text.
pub fn service_token(data: &[u8]) {
    use secrecy::{ExposeSecret, SecretString};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(t) = zencrypt_core::services::parse_token(&SecretString::from(text)) {
        assert_eq!(t.id().len(), 32);
        assert!(t.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t.text().expose_secret(), text, "service_token: {text:?}");
    }
}

/// Imports from other managers (`data import --format dotenv|csv|bitwarden-json`): each
/// parsed or refused with exit 2 and a one-line message; what parses maps to valid,
/// distinct record names or is refused the same way.
pub fn import_formats(data: &[u8]) {
    use zencrypt_core::records::formats;
    let check = |parsed: zencrypt_core::Result<Vec<formats::Foreign>>, what: &str| match parsed {
        Ok(foreign) => match formats::to_items(foreign, "imported/") {
            Ok(items) => {
                let mut names: Vec<&str> = items
                    .iter()
                    .map(|(i, _)| i.name.as_deref().expect("named"))
                    .collect();
                assert!(
                    names
                        .iter()
                        .all(|n| zencrypt_core::records::is_valid_name(n)),
                    "{what}"
                );
                names.sort_unstable();
                let n = names.len();
                names.dedup();
                assert_eq!(names.len(), n, "{what}: two records with one name");
            }
            Err(e) => check_error(&e, exit::USAGE, what),
        },
        Err(e) => check_error(&e, exit::USAGE, what),
    };
    check(formats::parse_dotenv(data), "dotenv");
    check(formats::parse_csv(data, "name", "value"), "csv");
    check(formats::parse_bitwarden(data).map(|b| b.items), "bitwarden");
}

/// The identity the age_files target decrypts with (a test key, used nowhere else).
const FUZZ_AGE_IDENTITY: &str =
    "AGE-SECRET-KEY-1GE25AC92G4PDVD908HGTCV9H8QF4DM7V5F393484AVQGE6J9747QRXRZ2S";

/// age recipients files, identity files and age files (`encrypt --recipients-file`,
/// `decrypt --identity`, `decrypt` of an age file): each parsed or refused with the
/// documented exit code and a one-line message that never repeats an identity line; what
/// parses as recipients prints back as recipients.
pub fn age_files(data: &[u8]) {
    use std::str::FromStr;
    use zencrypt_core::crypto::agefile;
    match agefile::parse_recipients_file("f", data) {
        Ok(rs) => {
            for r in rs {
                let again = age::x25519::Recipient::from_str(&r.to_string())
                    .expect("a parsed recipient prints back as one");
                assert_eq!(again.to_string(), r.to_string());
            }
        }
        Err(e) => check_error(&e, exit::USAGE, "age recipients file"),
    }
    if let Err(e) = agefile::parse_identity_file("f", data) {
        check_error(&e, exit::USAGE, "age identity file");
        assert!(
            !e.to_string().contains("AGE-SECRET-KEY-"),
            "age identity file: the message repeats a key line: {e}"
        );
    }
    let id = age::x25519::Identity::from_str(FUZZ_AGE_IDENTITY).expect("the test identity");
    let mut out = Vec::new();
    if let Err(e) = agefile::decrypt(&[&id], &mut &data[..], &mut out, &mut |_| {}) {
        assert!(
            [exit::USAGE, exit::NOT_FOUND, exit::INTEGRITY].contains(&e.exit_code()),
            "age file: exit {} for {e:?}",
            e.exit_code()
        );
        check_error(&e, e.exit_code(), "age file");
    }
}
