//! What other secret managers export, read into records: `.env` files, CSV with a header,
//! and Bitwarden's unencrypted JSON export. Names from elsewhere may hold characters a
//! record name may not: [`map_name`] replaces them visibly (`--dry-run` shows the
//! mapping). Errors name the line or item, never a value.

use serde_json::Value;
use zeroize::Zeroizing;

use super::{ImportItem, MAX_NAME, is_valid_name};
use crate::error::{Error, Result};

/// One record from another manager: its name there and the value.
pub struct Foreign {
    /// The name as the other manager has it.
    pub from: String,
    /// The value.
    pub value: Zeroizing<Vec<u8>>,
    /// Where it was (a line or an item number), for messages.
    pub at: String,
}

fn refuse(at: &str, what: impl std::fmt::Display) -> Error {
    Error::Usage(format!("{at}: {what}; nothing was imported"))
}

/// A record name for a name from elsewhere: every character outside `A-Z a-z 0-9 . _ -`
/// and `/` becomes `-`, runs of `/` become one, a leading or trailing `/` goes, and a
/// leading `zt_` (the generated tokens' prefix) gets an `x` in front. `prefix` (a path
/// ending in `/`, or empty) goes in front.
pub fn map_name(raw: &str, prefix: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/') {
            c
        } else {
            '-'
        };
        if c == '/' && (out.is_empty() || out.ends_with('/')) {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('/') {
        out.pop();
    }
    if out.starts_with("zt_") {
        out.insert(0, 'x');
    }
    let name = format!("{prefix}{out}");
    (!out.is_empty() && name.len() <= MAX_NAME && is_valid_name(&name)).then_some(name)
}

/// Checks a `--prefix`: a valid name followed by `/`.
pub fn check_prefix(prefix: &str) -> Result<()> {
    match prefix.strip_suffix('/') {
        Some(p) if is_valid_name(p) => Ok(()),
        _ => Err(Error::Usage(format!(
            "--prefix must be a path ending in '/', such as 'imported/' or 'prod/app/', not '{}'",
            crate::text::printable(prefix, 64)
        ))),
    }
}

/// Maps every foreign name (see [`map_name`]) under `prefix`; two that land on the same
/// record name are an error naming both.
pub fn to_items(foreign: Vec<Foreign>, prefix: &str) -> Result<Vec<(ImportItem, String)>> {
    let mut out: Vec<(ImportItem, String)> = Vec::with_capacity(foreign.len());
    let mut seen = std::collections::HashMap::new();
    for f in foreign {
        let name = map_name(&f.from, prefix).ok_or_else(|| {
            refuse(
                &f.at,
                format!(
                    "'{}' cannot be made into a record name",
                    crate::text::printable(&f.from, 64)
                ),
            )
        })?;
        if let Some(first) = seen.insert(name.clone(), f.at.clone()) {
            return Err(refuse(
                &f.at,
                format!("it would be named '{name}', like {first}"),
            ));
        }
        out.push((
            ImportItem {
                name: Some(name),
                value: f.value,
                expires_in: None,
            },
            f.from,
        ));
    }
    Ok(out)
}

