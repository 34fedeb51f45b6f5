//! Templates that name records instead of holding secrets.
//!
//! Two forms, both read as bytes so that a template in any encoding comes out unchanged
//! around its references:
//! - a text template (`inject`): `{{ zencrypt://REF }}` anywhere, with optional spaces or
//!   tabs inside the braces, is replaced by the record's value. A `{{` that is not
//!   followed by `zencrypt://` is ordinary text.
//! - an environment template (`run --template`): one `NAME=VALUE` a line (`export ` may
//!   precede it, `#` starts a comment line, blank lines are skipped). A VALUE that is
//!   `zencrypt://REF` alone (optionally quoted, optionally followed by a `#` comment) is
//!   the record's value; any other VALUE is text, in which `{{ zencrypt://REF }}` is
//!   replaced as in a text template.
//!
//! REF is everything after `zencrypt://` up to whitespace or `}}`: a token, a name such as
//! `prod/db/password`, or `OWNER:NAME`.

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The scheme that marks a reference.
pub const SCHEME: &str = "zencrypt://";
/// Longest reference accepted (an owner, a colon and the longest name, with room).
const MAX_REF: usize = 256;

/// A run of text or a reference to a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes copied as they are.
    Text(Vec<u8>),
    /// A record reference (token, name or `OWNER:NAME`).
    Ref(String),
}

/// One variable of an environment template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value, as text and references.
    pub value: Vec<Piece>,
    /// The template line it came from (1-based).
    pub line: usize,
}

fn line_error(line: usize, what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("template line {line}: {what}"))
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether `r` may be a reference: 1-256 bytes of `A-Z a-z 0-9 . _ - / :`.
fn valid_ref(r: &[u8]) -> bool {
    !r.is_empty()
        && r.len() <= MAX_REF
        && r.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':'))
}

fn take_ref(bytes: &[u8], line: usize) -> Result<(String, usize)> {
    let end = bytes
        .iter()
        .enumerate()
        .position(|(i, &b)| b.is_ascii_whitespace() || bytes[i..].starts_with(b"}}"))
        .unwrap_or(bytes.len());
    let r = &bytes[..end];
    if r.is_empty() {
        return Err(line_error(
            line,
            format!("'{SCHEME}' is followed by no reference"),
        ));
    }
    if !valid_ref(r) {
        return Err(line_error(
            line,
            format!(
                "'{}{}' is not a record reference (a token, a name such as prod/db/password, or OWNER:NAME)",
                SCHEME,
                crate::text::printable(&String::from_utf8_lossy(r), 64)
            ),
        ));
    }
    Ok((String::from_utf8_lossy(r).into_owned(), end))
}

/// Parses a text template into text and references.
pub fn parse_text(input: &[u8]) -> Result<Vec<Piece>> {
    parse_pieces(input, 1)
}

fn parse_pieces(input: &[u8], first_line: usize) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let mut line = first_line;
    while i < input.len() {
        if input[i] == b'\n' {
            line += 1;
            i += 1;
            continue;
        }
        if !input[i..].starts_with(b"{{") {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while j < input.len() && is_space(input[j]) {
            j += 1;
        }
        if !input[j..].starts_with(SCHEME.as_bytes()) {
            i += 2;
            continue;
        }
        j += SCHEME.len();
        let (reference, len) = take_ref(&input[j..], line)?;
        j += len;
        while j < input.len() && is_space(input[j]) {
            j += 1;
        }
        if !input[j..].starts_with(b"}}") {
            return Err(line_error(
                line,
                format!("the reference to '{reference}' is not closed with '}}}}'"),
            ));
        }
        if text_start < i {
            pieces.push(Piece::Text(input[text_start..i].to_vec()));
        }
        pieces.push(Piece::Ref(reference));
        i = j + 2;
        text_start = i;
    }
    if text_start < input.len() {
        pieces.push(Piece::Text(input[text_start..].to_vec()));
    }
    Ok(pieces)
}

