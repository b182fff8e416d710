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

/// Must `c` be escaped when shown? Control characters (C0 with newline and tab, DEL, C1)
/// and the Unicode controls that reorder or hide what a terminal shows (bidi embeddings,
/// overrides and isolates).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
}

/// A name or path from a listing (a source folder, a snapshot's folders, the phone), as
/// shown in a message or a listing: control characters become `\n`, `\t`, `\u{1b}`, …,
/// so a crafted name can neither forge a line of output nor drive the terminal (`ESC [`
/// sequences). Everything else — backslashes, any script — is shown as it is. `--json`
/// output carries names exactly instead.
pub fn escaped(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    push_escaped(&mut out, s);
    std::borrow::Cow::Owned(out)
}

/// [`escaped`] for a name as stored (any bytes): bytes that are not UTF-8 are shown as
/// `\xff`.
pub fn escaped_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out
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
    fn escapes() {
        assert_eq!(escaped("IMG_0001.JPG"), "IMG_0001.JPG");
        assert_eq!(escaped("été/写真 a\\b.jpg"), "été/写真 a\\b.jpg");
        assert_eq!(
            escaped("evil\n\x1b[31mred\t.jpg"),
            "evil\\n\\u{1b}[31mred\\t.jpg"
        );
        assert_eq!(escaped("a\u{202e}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(escaped("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escaped_bytes(b"ok\xff\n.jpg"), "ok\\xff\\n.jpg");
        assert_eq!(escaped_bytes("é".as_bytes()), "é");
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
            let e = escaped(&s);
            prop_assert!(!e.chars().any(needs_escape));
            prop_assert!(!escaped_bytes(s.as_bytes()).chars().any(needs_escape));
            let shown = short_name(&s);
            prop_assert!(!shown.chars().any(char::is_control));
            prop_assert_eq!(is_id_name(&s), shown.len() == 8 && !shown.starts_with('"'));
        }
    }
}
