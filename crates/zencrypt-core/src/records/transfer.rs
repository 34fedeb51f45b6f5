//! `data import` (JSON lines, one transaction, all or nothing) and `data export`
//! (decrypted JSON lines).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::{Keyring, PutOptions, Puts, RecordInfo, TokenChoice, put_in, token, usage};
use crate::authz::Permission;
use crate::duration;
use crate::error::{Error, Result};
use crate::events::{AuditAction, UsageOp};
use crate::model::{RecordFilter, RecordOrder};
use crate::vault::{Session, Vault};

/// One record to import.
pub struct ImportItem {
    /// Optional name.
    pub name: Option<String>,
    /// The value.
    pub value: Zeroizing<Vec<u8>>,
    /// Seconds until it expires.
    pub expires_in: Option<u64>,
}

fn line_error(n: usize, what: &str) -> Error {
    Error::Usage(format!("import line {n}: {what}; nothing was imported"))
}

/// Parses JSON lines `{"name"?, "value"|"value_base64", "expires_in"?}`. Blank lines are
/// skipped; the first bad line refuses the whole input, naming its number.
pub fn parse_import(input: &[u8]) -> Result<Vec<ImportItem>> {
    let mut items = Vec::new();
    for (i, line) in input.split(|b| *b == b'\n').enumerate() {
        if let Some(item) = parse_import_line(i + 1, line)? {
            items.push(item);
        }
    }
    Ok(items)
}

/// Parses line `n` of an import (without its `\n`; a trailing `\r` is dropped): `None`
/// for a blank line, else the item, or an error naming the line.
pub fn parse_import_line(n: usize, line: &[u8]) -> Result<Option<ImportItem>> {
    {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let obj: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(line_error(n, "expected a JSON object")),
            Err(_) => return Err(line_error(n, "not valid JSON")),
        };
        for k in obj.keys() {
            // The fields `data export` writes besides these are accepted and ignored, so
            // an export can be imported again.
            const EXPORTED: [&str; 7] = [
                "token",
                "version",
                "created_at",
                "updated_at",
                "expires_at",
                "deleted_at",
                "protected",
            ];
            if !["name", "value", "value_base64", "expires_in", "key"].contains(&k.as_str())
                && !EXPORTED.contains(&k.as_str())
            {
                return Err(line_error(
                    n,
                    &format!("unknown field '{}'", crate::text::printable(k, 40)),
                ));
            }
        }
        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if super::is_valid_name(s) => Some(s.clone()),
            Some(_) => {
                return Err(line_error(
                    n,
                    "name must be 1-128 characters from A-Z a-z 0-9 . _ - and / between parts, not starting with zt_",
                ));
            }
        };
        let value = match (obj.get("value"), obj.get("value_base64")) {
            (Some(Value::String(s)), None) => Zeroizing::new(s.as_bytes().to_vec()),
            (None, Some(Value::String(b))) => Zeroizing::new(
                STANDARD
                    .decode(b)
                    .map_err(|_| line_error(n, "value_base64 is not valid base64"))?,
            ),
            (Some(_), Some(_)) => {
                return Err(line_error(n, "give value or value_base64, not both"));
            }
            _ => return Err(line_error(n, "a string value or value_base64 is required")),
        };
        let expires_in = match obj.get("expires_in") {
            // An export's absolute expiry is honoured when no relative one is given.
            None | Some(Value::Null) => match obj.get("expires_at") {
                Some(Value::String(at)) => {
                    let t = time::OffsetDateTime::parse(
                        at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_err(|_| line_error(n, "expires_at is not an RFC 3339 time"))?;
                    Some(u64::try_from(t.unix_timestamp() - duration::now()).unwrap_or(0))
                }
                None | Some(Value::Null) => None,
                Some(_) => return Err(line_error(n, "expires_at is not an RFC 3339 time")),
            },
            Some(Value::String(s)) => Some(
                duration::parse(s)
                    .map_err(|_| line_error(n, "expires_in is not a duration like 30d"))?,
            ),
            Some(Value::Number(x)) if x.as_u64().is_some() => x.as_u64(),
            Some(_) => return Err(line_error(n, "expires_in is not a duration like 30d")),
        };
        Ok(Some(ImportItem {
            name,
            value,
            expires_in,
        }))
    }
}

/// One exported record, decrypted.
pub type Exported = (RecordInfo, Zeroizing<Vec<u8>>);

