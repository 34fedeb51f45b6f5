//! Durations as users type them (`90d`, `12h`, `30m`, `1h30m`, `45s`) and times as
//! zencrypt prints them (RFC 3339, UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;

/// Parses a duration such as `90d`, `12h`, `30m`, `1h30m` or `45s` into seconds.
pub fn parse(text: &str) -> Result<u64, Error> {
    let bad = || {
        Error::Usage(format!(
            "invalid duration '{}' (use e.g. 90d, 12h, 30m, 1h30m, 45s)",
            text.escape_debug()
        ))
    };
    let s = text.trim();
    if s.is_empty() || s.len() > 64 {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut last_unit = u64::MAX;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        // Units must be given largest first, each once: "1h30m", not "30m1h".
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
        last_unit = unit;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Formats seconds compactly, largest units first (`1h30m`, `8h`, `0s`).
pub fn format(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3_600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    out
}

/// The current time in unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC, e.g. `2026-11-22T05:01:38Z`.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("90d").unwrap(), 90 * 86_400);
        assert_eq!(parse("12h").unwrap(), 43_200);
        assert_eq!(parse("30m").unwrap(), 1_800);
        assert_eq!(parse("1h30m").unwrap(), 5_400);
        assert_eq!(parse("45s").unwrap(), 45);
        assert_eq!(parse("1d2h3m4s").unwrap(), 93_784);
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "",
            "h",
            "12",
            "1x",
            "30m1h",
            "1h1h",
            "-1h",
            "1.5h",
            "99999999999999999999d",
        ] {
            let e = parse(s).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{s}");
            assert!(e.to_string().starts_with("invalid duration"), "{s}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(format(5_400), "1h30m");
        assert_eq!(format(28_800), "8h");
        assert_eq!(format(0), "0s");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(secs in 0u64..10_000_000_000) {
            prop_assert_eq!(parse(&format(secs)).unwrap(), secs);
        }

        #[test]
        fn never_panics(s in "\\PC{0,20}") {
            let _ = parse(&s);
        }
    }
}