/// A `.env` file: `NAME=VALUE` lines, `export ` optional, `#` comment lines and blank
/// lines skipped. A value in single quotes is taken as it is; in double quotes, `\n`,
/// `\t`, `\"` and `\\` are unescaped; unquoted, it is trimmed and ends at ` #`. Nothing is
/// expanded (`$VAR` stays as it is).
pub fn parse_dotenv(input: &[u8]) -> Result<Vec<Foreign>> {
    let text = std::str::from_utf8(input).map_err(|e| {
        refuse(
            "the .env file",
            format!("it is not UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    let mut out = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let at = format!("line {}", n + 1);
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map_or(line, str::trim_start);
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| refuse(&at, "expected NAME=VALUE"))?;
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(refuse(&at, "expected NAME=VALUE"));
        }
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            let end = rest
                .find('\'')
                .ok_or_else(|| refuse(&at, "the quoted value is not closed"))?;
            after_quote(&rest[end + 1..], &at)?;
            Zeroizing::new(rest.as_bytes()[..end].to_vec())
        } else if let Some(rest) = value.strip_prefix('"') {
            let mut v = Zeroizing::new(Vec::new());
            let mut chars = rest.chars();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        after_quote(chars.as_str(), &at)?;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some('n') => v.push(b'\n'),
                        Some('t') => v.push(b'\t'),
                        Some('r') => v.push(b'\r'),
                        Some(c @ ('"' | '\\' | '$' | '`')) => v.push(c as u8),
                        Some(c) => {
                            v.push(b'\\');
                            let mut b = [0u8; 4];
                            v.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                        }
                        None => v.push(b'\\'),
                    },
                    c => {
                        let mut b = [0u8; 4];
                        v.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            if !closed {
                return Err(refuse(&at, "the quoted value is not closed"));
            }
            v
        } else {
            let end = value.find(" #").unwrap_or(value.len());
            Zeroizing::new(value[..end].trim_end().as_bytes().to_vec())
        };
        out.push(Foreign {
            from: name.to_string(),
            value,
            at,
        });
    }
    Ok(out)
}

/// Only a comment may follow a quoted value.
fn after_quote(rest: &str, at: &str) -> Result<()> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(())
    } else {
        Err(refuse(at, "unexpected text after the closing quote"))
    }
}

/// CSV with a header row naming the name and value columns (compared ignoring case).
pub fn parse_csv(input: &[u8], name_column: &str, value_column: &str) -> Result<Vec<Foreign>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| refuse("the CSV header", csv_error(&e)))?
        .clone();
    let find = |wanted: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                refuse(
                    "the CSV header",
                    format!(
                        "it has no column '{wanted}' (it has: {})",
                        headers
                            .iter()
                            .map(|h| crate::text::printable(h, 32))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    };
    let (name_at, value_at) = (find(name_column)?, find(value_column)?);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let at = format!("line {}", reader.position().line());
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(refuse(&at, csv_error(&e))),
        }
        let at = format!("line {}", record.position().map_or(0, csv::Position::line));
        let name = std::str::from_utf8(&record[name_at])
            .map_err(|_| refuse(&at, "the name is not UTF-8"))?
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(refuse(&at, "the name is empty"));
        }
        out.push(Foreign {
            from: name,
            value: Zeroizing::new(record[value_at].to_vec()),
            at,
        });
        // The record's bytes are overwritten by the next read; clear them now.
        record.clear();
    }
    Ok(out)
}

/// A CSV error without the field's content.
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("it has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "it is not UTF-8".into(),
        csv::ErrorKind::Io(_) => "it could not be read".into(),
        _ => "it is not valid CSV".into(),
    }
}

/// What a Bitwarden export gave, and what it left out.
pub struct Bitwarden {
    /// The records.
    pub items: Vec<Foreign>,
    /// Items with nothing secret to store (cards, identities, logins without a
    /// password), by name.
    pub skipped: Vec<String>,
}