impl Vault {
    /// Stores all items in one transaction (all or nothing) and returns how many; with a
    /// `password`, every item is protected by it (one KDF for the whole batch).
    pub fn data_import(
        &mut self,
        session: &Session,
        items: &[ImportItem],
        key: Option<&str>,
        password: Option<&SecretString>,
    ) -> Result<u64> {
        if let Some(p) = password {
            crate::accounts::validate_new_password(p)?;
        }
        let kdf = self.policy.kdf;
        self.authorized(
            session,
            Permission::Own,
            AuditAction::DataImport,
            key.unwrap_or("-"),
            |tx| {
                let mut ring = Keyring::new(session, password);
                let mut puts = Puts::new(key, password.is_some());
                for (i, item) in items.iter().enumerate() {
                    let opts = PutOptions {
                        name: item.name.clone(),
                        key: key.map(str::to_string),
                        expires_in: item.expires_in,
                        token: TokenChoice::Random(token::DEFAULT_LENGTH),
                    };
                    put_in(tx, session, &mut ring, &item.value, &opts, &mut puts, kdf).map_err(
                        |e| match e {
                            Error::Conflict(m) => Error::Conflict(format!(
                                "import record {}: {m}; nothing was imported",
                                i + 1
                            )),
                            Error::Usage(m) => Error::Usage(format!(
                                "import record {}: {m}; nothing was imported",
                                i + 1
                            )),
                            e => e,
                        },
                    )?;
                }
                puts.finish(tx)?;
                let n = items.len() as u64;
                Ok((n, json!({ "count": n })))
            },
        )
    }

    /// Decrypts every live record (and deleted ones with `include_deleted`). Protected
    /// records are included when `password` opens them; the others are counted as skipped.
    pub fn data_export(
        &mut self,
        session: &Session,
        include_deleted: bool,
        password: Option<&SecretString>,
    ) -> Result<(Vec<Exported>, u64)> {
        self.authorized(session, Permission::Own, AuditAction::DataExport, "-", |tx| {
            let now = duration::now();
            let rows = tx.list_records(
                session.user_id.0,
                &RecordFilter {
                    deleted: if include_deleted { None } else { Some(false) },
                    // Expired records are not readable, by export either.
                    expired: Some(false),
                    with_values: true,
                    now,
                    order_by: RecordOrder::Created,
                    ascending: true,
                    ..RecordFilter::default()
                },
            )?;
            let mut ring = Keyring::new(session, password);
            let mut out = Vec::with_capacity(rows.len());
            let mut skipped = 0u64;
            for row in &rows {
                match ring.open(tx, session, row) {
                    Ok(v) => {
                        usage(tx, session, row, UsageOp::DataExport, v.len())?;
                        out.push((ring.info(tx, row)?, v));
                    }
                    Err(Error::InvalidPassword | Error::NeedsInput { .. }) if row.identity_id.is_some() => skipped += 1,
                    Err(e) => return Err(e),
                }
            }
            let detail = json!({ "count": out.len(), "skipped": skipped, "include_deleted": include_deleted });
            Ok(((out, skipped), detail))
        })
    }
}

/// A record value as JSON: text as `value`, anything else as `value_base64`.
pub fn value_json(value: &[u8]) -> (&'static str, Value) {
    match std::str::from_utf8(value) {
        Ok(s) => ("value", Value::String(s.to_string())),
        Err(_) => ("value_base64", Value::String(STANDARD.encode(value))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Err(e) = parse_import(&data) {
                prop_assert_eq!(e.exit_code(), 2);
            }
        }

        #[test]
        fn random_json_lines_are_refused_or_parsed(s in "\\{\"(name|value|value_base64|expires_in|x)\":(\"[a-z0-9=]{0,8}\"|[0-9]{1,3}|null)\\}") {
            if let Err(e) = parse_import(s.as_bytes()) {
                prop_assert!(e.to_string().starts_with("import line 1: "));
            }
        }
    }

    #[test]
    fn parses_lines() {
        let items = parse_import(
            b"{\"name\":\"a\",\"value\":\"x\"}\n\n{\"value_base64\":\"AP8=\",\"expires_in\":\"1d\"}\r\n",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].name.as_deref(), Some("a"));
        assert_eq!(&items[1].value[..], &[0, 255]);
        assert_eq!(items[1].expires_in, Some(86_400));
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (input, msg) in [
            (
                &b"{\"value\":\"x\"}\nnot json\n"[..],
                "import line 2: not valid JSON; nothing was imported",
            ),
            (
                b"[1]",
                "import line 1: expected a JSON object; nothing was imported",
            ),
            (
                b"{\"name\":\"a\"}",
                "import line 1: a string value or value_base64 is required; nothing was imported",
            ),
            (
                b"{\"value\":\"x\",\"extra\":1}",
                "import line 1: unknown field 'extra'; nothing was imported",
            ),
            (
                b"{\"value_base64\":\"!!\"}",
                "import line 1: value_base64 is not valid base64; nothing was imported",
            ),
        ] {
            let e = parse_import(input).err().unwrap();
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.exit_code(), 2);
        }
    }
}
