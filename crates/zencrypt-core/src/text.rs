//! Text from outside made safe to store and show.

/// Whether `c` reorders text on a terminal (a bidi embedding, override, isolate or mark).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Keeps at most `max` characters and replaces control and bidi characters, so that
/// whatever an unauthenticated caller typed is stored as plain, bounded text.
pub fn printable(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .take(max)
        .map(|c| {
            if c.is_control() || is_bidi_control(c) {
                '?'
            } else {
                c
            }
        })
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_bounds_and_cleans() {
        assert_eq!(printable("a\nb\x1b", 10), "a?b?");
        assert_eq!(printable("x\u{202e}y\u{2066}", 10), "x?y?");
        assert_eq!(printable("", 10), "-");
        assert_eq!(printable(&"x".repeat(100), 64).len(), 64);
    }
}
