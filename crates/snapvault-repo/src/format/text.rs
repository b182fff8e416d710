//! Cutting and showing strings that came from storage: file names from a backend listing,
//! fields of repository files (a photo's `taken`, a config's `id`). Such a string may be
//! anything — empty, short, multi-byte where a byte index would cut a character, full of
//! control characters — so it is never sliced by a fixed byte index.

/// Is `name` a well-formed object name: 64 lowercase hex digits (an id)?
pub fn is_id_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// How a file name from a listing is shown: the first 8 digits of a well-formed id (as
/// snapvault shows ids), otherwise the whole name quoted and escaped, so a stray file is
/// recognisable as one and its name cannot play tricks on a terminal.
pub fn short_name(name: &str) -> String {
    match name.get(..8) {
        Some(short) if is_id_name(name) => short.to_string(),
        _ => format!("{name:?}"),
    }
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary
/// (`"2023-07-01T…"` → `"2023-07-01"` for 10): never panics, whatever `s` holds.
pub fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_names() {
        let id = "3fa2".repeat(16);
        assert_eq!(short_name(&id), "3fa23fa2");
        assert_eq!(short_name("x"), "\"x\"");
        assert_eq!(short_name("abcdefgé"), "\"abcdefgé\"");
        assert_eq!(short_name("a\u{1b}[2J"), "\"a\\u{1b}[2J\"");
        assert_eq!(
            short_name(&id.to_uppercase()),
            format!("{:?}", id.to_uppercase())
        );
        assert!(!is_id_name(&id[..63]));
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix("2023-07-01T10:00:00", 10), "2023-07-01");
        assert_eq!(prefix("2023", 10), "2023");
        assert_eq!(prefix("2023-07-0é", 10), "2023-07-0");
        assert_eq!(prefix("", 3), "");
        assert_eq!(prefix("ééé", 0), "");
    }

    proptest! {
        #[test]
        fn never_panic_on_any_string(s in any::<String>(), n in 0usize..80) {
            let p = prefix(&s, n);
            prop_assert!(p.len() <= n && s.starts_with(p));
            // Only one character shorter than asked, at most.
            prop_assert!(n.min(s.len()) - p.len() < 4);
            let shown = short_name(&s);
            prop_assert!(!shown.chars().any(char::is_control));
            prop_assert_eq!(is_id_name(&s), shown.len() == 8 && !shown.starts_with('"'));
        }
    }
}
