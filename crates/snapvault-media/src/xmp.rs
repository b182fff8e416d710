//! XMP packets (RDF/XML): the capture date, for files whose EXIF has none (PNG screenshots
//! and exports, JPEGs edited by tools that drop EXIF).
//!
//! No XML parser: the few properties wanted are found as an element
//! (`<exif:DateTimeOriginal>2023-07-14T18:03:11+02:00</exif:DateTimeOriginal>`) or as an
//! attribute (`exif:DateTimeOriginal="…"`), under the usual prefixes, within a bounded
//! prefix of the packet. Order of preference: `exif:DateTimeOriginal`, then
//! `photoshop:DateCreated`, then `xmp:CreateDate` (the `exif:` and `photoshop:` ones say when
//! the picture was taken, `xmp:CreateDate` when the file was made, which for a camera file
//! is the same moment but for an export is not).

use crate::CaptureTime;
use crate::time::parse_datetime;

/// Bytes of a packet searched.
const MAX_PACKET: usize = 1 << 20;
/// The properties read, in order of preference.
const PROPERTIES: [&[u8]; 4] = [
    b"exif:DateTimeOriginal",
    b"exifEX:DateTimeOriginal",
    b"photoshop:DateCreated",
    b"xmp:CreateDate",
];

/// The capture time an XMP packet gives, if any.
pub(crate) fn capture(packet: &[u8]) -> Option<CaptureTime> {
    let p = packet.get(..MAX_PACKET).unwrap_or(packet);
    PROPERTIES
        .iter()
        .find_map(|name| value(p, name).and_then(parse_datetime))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The text of the first element or attribute named `name`.
fn value<'a>(p: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(at) = find(p, name, from) {
        from = at + name.len();
        // Must be a whole name: preceded by '<' or whitespace, not part of a longer name.
        let before = at.checked_sub(1).and_then(|i| p.get(i)).copied();
        let after = p.get(from).copied();
        match (before, after) {
            // <exif:DateTimeOriginal>VALUE</…>   (attributes on the element are skipped)
            (Some(b'<'), Some(b'>' | b' ' | b'\t' | b'\r' | b'\n')) => {
                let open_end = find(p, b">", from)?;
                if p.get(open_end.checked_sub(1)?) == Some(&b'/') {
                    continue; // an empty element
                }
                let start = open_end + 1;
                let end = find(p, b"<", start)?;
                return p.get(start..end);
            }
            // exif:DateTimeOriginal="VALUE"  or  ='VALUE'
            (Some(b' ' | b'\t' | b'\r' | b'\n'), Some(b'=')) => {
                let q = *p.get(from + 1)?;
                if q != b'"' && q != b'\'' {
                    continue;
                }
                let start = from + 2;
                let end = p.get(start..)?.iter().position(|&c| c == q)? + start;
                return p.get(start..end);
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_attributes_and_preference() {
        let el = br#"<x:xmpmeta><rdf:RDF><rdf:Description>
            <xmp:CreateDate>2024-01-02T03:04:05Z</xmp:CreateDate>
            <exif:DateTimeOriginal>2023-07-14T18:03:11.250+02:00</exif:DateTimeOriginal>
            </rdf:Description></rdf:RDF></x:xmpmeta>"#;
        assert_eq!(
            capture(el).map(|c| c.to_string()).as_deref(),
            Some("2023-07-14T18:03:11+02:00")
        );
        let attr = br#"<rdf:Description xmp:CreateDate="2022-12-31T23:59" xmlns:xmp="http://ns.adobe.com/xap/1.0/"/>"#;
        assert_eq!(
            capture(attr).map(|c| c.to_string()).as_deref(),
            Some("2022-12-31T23:59:00")
        );
        // Longer names and empty or broken values are not taken.
        for bad in [
            &br#"<exif:DateTimeOriginalX>2023-07-14T18:03:11</exif:DateTimeOriginalX>"#[..],
            br#"<exif:DateTimeOriginal/>"#,
            br#"<exif:DateTimeOriginal>yesterday</exif:DateTimeOriginal>"#,
            br#" exif:DateTimeOriginal=2023"#,
            br#"<exif:DateTimeOriginal>2023-07-14T18:03:11"#,
            b"",
        ] {
            assert_eq!(capture(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