/// Bitwarden's unencrypted JSON export: each login's password becomes `FOLDER/NAME`, its
/// TOTP secret `FOLDER/NAME/totp`, and each secure note's text `FOLDER/NAME`.
pub fn parse_bitwarden(input: &[u8]) -> Result<Bitwarden> {
    let doc: Value = serde_json::from_slice(input).map_err(|e| {
        refuse(
            "the Bitwarden export",
            format!("it is not JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    if doc.get("encrypted").and_then(Value::as_bool) == Some(true) {
        return Err(refuse(
            "the Bitwarden export",
            "it is encrypted; export again choosing the unencrypted .json format",
        ));
    }
    let items = doc
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| refuse("the Bitwarden export", "it has no \"items\" list"))?;
    let folders: std::collections::HashMap<&str, &str> = doc
        .get("folders")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| Some((f.get("id")?.as_str()?, f.get("name")?.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Bitwarden {
        items: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("item {}", i + 1);
        let name = item
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| refuse(&at, "it has no name"))?;
        let path = match item
            .get("folderId")
            .and_then(Value::as_str)
            .and_then(|f| folders.get(f))
        {
            Some(folder) => format!("{folder}/{name}"),
            None => name.to_string(),
        };
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
        };
        let mut found = false;
        match item.get("type").and_then(Value::as_i64) {
            Some(1) => {
                let login = item.get("login");
                if let Some(pw) = text(login.and_then(|l| l.get("password"))) {
                    out.items.push(Foreign {
                        from: path.clone(),
                        value: pw,
                        at: at.clone(),
                    });
                    found = true;
                }
                if let Some(totp) = text(login.and_then(|l| l.get("totp"))) {
                    out.items.push(Foreign {
                        from: format!("{path}/totp"),
                        value: totp,
                        at: at.clone(),
                    });
                    found = true;
                }
            }
            Some(2) => {
                if let Some(notes) = text(item.get("notes")) {
                    out.items.push(Foreign {
                        from: path.clone(),
                        value: notes,
                        at: at.clone(),
                    });
                    found = true;
                }
            }
            _ => {}
        }
        if !found {
            out.skipped.push(path);
        }
    }
    Ok(out)
}

/// An environment variable name for a record name: upper case, every other character
/// `_`, and `_` in front of a leading digit (`prod/db-password` is `PROD_DB_PASSWORD`).
pub fn env_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Writes records as a `.env` file (`NAME="value"`, escaped as [`parse_dotenv`] reads
/// it). A value that is not UTF-8, or two records with one variable name, are refused
/// before anything is written.
pub fn write_dotenv(w: &mut dyn std::io::Write, rows: &[super::Exported]) -> Result<()> {
    let mut text = Zeroizing::new(String::new());
    let mut seen = std::collections::HashMap::new();
    for (info, value) in rows {
        let shown = info.name.clone().unwrap_or_else(|| info.token.clone());
        let var = env_name(&shown);
        if let Some(first) = seen.insert(var.clone(), shown.clone()) {
            return Err(Error::Usage(format!(
                "records '{first}' and '{shown}' would both be {var} in a .env file; nothing was written"
            )));
        }
        let v = std::str::from_utf8(value).map_err(|_| {
            Error::Usage(format!(
                "record '{shown}' holds binary data, which a .env file cannot carry; use --format jsonl"
            ))
        })?;
        text.push_str(&var);
        text.push_str("=\"");
        for c in v.chars() {
            match c {
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                '\t' => text.push_str("\\t"),
                '"' => text.push_str("\\\""),
                '\\' => text.push_str("\\\\"),
                '$' => text.push_str("\\$"),
                '`' => text.push_str("\\`"),
                c => text.push(c),
            }
        }
        text.push_str("\"\n");
    }
    w.write_all(text.as_bytes())
        .map_err(|e| Error::io("writing the export", e))
}

/// Writes records as CSV with a `name,value` header (the token for an unnamed record).
pub fn write_csv(w: &mut dyn std::io::Write, rows: &[super::Exported]) -> Result<()> {
    let mut buf = Zeroizing::new(Vec::new());
    {
        let mut out = csv::Writer::from_writer(&mut *buf);
        let err = |_| Error::Internal("a CSV row could not be written".into());
        out.write_record(["name", "value"]).map_err(err)?;
        for (info, value) in rows {
            let name = info.name.as_deref().unwrap_or(&info.token);
            out.write_record([name.as_bytes(), &value[..]])
                .map_err(err)?;
        }
        out.flush()
            .map_err(|e| Error::io("writing the export", e))?;
    }
    w.write_all(&buf)
        .map_err(|e| Error::io("writing the export", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(e: Error) -> String {
        match e {
            Error::Usage(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn pairs(f: &[Foreign]) -> Vec<(String, String)> {
        f.iter()
            .map(|f| (f.from.clone(), String::from_utf8(f.value.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn names_are_mapped_visibly() {
        assert_eq!(
            map_name("GitHub (work)", "").as_deref(),
            Some("GitHub--work-")
        );
        assert_eq!(map_name("a b/c:d", "imp/").as_deref(), Some("imp/a-b/c-d"));
        assert_eq!(map_name("/lead//trail/", "").as_deref(), Some("lead/trail"));
        assert_eq!(
            map_name("zt_looks_like_a_token", "").as_deref(),
            Some("xzt_looks_like_a_token")
        );
        assert_eq!(map_name("émoji ✓", "").as_deref(), Some("-moji--"));
        assert_eq!(map_name("///", ""), None);
        assert_eq!(map_name(&"x".repeat(200), ""), None);
        assert!(check_prefix("imported/").is_ok());
        assert!(check_prefix("imported").is_err());
        assert!(check_prefix("/").is_err());
    }

    #[test]
    fn dotenv_files() {
        let got = parse_dotenv(
            b"# comment\nDB_PASSWORD=s3cret # inline\nexport API_KEY='it is' # c\nQ=\"a\\nb \\\"c\\\" $HOME\"\r\nEMPTY=\n\nURL=postgres://u:p@h/db\n",
        )
        .unwrap();
        assert_eq!(
            pairs(&got),
            vec![
                ("DB_PASSWORD".into(), "s3cret".into()),
                ("API_KEY".into(), "it is".into()),
                ("Q".into(), "a\nb \"c\" $HOME".into()),
                ("EMPTY".into(), "".into()),
                ("URL".into(), "postgres://u:p@h/db".into()),
            ]
        );
        assert_eq!(got[2].at, "line 4");
        assert_eq!(
            usage(parse_dotenv(b"A=1\nsecret-without-equals\n").err().unwrap()),
            "line 2: expected NAME=VALUE; nothing was imported"
        );
        assert_eq!(
            usage(parse_dotenv(b"A='it''s'\n").err().unwrap()),
            "line 1: unexpected text after the closing quote; nothing was imported"
        );
        assert_eq!(
            usage(parse_dotenv(b"A=\"open\n").err().unwrap()),
            "line 1: the quoted value is not closed; nothing was imported"
        );
    }

    #[test]
    fn csv_files() {
        let got = parse_csv(
            b"Name,URL,Value\nprod/db,https://x,\"p,w\"\"1\"\nnotes,,\"two\nlines\"\n",
            "name",
            "value",
        )
        .unwrap();
        assert_eq!(
            pairs(&got),
            vec![
                ("prod/db".into(), "p,w\"1".into()),
                ("notes".into(), "two\nlines".into()),
            ]
        );
        assert_eq!(
            usage(
                parse_csv(b"name,secret\na,b\n", "name", "value")
                    .err()
                    .unwrap()
            ),
            "the CSV header: it has no column 'value' (it has: name, secret); nothing was imported"
        );
        assert_eq!(
            usage(
                parse_csv(b"name,value\na,b\nc,d,e\n", "name", "value")
                    .err()
                    .unwrap()
            ),
            "line 3: it has 3 fields, the header has 2; nothing was imported"
        );
        assert_eq!(
            usage(
                parse_csv(b"name,value\n,hunter2\n", "name", "value")
                    .err()
                    .unwrap()
            ),
            "line 2: the name is empty; nothing was imported"
        );
    }

    #[test]
    fn bitwarden_exports() {
        let export = br#"{"encrypted":false,
          "folders":[{"id":"f1","name":"Work"}],
          "items":[
            {"id":"1","type":1,"name":"GitHub","folderId":"f1","login":{"username":"me","password":"gh-pw","totp":"JBSWY3DPEHPK3PXP"}},
            {"id":"2","type":2,"name":"Server notes","folderId":null,"notes":"ssh root@x"},
            {"id":"3","type":3,"name":"Visa","card":{"number":"4111"}},
            {"id":"4","type":1,"name":"No password","login":{"username":"u"}}
          ]}"#;
        let got = parse_bitwarden(export).unwrap();
        assert_eq!(
            pairs(&got.items),
            vec![
                ("Work/GitHub".into(), "gh-pw".into()),
                ("Work/GitHub/totp".into(), "JBSWY3DPEHPK3PXP".into()),
                ("Server notes".into(), "ssh root@x".into()),
            ]
        );
        assert_eq!(
            got.skipped,
            vec!["Visa".to_string(), "No password".to_string()]
        );
        assert_eq!(
            usage(
                parse_bitwarden(br#"{"encrypted":true,"items":[]}"#)
                    .err()
                    .unwrap()
            ),
            "the Bitwarden export: it is encrypted; export again choosing the unencrypted .json format; nothing was imported"
        );
        let mapped = to_items(got.items, "bw/").unwrap();
        assert_eq!(mapped[2].0.name.as_deref(), Some("bw/Server-notes"));
        assert_eq!(mapped[2].1, "Server notes");
    }

    #[test]
    fn exports_read_back() {
        use super::super::RecordInfo;
        let row = |name: &str, value: &[u8]| {
            (
                RecordInfo {
                    token: format!("zt_{name}"),
                    name: Some(name.into()),
                    version: 1,
                    created_at: 0,
                    updated_at: 0,
                    expires_at: None,
                    deleted_at: None,
                    protected: false,
                    key: None,
                    owner: None,
                },
                Zeroizing::new(value.to_vec()),
            )
        };
        let rows = vec![
            row("prod/db-password", b"p\"w\\ $HOME\nline"),
            row("cmd", b"x`id`"),
            row("9lives", b"x,y"),
        ];
        let mut env = Vec::new();
        write_dotenv(&mut env, &rows).unwrap();
        assert_eq!(
            String::from_utf8(env.clone()).unwrap(),
            "PROD_DB_PASSWORD=\"p\\\"w\\\\ \\$HOME\\nline\"\nCMD=\"x\\`id\\`\"\n_9LIVES=\"x,y\"\n"
        );
        assert_eq!(
            pairs(&parse_dotenv(&env).unwrap()),
            vec![
                ("PROD_DB_PASSWORD".into(), "p\"w\\ $HOME\nline".into()),
                ("CMD".into(), "x`id`".into()),
                ("_9LIVES".into(), "x,y".into()),
            ]
        );
        let mut csv_out = Vec::new();
        write_csv(&mut csv_out, &rows).unwrap();
        assert_eq!(
            pairs(&parse_csv(&csv_out, "name", "value").unwrap()),
            vec![
                ("prod/db-password".into(), "p\"w\\ $HOME\nline".into()),
                ("cmd".into(), "x`id`".into()),
                ("9lives".into(), "x,y".into()),
            ]
        );
        let clash = vec![row("a-b", b"1"), row("a/b", b"2")];
        assert_eq!(
            usage(write_dotenv(&mut Vec::new(), &clash).unwrap_err()),
            "records 'a-b' and 'a/b' would both be A_B in a .env file; nothing was written"
        );
        assert!(write_dotenv(&mut Vec::new(), &[row("bin", b"\xff")]).is_err());
    }

    #[test]
    fn two_names_that_map_alike_are_refused() {
        let f = |from: &str, at: &str| Foreign {
            from: from.into(),
            value: Zeroizing::new(b"v".to_vec()),
            at: at.into(),
        };
        let e = to_items(vec![f("a b", "line 1"), f("a:b", "line 2")], "")
            .err()
            .unwrap();
        assert_eq!(
            usage(e),
            "line 2: it would be named 'a-b', like line 1; nothing was imported"
        );
    }
}
