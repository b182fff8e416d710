//! PNG: EXIF and XMP wherever writers put them.
//!
//! - the `eXIf` chunk (PNG 1.5 extension, PNG third edition);
//! - a text chunk (`tEXt`, compressed `zTXt`, or `iTXt`) with the keyword
//!   `Raw profile type exif` (or `… APP1`), the form ImageMagick, GIMP and exiv2 write:
//!   `\nexif\n<length>\n<hex digits>` of the EXIF block (with or without `Exif\0\0`);
//! - an `iTXt` chunk `XML:com.adobe.xmp` holding an XMP packet.
//!
//! Chunks are walked until the image data ends or `IEND`; compressed text is inflated with a
//! fixed output limit.

use crate::CaptureTime;
use crate::bytes::{be_u32, slice};
use crate::jpeg::EXIF_PREFIX;
use crate::tiff::{ExifFacts, exif_facts};

pub(crate) const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// Chunks walked before giving up.
const MAX_CHUNKS: usize = 100_000;
/// Largest inflated text chunk (EXIF blocks are at most 64 KiB; XMP packets a few KiB).
const MAX_TEXT: usize = 1 << 20;

/// What a PNG says about when it was taken.
#[derive(Debug, Default)]
pub(crate) struct PngFacts {
    /// From the `eXIf` chunk, else from a raw-profile text chunk.
    pub exif: ExifFacts,
    /// From an XMP packet.
    pub xmp: Option<CaptureTime>,
}

/// EXIF and XMP facts of a PNG.
pub(crate) fn facts(d: &[u8]) -> PngFacts {
    let mut out = PngFacts::default();
    let mut profile: Option<ExifFacts> = None;
    let mut exif_chunk: Option<ExifFacts> = None;
    let Some(chunks) = chunks(d) else {
        return out;
    };
    for (typ, body) in chunks {
        match typ {
            // Some writers keep JPEG's APP1 prefix; the standard says the TIFF header starts
            // the chunk.
            b"eXIf" if exif_chunk.is_none() => {
                exif_chunk = Some(exif_facts(body.strip_prefix(EXIF_PREFIX).unwrap_or(body)));
            }
            b"tEXt" | b"zTXt" | b"iTXt" => {
                let Some((keyword, text)) = text_chunk(typ, body) else {
                    continue;
                };
                if keyword.eq_ignore_ascii_case(b"Raw profile type exif")
                    || keyword.eq_ignore_ascii_case(b"Raw profile type APP1")
                {
                    if profile.is_none()
                        && let Some(block) = raw_profile(&text)
                    {
                        profile = Some(exif_facts(
                            block.strip_prefix(EXIF_PREFIX).unwrap_or(&block),
                        ));
                    }
                } else if keyword == b"XML:com.adobe.xmp" && out.xmp.is_none() {
                    out.xmp = crate::xmp::capture(&text);
                }
            }
            _ => {}
        }
    }
    // The eXIf chunk is the standard place; a raw profile is the fallback.
    out.exif = match (exif_chunk, profile) {
        (Some(e), _) if e.capture().is_some() => e,
        (None, Some(p)) => p,
        (Some(e), Some(p)) => {
            if p.capture().is_some() {
                p
            } else {
                e
            }
        }
        (Some(e), None) => e,
        (None, None) => ExifFacts::default(),
    };
    out
}

/// The complete chunks of a PNG, in order, up to `IEND` (a chunk cut short ends the walk).
fn chunks(d: &[u8]) -> Option<impl Iterator<Item = (&[u8], &[u8])>> {
    if !d.starts_with(SIGNATURE) {
        return None;
    }
    let mut pos = SIGNATURE.len();
    let mut n = 0;
    Some(std::iter::from_fn(move || {
        n += 1;
        if n > MAX_CHUNKS {
            return None;
        }
        let len = be_u32(d, pos)?;
        if len > 0x7FFF_FFFF {
            return None;
        }
        let typ = slice(d, pos + 4, 4)?;
        // Require the data and the CRC after it: a chunk cut short is not used.
        let body = slice(d, pos + 8, len as usize + 4)?;
        let body = &body[..len as usize];
        if typ == b"IEND" {
            return None;
        }
        pos = pos.checked_add(12 + len as usize)?;
        Some((typ, body))
    }))
}

/// Keyword and (inflated) text of a `tEXt`, `zTXt` or `iTXt` chunk.
fn text_chunk<'a>(typ: &[u8], body: &'a [u8]) -> Option<(&'a [u8], Vec<u8>)> {
    let nul = body.iter().position(|&b| b == 0)?;
    let (keyword, rest) = (&body[..nul], &body[nul + 1..]);
    if keyword.is_empty() || keyword.len() > 79 {
        return None;
    }
    let text = match typ {
        b"tEXt" => rest.get(..MAX_TEXT).unwrap_or(rest).to_vec(),
        // Compression method (0 = zlib), then the stream.
        b"zTXt" => match rest.split_first()? {
            (0, z) => inflate(z)?,
            _ => return None,
        },
        // Compression flag, method, language tag\0, translated keyword\0, text.
        b"iTXt" => {
            let (&flag, rest) = rest.split_first()?;
            let (&method, rest) = rest.split_first()?;
            let lang_end = rest.iter().position(|&b| b == 0)?;
            let rest = rest.get(lang_end + 1..)?;
            let tr_end = rest.iter().position(|&b| b == 0)?;
            let text = rest.get(tr_end + 1..)?;
            match (flag, method) {
                (0, _) => text.get(..MAX_TEXT).unwrap_or(text).to_vec(),
                (1, 0) => inflate(text)?,
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((keyword, text))
}

/// zlib stream → bytes, at most [`MAX_TEXT`] (a larger one is refused, not cut).
fn inflate(z: &[u8]) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(z, MAX_TEXT).ok()
}

/// The bytes of a raw profile: `\n<name>\n<spaces><decimal length>\n<hex, any whitespace>`.
fn raw_profile(text: &[u8]) -> Option<Vec<u8>> {
    let mut lines = text.splitn(4, |&b| b == b'\n');
    if !lines.next()?.is_empty() {
        return None; // starts with a newline
    }
    let _name = lines.next()?;
    let len: usize = std::str::from_utf8(lines.next()?)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if len == 0 || len > MAX_TEXT / 2 {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let mut high: Option<u8> = None;
    for &c in lines.next()? {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        match high.take() {
            None => high = Some(v),
            Some(h) => {
                out.push(h << 4 | v);
                if out.len() == len {
                    return Some(out);
                }
            }
        }
    }
    None // fewer bytes than the length says
}
