//! Record tokens: `zt_` followed by random base62 characters, or a custom token.

use crate::crypto::fill_random;
use crate::error::{Error, Result};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Every generated token starts with this.
pub const PREFIX: &str = "zt_";
/// Default total length: the prefix and 32 random characters (~190 bits).
pub const DEFAULT_LENGTH: usize = 35;
/// Shortest total length `--token-length` accepts.
pub const MIN_LENGTH: usize = 20;
/// Longest total length `--token-length` accepts.
pub const MAX_LENGTH: usize = 64;

/// Checks a `--token-length` value (the total length, prefix included).
pub fn check_length(total: usize) -> Result<()> {
    if (MIN_LENGTH..=MAX_LENGTH).contains(&total) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--token-length must be between {MIN_LENGTH} and {MAX_LENGTH} (the total, including '{PREFIX}'), not {total}"
        )))
    }
}

/// A new random token of `total` characters.
pub fn generate(total: usize) -> String {
    let n = total.saturating_sub(PREFIX.len());
    let mut out = String::with_capacity(total);
    out.push_str(PREFIX);
    let mut buf = [0u8; 64];
    while out.len() < PREFIX.len() + n {
        fill_random(&mut buf);
        // Rejection sampling keeps every character equally likely.
        for b in buf {
            if b < 248 && out.len() < PREFIX.len() + n {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// Checks a custom token: 8–64 characters from `[A-Za-z0-9_-]`.
pub fn validate_custom(token: &str) -> Result<()> {
    if could_be_custom(token) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "invalid token '{}': use 8-64 characters from A-Z a-z 0-9 _ -",
            crate::text::printable(token, 64)
        )))
    }
}

/// Whether `s` has the shape of a custom token: 8-64 characters from `[A-Za-z0-9_-]`.
pub fn could_be_custom(s: &str) -> bool {
    (8..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_tokens() {
        let t = generate(DEFAULT_LENGTH);
        assert_eq!(t.len(), 35);
        assert!(t.starts_with("zt_"));
        assert!(t[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(generate(DEFAULT_LENGTH), t);
    }

    #[test]
    fn lengths_and_custom_tokens() {
        assert!(check_length(19).is_err());
        assert!(check_length(20).is_ok());
        assert!(check_length(64).is_ok());
        assert!(check_length(65).is_err());
        assert!(validate_custom("my-token_1").is_ok());
        assert!(validate_custom("short").is_err());
        assert!(validate_custom("has space").is_err());
        assert!(validate_custom(&"x".repeat(65)).is_err());
    }

    proptest! {
        #[test]
        fn any_valid_length_is_exact(total in MIN_LENGTH..=MAX_LENGTH) {
            let t = generate(total);
            prop_assert_eq!(t.len(), total);
            prop_assert!(validate_custom(&t).is_ok());
        }

        #[test]
        fn custom_validation_never_panics(s in "\\PC{0,80}") {
            let _ = validate_custom(&s);
        }
    }
}
