//! Printing: data to stdout (plain or one JSON document), messages and errors to stderr
//! (`error: ...` plus an optional `hint: ...`; with `--json`, a JSON error object).

use std::borrow::Cow;
use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::{Value, json};

use zencrypt_core::config::{ColorChoice, Config};
use zencrypt_core::error::Error;

/// `-q` for messages printed away from an [`Output`] (set once at start).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records `-q` for [`notice`].
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// A message on stderr, unless `-q`, from code that has no [`Output`] at hand.
pub fn notice(text: &str) {
    if !QUIET.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = writeln!(io::stderr().lock(), "{}", printable_lines(text));
    }
}

/// How this process prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`: stdout carries exactly one JSON document.
    pub json: bool,
    /// `-q`: only data is printed.
    pub quiet: bool,
    /// Colour on stderr.
    pub color: bool,
}

impl Output {
    /// Output settings from the configuration.
    pub fn from_config(cfg: &Config) -> Self {
        use std::io::IsTerminal;
        let color = match cfg.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => io::stderr().is_terminal(),
        };
        Output {
            json: cfg.json,
            quiet: cfg.quiet,
            color,
        }
    }

    /// Plain output for when the configuration could not be loaded.
    pub fn fallback(json: bool) -> Self {
        Output {
            json,
            quiet: false,
            color: false,
        }
    }

    /// Writes text for people to stdout, with terminal control characters escaped (see
    /// [`printable`]; line breaks and tabs stay). Raw values do not come through here.
    pub fn data(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(printable_lines(text).as_bytes())?;
        out.flush()
    }

    /// Writes one line of data to stdout.
    pub fn data_line(&self, text: &str) -> io::Result<()> {
        self.data(&format!("{text}\n"))
    }

    /// Writes one JSON document to stdout.
    pub fn json_doc(&self, value: &Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        let mut out = io::stdout().lock();
        writeln!(out, "{}", json_escape_c1(&text))?;
        out.flush()
    }

    /// Writes one JSON object to stdout with a secret string added as its last field.
    /// The secret goes straight into a buffer that is wiped after the write; it is never
    /// held in a `Value`.
    pub fn json_secret_doc(&self, object: &Value, field: &str, secret: &str) -> io::Result<()> {
        let text = serde_json::to_string_pretty(object).unwrap_or_else(|_| "{}".into());
        let body = text.trim_end().strip_suffix('}').unwrap_or("{").trim_end();
        let mut doc =
            zeroize::Zeroizing::new(String::with_capacity(text.len() + secret.len() + 32));
        doc.push_str(body);
        if body != "{" {
            doc.push(',');
        }
        doc.push_str("\n  ");
        doc.push_str(&serde_json::to_string(field).unwrap_or_default());
        doc.push_str(": ");
        let quoted = zeroize::Zeroizing::new(serde_json::to_string(secret).unwrap_or_default());
        doc.push_str(&quoted);
        doc.push_str("\n}\n");
        let mut out = io::stdout().lock();
        out.write_all(json_escape_c1(&doc).as_bytes())?;
        out.flush()
    }

    /// A message on stderr, unless `-q`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{}", printable_lines(text));
        }
    }

    /// A message on stderr that `-q` does not silence: what is lost if nobody sees it.
    pub fn important(&self, text: &str) {
        let _ = writeln!(io::stderr().lock(), "{}", printable_lines(text));
    }

    /// Prints an error (always, even with `-q`).
    pub fn error(&self, e: &Error) {
        let mut err = io::stderr().lock();
        if self.json {
            let mut obj = json!({ "code": e.code(), "message": e.to_string() });
            if let Some(h) = e.hint() {
                obj["hint"] = Value::String(h);
            }
            let _ = writeln!(
                err,
                "{}",
                json_escape_c1(&json!({ "error": obj }).to_string())
            );
            return;
        }
        let label = if self.color {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        let _ = writeln!(err, "{label} {}", printable(&e.to_string()));
        if let Some(h) = e.hint() {
            let h = printable(&h);
            let label = if self.color {
                "\x1b[1;36mhint:\x1b[0m"
            } else {
                "hint:"
            };
            let _ = writeln!(err, "{label} {h}");
        }
    }
}

/// Whether a character can steer a terminal or reorder what it shows: C0 controls, DEL,
/// C1 controls, and the bidirectional marks, embeddings, overrides and isolates.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text as it may reach a terminal: every control and bidirectional-formatting character
/// (an escape sequence in a record name, a right-to-left override in an audit target) is
/// shown as a `\u{1b}`-style escape instead, line breaks included. Names, details and
/// messages pass through here; a record's raw value never does.
pub fn printable(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// As [`printable`], but line breaks and tabs stay: for multi-line text.
pub fn printable_lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n' || c == '\t')
}

/// The most plaintext `decrypt` and `data get` write to a terminal.
pub const TERMINAL_MAX: usize = 1 << 20;

/// The refusal of plaintext longer than [`TERMINAL_MAX`] on a terminal.
pub fn too_much_for_a_terminal() -> Error {
    Error::PlaintextToTerminal(format!(
        "refusing to write more than {} MiB of plaintext to a terminal",
        TERMINAL_MAX >> 20
    ))
}

/// Whether plaintext may be written raw to a terminal: valid UTF-8 with no control
/// characters but line breaks, tabs and carriage returns, and at most [`TERMINAL_MAX`]
/// bytes. Anything else could be an escape sequence or garbage the terminal acts on.
pub fn terminal_text_check(bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() > TERMINAL_MAX {
        return Err(too_much_for_a_terminal());
    }
    let text = std::str::from_utf8(bytes).is_ok_and(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    });
    if text {
        Ok(())
    } else {
        Err(Error::PlaintextToTerminal(
            "refusing to write binary plaintext to a terminal".into(),
        ))
    }
}

