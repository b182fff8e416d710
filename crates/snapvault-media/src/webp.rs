//! WebP: the RIFF `EXIF` chunk of an extended (VP8X) WebP.

use crate::bytes::{array, slice};
use crate::jpeg::EXIF_PREFIX;
use crate::tiff::{ExifFacts, exif_facts};

/// Chunks walked before giving up.
const MAX_CHUNKS: usize = 10_000;

pub(crate) fn is_webp(d: &[u8]) -> bool {
    d.starts_with(b"RIFF") && d.get(8..12) == Some(b"WEBP")
}

pub(crate) fn facts(d: &[u8]) -> ExifFacts {
    exif_chunk(d).map(exif_facts).unwrap_or_default()
}

fn exif_chunk(d: &[u8]) -> Option<&[u8]> {
    if !is_webp(d) {
        return None;
    }
    let mut pos = 12usize;
    for _ in 0..MAX_CHUNKS {
        let fourcc = slice(d, pos, 4)?;
        let len = u32::from_le_bytes(array(d, pos + 4)?) as usize;
        let body = slice(d, pos + 8, len)?;
        if fourcc == b"EXIF" {
            return Some(body.strip_prefix(EXIF_PREFIX).unwrap_or(body));
        }
        // Chunks are padded to an even length.
        pos = pos.checked_add(8)?.checked_add(len)?.checked_add(len & 1)?;
    }
    None
}
