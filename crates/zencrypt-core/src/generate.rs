//! Generated secrets: random passwords over a character set, and passphrases of words from
//! the EFF long word list (7776 words, shipped in the binary). Every draw comes from the
//! operating system's CSPRNG through rejection sampling, so each character or word is
//! equally likely, and the entropy reported is exact for the rules applied.

use zeroize::Zeroizing;

use crate::crypto::fill_random;
use crate::error::{Error, Result};

/// The EFF long word list (CC BY 3.0 US, Electronic Frontier Foundation), one word a line.
const WORDLIST: &str = include_str!("words/eff_large_wordlist.txt");
/// Words in [`WORDLIST`].
pub const WORDS: usize = 7776;

/// Default password length.
pub const DEFAULT_LENGTH: usize = 24;
/// Shortest password `--length` accepts (a PIN).
pub const MIN_LENGTH: usize = 4;
/// Longest password `--length` accepts.
pub const MAX_LENGTH: usize = 256;
/// Default number of words of a passphrase.
pub const DEFAULT_WORDS: usize = 6;
/// Fewest words `--words` accepts.
pub const MIN_WORDS: usize = 3;
/// Most words `--words` accepts.
pub const MAX_WORDS: usize = 64;

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
/// Symbols safe to paste into a shell's single quotes, a URL's userinfo after escaping,
/// and most web forms: no quotes, backslash, backtick, `|` or space.
const SYMBOLS: &str = "!#$%&()*+,-./:;<=>?@[]^_{}~";
const HEX: &str = "0123456789abcdef";

/// The characters a password is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Upper and lower case letters, digits and symbols (the default).
    All,
    /// Letters and digits.
    Alnum,
    /// Letters.
    Letters,
    /// Digits (a PIN).
    Digits,
    /// Lowercase hexadecimal.
    Hex,
}

impl Charset {
    /// The classes of characters; a generated password holds at least one of each when it
    /// is at least as long as there are classes.
    fn classes(self) -> &'static [&'static str] {
        match self {
            Charset::All => &[UPPER, LOWER, DIGITS, SYMBOLS],
            Charset::Alnum => &[UPPER, LOWER, DIGITS],
            Charset::Letters => &[UPPER, LOWER],
            Charset::Digits => &[DIGITS],
            Charset::Hex => &[HEX],
        }
    }

    /// The name `--charset` takes.
    pub fn name(self) -> &'static str {
        match self {
            Charset::All => "all",
            Charset::Alnum => "alnum",
            Charset::Letters => "letters",
            Charset::Digits => "digits",
            Charset::Hex => "hex",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// A password of `length` characters from `charset`.
    Password {
        /// Characters.
        length: usize,
        /// Character set.
        charset: Charset,
    },
    /// A passphrase of `words` words joined by `separator`.
    Passphrase {
        /// Number of words.
        words: usize,
        /// Between words.
        separator: String,
    },
}

impl Default for Spec {
    fn default() -> Self {
        Spec::Password {
            length: DEFAULT_LENGTH,
            charset: Charset::All,
        }
    }
}