/// Whether `name` may name an environment variable: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Parses one `NAME=VALUE` (from a template line or `--env`).
fn parse_assignment(text: &[u8], line: usize) -> Result<EnvVar> {
    let eq = text
        .iter()
        .position(|&b| b == b'=')
        .ok_or_else(|| line_error(line, "expected NAME=VALUE"))?;
    let name = std::str::from_utf8(&text[..eq])
        .ok()
        .filter(|n| is_env_name(n))
        .ok_or_else(|| {
            line_error(
                line,
                format!(
                    "'{}' is not a variable name (letters, digits and _, not starting with a digit)",
                    crate::text::printable(&String::from_utf8_lossy(&text[..eq]), 64)
                ),
            )
        })?
        .to_string();
    let mut value = &text[eq + 1..];
    // A quoted value loses its quotes; only a comment may follow them.
    if let Some(&q) = value.first().filter(|&&b| b == b'"' || b == b'\'') {
        let close = value[1..]
            .iter()
            .position(|&b| b == q)
            .ok_or_else(|| line_error(line, "the quoted value is not closed"))?;
        let tail = value[close + 2..].trim_ascii_start();
        if !(tail.is_empty() || tail.starts_with(b"#")) {
            return Err(line_error(line, "unexpected text after the closing quote"));
        }
        value = &value[1..close + 1];
    }
    if let Some(rest) = value.strip_prefix(SCHEME.as_bytes()) {
        let (reference, len) = take_ref(rest, line)?;
        let tail = rest[len..].trim_ascii_start();
        if tail.is_empty() || tail.starts_with(b"#") {
            return Ok(EnvVar {
                name,
                value: vec![Piece::Ref(reference)],
                line,
            });
        }
        return Err(line_error(
            line,
            format!("unexpected text after the reference to '{reference}'"),
        ));
    }
    Ok(EnvVar {
        name,
        value: parse_pieces(value, line)?,
        line,
    })
}

/// Parses an `--env NAME=REF` option: the value is a reference, with or without
/// `zencrypt://`.
pub fn parse_env_option(option: &str) -> Result<EnvVar> {
    let (name, reference) = option.split_once('=').ok_or_else(|| {
        Error::Usage(format!(
            "--env takes NAME=REF, not '{}'",
            crate::text::printable(option, 64)
        ))
    })?;
    if !is_env_name(name) {
        return Err(Error::Usage(format!(
            "--env: '{}' is not a variable name (letters, digits and _, not starting with a digit)",
            crate::text::printable(name, 64)
        )));
    }
    let reference = reference.strip_prefix(SCHEME).unwrap_or(reference);
    if reference.is_empty() {
        return Err(Error::Usage(format!(
            "--env {name}: no reference after '='"
        )));
    }
    if !valid_ref(reference.as_bytes()) {
        return Err(Error::Usage(format!(
            "--env {name}: '{}' is not a record reference (a token, a name such as prod/db/password, or OWNER:NAME)",
            crate::text::printable(reference, 64)
        )));
    }
    Ok(EnvVar {
        name: name.to_string(),
        value: vec![Piece::Ref(reference.to_string())],
        line: 0,
    })
}

/// Parses an environment template. A name set twice is an error.
pub fn parse_env(input: &[u8]) -> Result<Vec<EnvVar>> {
    let mut vars: Vec<EnvVar> = Vec::new();
    for (n, raw) in input.split(|&b| b == b'\n').enumerate() {
        let line = n + 1;
        let mut text = raw.strip_suffix(b"\r").unwrap_or(raw).trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            continue;
        }
        if let Some(rest) = text.strip_prefix(b"export")
            && rest.first().is_some_and(|&b| is_space(b))
        {
            text = rest.trim_ascii_start();
        }
        let var = parse_assignment(text, line)?;
        if let Some(first) = vars.iter().find(|v| v.name == var.name) {
            return Err(line_error(
                line,
                format!("{} is already set on line {}", var.name, first.line),
            ));
        }
        vars.push(var);
    }
    Ok(vars)
}

/// The distinct references of some pieces, in order of first use.
pub fn references<'a>(pieces: impl IntoIterator<Item = &'a Piece>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        if let Piece::Ref(r) = p
            && !out.contains(r)
        {
            out.push(r.clone());
        }
    }
    out
}