/// serde_json escapes C0 controls but writes DEL and C1 controls (which some terminals
/// read as escape sequences) as they are: escape those too. Outside strings JSON text has
/// no such characters, so the result is the same JSON document.
fn json_escape_c1(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| ('\u{7f}'..='\u{9f}').contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if ('\u{7f}'..='\u{9f}').contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A plain table with a header row, sized to the terminal when there is one. Cells are
/// escaped with [`printable`].
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    fitted_table(header, rows, &[])
}

/// Columns that are never wrapped: tokens, names and times are read and copied whole.
const WHOLE: [&str; 11] = [
    "token",
    "name",
    "username",
    "updated",
    "expires",
    "at",
    "created",
    "last login",
    "written",
    "seq",
    "version",
];

/// The width of the terminal stdout is, if it is one.
pub fn terminal_width() -> Option<usize> {
    console::Term::stdout()
        .size_checked()
        .map(|(_, cols)| usize::from(cols))
}

/// A table that fits the terminal: when its natural width is more than the terminal's,
/// the columns named in `drop_first` are left out, in that order, until it fits; what
/// is still too wide wraps, except tokens, names and times (see [`WHOLE`]). Off a
/// terminal every column is shown.
pub fn fitted_table(header: &[&str], rows: Vec<Vec<String>>, drop_first: &[&str]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c).into_owned()).collect())
        .collect();
    let mut keep: Vec<usize> = (0..header.len()).collect();
    if let Some(width) = terminal_width() {
        let column = |i: usize| {
            rows.iter()
                .map(|r| r[i].lines().map(|l| l.chars().count()).max().unwrap_or(0))
                .max()
                .unwrap_or(0)
                .max(header[i].len())
        };
        let total =
            |keep: &[usize]| keep.iter().map(|&i| column(i)).sum::<usize>() + 2 * keep.len();
        for name in drop_first {
            if total(&keep) <= width {
                break;
            }
            if let Some(pos) = header.iter().position(|h| h == name) {
                keep.retain(|&i| i != pos);
            }
        }
    }
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(
            keep.iter()
                .map(|&i| printable(&header[i].to_uppercase()).into_owned()),
        );
    for r in &rows {
        t.add_row(keep.iter().map(|&i| r[i].clone()));
    }
    for (n, &i) in keep.iter().enumerate() {
        if WHOLE.contains(&header[i])
            && let Some(c) = t.column_mut(n)
        {
            c.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
    }
    let text = t.to_string();
    // The preset pads every line with a leading space; drop it and trailing blanks.
    text.lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(printable("plain name-1"), "plain name-1");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\x1b]52;c;aGk=\x07b"),
            "a\\u{1b}]52;c;aGk=\\u{7}b"
        );
        assert_eq!(
            printable("\x1b[31mX\x7f\u{9b}"),
            "\\u{1b}[31mX\\u{7f}\\u{9b}"
        );
        assert_eq!(
            printable("txt.\u{202e}exe\u{2066}\u{200f}\u{61c}"),
            "txt.\\u{202e}exe\\u{2066}\\u{200f}\\u{61c}"
        );
        assert_eq!(printable("two\nlines\t"), "two\\u{a}lines\\u{9}");
        assert_eq!(printable_lines("two\nlines\t\x1b"), "two\nlines\t\\u{1b}");
        // Accents, CJK and emoji are text, not controls.
        assert_eq!(printable("café 東京 🔑"), "café 東京 🔑");
    }

    #[test]
    fn json_gets_c1_controls_escaped_and_stays_json() {
        let doc = json!({ "name": "a\u{9b}b\u{7f}\x1b" }).to_string();
        let safe = json_escape_c1(&doc);
        assert_eq!(safe, "{\"name\":\"a\\u009bb\\u007f\\u001b\"}");
        let back: Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "a\u{9b}b\u{7f}\x1b");
    }

    #[test]
    fn only_plain_text_goes_to_a_terminal() {
        assert!(terminal_text_check(b"").is_ok());
        assert!(terminal_text_check("line one\r\n\tcaf\u{e9} \u{1f511}\n".as_bytes()).is_ok());
        for binary in [
            &b"\x00\x01"[..],
            b"\xff\xfe",
            b"ok\x1b[2J",
            b"del\x7f",
            "c1\u{9b}".as_bytes(),
        ] {
            let e = terminal_text_check(binary).unwrap_err();
            assert_eq!(
                e.to_string(),
                "refusing to write binary plaintext to a terminal"
            );
            assert_eq!(e.exit_code(), 2);
        }
        let e = terminal_text_check(&vec![b'a'; TERMINAL_MAX + 1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "refusing to write more than 1 MiB of plaintext to a terminal"
        );
        assert!(terminal_text_check(&vec![b'a'; TERMINAL_MAX]).is_ok());
    }

    #[test]
    fn tables_escape_their_cells() {
        let t = table(&["name"], vec![vec!["\x1b[2Jx".into()]]);
        assert_eq!(t, "NAME\n\\u{1b}[2Jx");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["name", "role"],
            vec![
                vec!["alice".into(), "admin".into()],
                vec!["bo".into(), "user".into()],
            ],
        );
        assert_eq!(t, "NAME   ROLE\nalice  admin\nbo     user");
    }
}