impl Spec {
    /// Checks the bounds of a spec.
    pub fn validate(&self) -> Result<()> {
        match self {
            Spec::Password { length, .. } if !(MIN_LENGTH..=MAX_LENGTH).contains(length) => {
                Err(Error::Usage(format!(
                    "--length must be between {MIN_LENGTH} and {MAX_LENGTH}, not {length}"
                )))
            }
            Spec::Passphrase { words, .. } if !(MIN_WORDS..=MAX_WORDS).contains(words) => {
                Err(Error::Usage(format!(
                    "--words must be between {MIN_WORDS} and {MAX_WORDS}, not {words}"
                )))
            }
            Spec::Passphrase { separator, .. }
                if separator.len() > 8 || separator.chars().any(char::is_control) =>
            {
                Err(Error::Usage(
                    "--separator must be at most 8 bytes, without control characters".into(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// The entropy of one draw, in bits: exact for the rule that a password holds every
    /// class of its charset (inclusion-exclusion over the classes left out).
    pub fn entropy_bits(&self) -> f64 {
        match self {
            Spec::Password { length, charset } => {
                let classes = charset.classes();
                let sizes: Vec<usize> = classes.iter().map(|c| c.len()).collect();
                let total: usize = sizes.iter().sum();
                let n = *length as f64;
                let mut share = 1.0;
                if *length >= classes.len() && classes.len() > 1 {
                    // The share of all strings that hold every class.
                    share = 0.0;
                    for mask in 0u32..(1 << classes.len()) {
                        let missing: usize = (0..classes.len())
                            .filter(|i| mask & (1 << i) != 0)
                            .map(|i| sizes[i])
                            .sum();
                        let sign = if mask.count_ones() % 2 == 0 {
                            1.0
                        } else {
                            -1.0
                        };
                        share += sign * (1.0 - missing as f64 / total as f64).powf(n);
                    }
                }
                n * (total as f64).log2() + share.log2()
            }
            Spec::Passphrase { words, .. } => *words as f64 * (WORDS as f64).log2(),
        }
    }

    /// "24-character password", "6-word passphrase".
    pub fn describe(&self) -> String {
        match self {
            Spec::Password { length, .. } => format!("{length}-character password"),
            Spec::Passphrase { words, .. } => format!("{words}-word passphrase"),
        }
    }

    /// Draws one secret.
    pub fn generate(&self) -> Zeroizing<String> {
        match self {
            Spec::Password { length, charset } => password(*length, *charset),
            Spec::Passphrase { words, separator } => passphrase(*words, separator),
        }
    }
}

/// A uniform random number below `n` (rejection sampling over 32-bit draws).
fn below(n: u32) -> u32 {
    debug_assert!(n > 0);
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        fill_random(&mut b);
        let v = u32::from_le_bytes(b);
        if v < zone {
            return v % n;
        }
    }
}

fn password(length: usize, charset: Charset) -> Zeroizing<String> {
    let classes = charset.classes();
    let all: Vec<u8> = classes.iter().flat_map(|c| c.bytes()).collect();
    loop {
        let mut out = Zeroizing::new(String::with_capacity(length));
        for _ in 0..length {
            out.push(all[below(all.len() as u32) as usize] as char);
        }
        // Redraw the whole password until it holds every class: a draw that keeps a
        // uniform distribution over the passwords that do.
        if length < classes.len()
            || classes
                .iter()
                .all(|c| out.bytes().any(|b| c.as_bytes().contains(&b)))
        {
            return out;
        }
    }
}

fn passphrase(words: usize, separator: &str) -> Zeroizing<String> {
    let list: Vec<&str> = WORDLIST.lines().collect();
    let mut out = Zeroizing::new(String::new());
    for i in 0..words {
        if i > 0 {
            out.push_str(separator);
        }
        out.push_str(list[below(list.len() as u32) as usize]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_word_list_is_the_eff_long_list() {
        let words: Vec<&str> = WORDLIST.lines().collect();
        assert_eq!(words.len(), WORDS);
        assert_eq!(words.iter().collect::<HashSet<_>>().len(), WORDS);
        assert_eq!(words[0], "abacus");
        assert_eq!(words[WORDS - 1], "zoom");
        assert!(
            words
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        );
    }

    #[test]
    fn passwords_hold_every_class_and_only_their_charset() {
        for _ in 0..200 {
            let p = Spec::default().generate();
            assert_eq!(p.len(), DEFAULT_LENGTH);
            for class in [UPPER, LOWER, DIGITS, SYMBOLS] {
                assert!(p.bytes().any(|b| class.as_bytes().contains(&b)), "{class}");
            }
        }
        let pin = Spec::Password {
            length: 6,
            charset: Charset::Digits,
        }
        .generate();
        assert_eq!(pin.len(), 6);
        assert!(pin.bytes().all(|b| b.is_ascii_digit()));
        let hex = Spec::Password {
            length: 64,
            charset: Charset::Hex,
        }
        .generate();
        assert!(hex.bytes().all(|b| HEX.as_bytes().contains(&b)));
        let alnum = Spec::Password {
            length: 40,
            charset: Charset::Alnum,
        }
        .generate();
        assert!(alnum.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(Spec::default().generate(), Spec::default().generate());
    }

    #[test]
    fn passphrases_are_words_from_the_list() {
        let spec = Spec::Passphrase {
            words: 5,
            separator: " ".into(),
        };
        let p = spec.generate();
        let list: HashSet<&str> = WORDLIST.lines().collect();
        let words: Vec<&str> = p.split(' ').collect();
        assert_eq!(words.len(), 5);
        assert!(words.iter().all(|w| list.contains(w)));
    }

    #[test]
    fn entropy() {
        let bits = |s: Spec| (s.entropy_bits() * 100.0).round() / 100.0;
        // 6 words of 7776: 6 * log2(7776).
        assert_eq!(
            bits(Spec::Passphrase {
                words: 6,
                separator: "-".into()
            }),
            77.55
        );
        // One class: no rule, log2(10^6).
        assert_eq!(
            bits(Spec::Password {
                length: 6,
                charset: Charset::Digits
            }),
            19.93
        );
        assert_eq!(
            bits(Spec::Password {
                length: 32,
                charset: Charset::Hex
            }),
            128.0
        );
        // Two letters, one of each case: 26*26*2 strings of 52^2.
        assert_eq!(
            bits(Spec::Password {
                length: 2,
                charset: Charset::Letters
            }),
            ((26.0f64 * 26.0 * 2.0).log2() * 100.0).round() / 100.0
        );
        // 24 of 89 characters, each class present: a little under 24 * log2(89).
        let all = Spec::default().entropy_bits();
        assert!(
            all < 24.0 * 89f64.log2() && all > 24.0 * 89f64.log2() - 1.0,
            "{all}"
        );
    }

    #[test]
    fn bounds() {
        assert!(
            Spec::Password {
                length: 3,
                charset: Charset::All
            }
            .validate()
            .is_err()
        );
        assert!(
            Spec::Password {
                length: 257,
                charset: Charset::All
            }
            .validate()
            .is_err()
        );
        assert!(
            Spec::Passphrase {
                words: 2,
                separator: "-".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            Spec::Passphrase {
                words: 4,
                separator: "\n".into()
            }
            .validate()
            .is_err()
        );
        assert!(
            Spec::Passphrase {
                words: 4,
                separator: "".into()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn below_is_in_range() {
        for n in [1u32, 2, 3, 62, 7776] {
            for _ in 0..100 {
                assert!(below(n) < n);
            }
        }
    }
}