/// Renders pieces with each reference's value. Every reference must be in `values`.
pub fn render(pieces: &[Piece], values: &HashMap<String, &[u8]>) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::new());
    for p in pieces {
        match p {
            Piece::Text(t) => out.extend_from_slice(t),
            Piece::Ref(r) => out.extend_from_slice(
                values
                    .get(r)
                    .ok_or_else(|| Error::Internal(format!("no value for '{r}'")))?,
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Piece::{Ref, Text};

    fn text(s: &str) -> Piece {
        Text(s.as_bytes().to_vec())
    }

    fn r(s: &str) -> Piece {
        Ref(s.to_string())
    }

    fn usage(e: Error) -> String {
        match e {
            Error::Usage(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_templates() {
        assert_eq!(
            parse_text(b"user: app\npass: {{ zencrypt://prod/db/password }}\n").unwrap(),
            vec![text("user: app\npass: "), r("prod/db/password"), text("\n")]
        );
        assert_eq!(
            parse_text(b"{{zencrypt://a}}{{\tzencrypt://zt_B-1\t}}").unwrap(),
            vec![r("a"), r("zt_B-1")]
        );
        assert_eq!(
            parse_text(b"{{ zencrypt://alice:prod/x }}").unwrap(),
            vec![r("alice:prod/x")]
        );
        // Other braces are text, untouched, in any encoding.
        let other = b"{{ .Values.x }} {{ {{\xff\xfe }}";
        assert_eq!(parse_text(other).unwrap(), vec![Text(other.to_vec())]);
        assert_eq!(parse_text(b"").unwrap(), vec![]);
    }

    #[test]
    fn text_template_errors_name_the_line() {
        assert_eq!(
            usage(parse_text(b"a\nb {{ zencrypt://x y }}").unwrap_err()),
            "template line 2: the reference to 'x' is not closed with '}}'"
        );
        assert_eq!(
            usage(parse_text(b"{{ zencrypt:// }}").unwrap_err()),
            "template line 1: 'zencrypt://' is followed by no reference"
        );
        assert_eq!(
            usage(parse_text(b"\n\n{{ zencrypt://a$b }}").unwrap_err()),
            "template line 3: 'zencrypt://a$b' is not a record reference (a token, a name such as prod/db/password, or OWNER:NAME)"
        );
        assert!(parse_text(b"{{ zencrypt://open").is_err());
    }

    #[test]
    fn rendering() {
        let pieces =
            parse_text(b"a={{ zencrypt://x }}, b={{ zencrypt://y }}, a={{ zencrypt://x }}")
                .unwrap();
        assert_eq!(references(&pieces), vec!["x".to_string(), "y".to_string()]);
        let values: HashMap<String, &[u8]> = [
            ("x".to_string(), &b"1"[..]),
            ("y".to_string(), &b"\x00\xff"[..]),
        ]
        .into();
        assert_eq!(
            &render(&pieces, &values).unwrap()[..],
            b"a=1, b=\x00\xff, a=1"
        );
        assert!(render(&[r("z")], &values).is_err());
    }

    #[test]
    fn env_templates() {
        let vars = parse_env(
            b"# database\nDB_PASSWORD=zencrypt://db-password\n\nexport API_KEY=\"zencrypt://prod/api\"  # the key\r\nURL=postgres://app:{{ zencrypt://db-password }}@db/app\nMODE='plain text'\nEMPTY=\n",
        )
        .unwrap();
        let got: Vec<(&str, &[Piece], usize)> = vars
            .iter()
            .map(|v| (v.name.as_str(), &v.value[..], v.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("DB_PASSWORD", &[r("db-password")][..], 2),
                ("API_KEY", &[r("prod/api")][..], 4),
                (
                    "URL",
                    &[text("postgres://app:"), r("db-password"), text("@db/app")][..],
                    5
                ),
                ("MODE", &[text("plain text")][..], 6),
                ("EMPTY", &[][..], 7),
            ]
        );
    }

    #[test]
    fn env_template_errors_name_the_line() {
        assert_eq!(
            usage(parse_env(b"A=1\nnot an assignment").unwrap_err()),
            "template line 2: expected NAME=VALUE"
        );
        assert_eq!(
            usage(parse_env(b"1A=zencrypt://x").unwrap_err()),
            "template line 1: '1A' is not a variable name (letters, digits and _, not starting with a digit)"
        );
        assert_eq!(
            usage(parse_env(b"A=zencrypt://x\nB=2\nA=3").unwrap_err()),
            "template line 3: A is already set on line 1"
        );
        assert_eq!(
            usage(parse_env(b"A=zencrypt://x trailing").unwrap_err()),
            "template line 1: unexpected text after the reference to 'x'"
        );
        assert_eq!(
            usage(parse_env(b"A='x").unwrap_err()),
            "template line 1: the quoted value is not closed"
        );
        assert_eq!(
            usage(parse_env(b"A='x' y").unwrap_err()),
            "template line 1: unexpected text after the closing quote"
        );
    }

    #[test]
    fn env_options() {
        let v = parse_env_option("DB=prod/db").unwrap();
        assert_eq!((v.name.as_str(), v.value), ("DB", vec![r("prod/db")]));
        let v = parse_env_option("DB=zencrypt://zt_abc").unwrap();
        assert_eq!(v.value, vec![r("zt_abc")]);
        assert_eq!(
            usage(parse_env_option("DB").unwrap_err()),
            "--env takes NAME=REF, not 'DB'"
        );
        assert_eq!(
            usage(parse_env_option("A-B=x").unwrap_err()),
            "--env: 'A-B' is not a variable name (letters, digits and _, not starting with a digit)"
        );
        assert_eq!(
            usage(parse_env_option("A=").unwrap_err()),
            "--env A: no reference after '='"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_and_keep_the_text(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            if let Ok(pieces) = parse_text(&bytes) {
                let total: usize = pieces.iter().map(|p| match p { Text(t) => t.len(), Ref(r) => r.len() + SCHEME.len() + 4 }).sum();
                proptest::prop_assert!(total <= bytes.len());
            }
            let _ = parse_env(&bytes);
        }
    }
}
