//! Name patterns: `*` matches any run of characters (`/` included), `?` any one
//! character, everything else itself, ignoring ASCII case. Matched here, in Rust, so that
//! a pattern means the same on every storage backend.

use crate::error::{Error, Result};

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Any run of characters, possibly empty.
    Star,
    /// Exactly one character.
    One,
    /// This character (lower-cased when ASCII).
    Char(char),
}

/// A parsed name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    source: String,
}

impl Glob {
    /// Parses a pattern; refuses an empty or overlong one, or one with control
    /// characters (they can never occur in a name).
    pub fn new(pattern: &str) -> Result<Glob> {
        if pattern.is_empty() {
            return Err(Error::Usage(
                "the name pattern is empty (use '*' to match every name)".into(),
            ));
        }
        if pattern.len() > MAX_PATTERN {
            return Err(Error::Usage(format!(
                "the name pattern is longer than {MAX_PATTERN} bytes"
            )));
        }
        if pattern.chars().any(char::is_control) {
            return Err(Error::Usage(
                "the name pattern contains a control character".into(),
            ));
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        for c in pattern.chars() {
            let t = match c {
                '*' => Token::Star,
                '?' => Token::One,
                c => Token::Char(c.to_ascii_lowercase()),
            };
            // `**` is `*`.
            if !(t == Token::Star && tokens.last() == Some(&Token::Star)) {
                tokens.push(t);
            }
        }
        Ok(Glob {
            tokens,
            source: pattern.to_string(),
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `name` matches, ignoring ASCII case. Linear in the name's length times
    /// the pattern's (the classic backtracking to the last `*`).
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
        let (mut p, mut n) = (0usize, 0usize);
        // Where the last `*` was, and the name position it is trying to cover up to.
        let mut star: Option<(usize, usize)> = None;
        while n < name.len() {
            match self.tokens.get(p) {
                Some(Token::Char(c)) if *c == name[n] => {
                    p += 1;
                    n += 1;
                }
                Some(Token::One) => {
                    p += 1;
                    n += 1;
                }
                Some(Token::Star) => {
                    star = Some((p, n));
                    p += 1;
                }
                _ => match star {
                    Some((sp, sn)) => {
                        p = sp + 1;
                        n = sn + 1;
                        star = Some((sp, sn + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::new(p).unwrap().matches(n)
    }

    #[test]
    fn stars_and_marks() {
        assert!(m("prod/*", "prod/db/password"));
        assert!(m("*password*", "prod/db/password"));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("prod", "prod/db"));
        assert!(m("prod", "prod"));
        assert!(m("*/db/*", "prod/db/password"));
        assert!(!m("*/db/*", "prod/db"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("**", "x"));
    }

    #[test]
    fn case_is_ignored() {
        assert!(m("PROD/*", "prod/DB"));
        assert!(m("db-PASSWORD", "DB-password"));
    }

    #[test]
    fn sql_wildcards_are_plain_characters() {
        assert!(!m("prod%", "production"));
        assert!(m("a_b", "a_b"));
        assert!(!m("a_b", "axb"));
        assert!(m("a\\b", "a\\b"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(
            Glob::new("").unwrap_err().to_string(),
            "the name pattern is empty (use '*' to match every name)"
        );
        assert_eq!(Glob::new("a\nb").unwrap_err().exit_code(), 2);
        assert!(Glob::new(&"*".repeat(MAX_PATTERN + 1)).is_err());
    }

    #[test]
    fn many_stars_stay_fast() {
        let p = Glob::new(&"*a".repeat(200)).unwrap();
        let name = "a".repeat(128);
        // Would take exponential time with naive backtracking.
        assert!(!p.matches(&format!("{name}b")));
    }
}
