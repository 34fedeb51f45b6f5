//! Printing: data to stdout (plain or one JSON document), messages and errors to stderr
//! (`error: ...` plus an optional `hint: ...`; with `--json`, a JSON error object).

use std::io::{self, Write};

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::{Value, json};

use crate::config::{ColorChoice, Config};
use crate::error::Error;

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

    /// Writes data to stdout, as given.
    pub fn data(&self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// Writes one line of data to stdout.
    pub fn data_line(&self, text: &str) -> io::Result<()> {
        self.data(&format!("{text}\n"))
    }

    /// Writes one JSON document to stdout.
    pub fn json_doc(&self, value: &Value) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into());
        self.data_line(&text)
    }

    /// A message on stderr, unless `-q`.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
    }

    /// Prints an error (always, even with `-q`).
    pub fn error(&self, e: &Error) {
        let mut err = io::stderr().lock();
        if self.json {
            let mut obj = json!({ "code": e.code(), "message": e.to_string() });
            if let Some(h) = e.hint() {
                obj["hint"] = Value::String(h);
            }
            let _ = writeln!(err, "{}", json!({ "error": obj }));
            return;
        }
        let label = if self.color {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        let _ = writeln!(err, "{label} {e}");
        if let Some(h) = e.hint() {
            let label = if self.color {
                "\x1b[1;36mhint:\x1b[0m"
            } else {
                "hint:"
            };
            let _ = writeln!(err, "{label} {h}");
        }
    }
}

/// A plain table with a header row, sized to the terminal when there is one.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(|h| h.to_uppercase()));
    for r in rows {
        t.add_row(r);
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
