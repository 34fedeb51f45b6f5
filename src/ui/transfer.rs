//! Reading and writing the files and values users move in and out: record import and
//! export lines, and raw key material.

use std::io::Write;
use zeroize::Zeroizing;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ui::files::open_input;
use crate::ui::views::record_json;
use zencrypt_core::crypto::Key32;
use zencrypt_core::error::{Error, Result};
use zencrypt_core::records::{self, value_json};

/// Reads and parses an import line by line, holding at most one line (up to
/// [`MAX_IMPORT_LINE`]) besides the parsed items: a longer line is refused as soon as it
/// passes the cap, naming its number.
pub fn read_import(path: Option<&std::path::Path>) -> Result<Vec<records::ImportItem>> {
    let mut inp = open_input(path)?;
    read_import_from(&mut inp.reader, &inp.name, MAX_IMPORT_LINE)
}

/// Writes exported records as JSON lines.
pub fn write_export(w: &mut dyn Write, rows: &[records::Exported]) -> Result<()> {
    for (info, value) in rows {
        let mut line = record_json(info);
        let (field, v) = value_json(value);
        line[field] = v;
        let text = zeroize::Zeroizing::new(format!("{line}\n"));
        w.write_all(text.as_bytes())
            .map_err(|e| Error::io("writing the export", e))?;
    }
    Ok(())
}

/// Parses imported key material: 64 hex digits, base64 of 32 bytes, or 32 raw bytes.
pub fn parse_material(input: &[u8]) -> Result<Key32> {
    if let Ok(text) = std::str::from_utf8(input) {
        let t = text.trim();
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut bytes = Zeroizing::new([0u8; 32]);
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = u8::from_str_radix(&t[2 * i..2 * i + 2], 16)
                    .map_err(|_| Error::Usage("invalid hex key".into()))?;
            }
            return Ok(Key32::from_bytes(*bytes));
        }
        if let Ok(decoded) = STANDARD.decode(t) {
            let decoded = Zeroizing::new(decoded);
            if let Some(k) = Key32::from_slice(&decoded) {
                return Ok(k);
            }
        }
    }
    Key32::from_slice(input).ok_or_else(|| {
        Error::Usage("a key must be 32 bytes: raw, as 64 hex digits, or as base64".into())
    })
}

/// The longest import line, 344 MiB: the largest value in base64 (341 1/3 MiB, as
/// `data export` writes a binary value), with room for the other fields.
pub const MAX_IMPORT_LINE: usize = 344 << 20;

fn read_import_from(
    reader: &mut dyn std::io::BufRead,
    name: &str,
    cap: usize,
) -> Result<Vec<records::ImportItem>> {
    use crate::ui::files::{Line, read_line_bounded};
    let mut items = Vec::new();
    let mut line = zeroize::Zeroizing::new(Vec::new());
    for n in 1.. {
        match read_line_bounded(reader, &mut line, cap)
            .map_err(|e| Error::io(format!("reading {name}"), e))?
        {
            Line::End => break,
            Line::TooLong => {
                let limit = if cap.is_multiple_of(1 << 20) {
                    format!("{} MiB", cap >> 20)
                } else {
                    format!("{cap} bytes")
                };
                return Err(Error::Usage(format!(
                    "import line {n}: longer than {limit}; nothing was imported"
                )));
            }
            Line::Read => {
                if let Some(item) = records::parse_import_line(n, &line)? {
                    items.push(item);
                }
            }
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_value_fits_an_import_line_in_base64() {
        assert!(MAX_IMPORT_LINE > records::MAX_VALUE.div_ceil(3) * 4 + 64);
    }

    #[test]
    fn an_import_line_past_the_cap_is_refused_by_number() {
        let input = b"{\"value\":\"a\"}\n\n{\"value\":\"0123456789\"}\n";
        let items = read_import_from(&mut &input[..], "stdin", 30).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(&items[1].value[..], b"0123456789");
        let e = read_import_from(&mut &input[..], "stdin", 20)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "import line 3: longer than 20 bytes; nothing was imported"
        );
        assert_eq!(e.exit_code(), 2);
        // A bad line is named the same way as before.
        let e = read_import_from(&mut &b"{}\nnope\n"[..], "stdin", 20)
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "import line 1: a string value or value_base64 is required; nothing was imported"
        );
    }
}
