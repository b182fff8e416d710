//! PNG: the `eXIf` chunk (PNG 1.5 extension / PNG 3rd edition).

use crate::bytes::{be_u32, slice};
use crate::jpeg::EXIF_PREFIX;
use crate::tiff::{ExifFacts, exif_facts};

pub(crate) const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// Chunks walked before giving up.
const MAX_CHUNKS: usize = 100_000;

/// EXIF facts of a PNG, from its first complete `eXIf` chunk.
pub(crate) fn facts(d: &[u8]) -> ExifFacts {
    exif_chunk(d).map(exif_facts).unwrap_or_default()
}

fn exif_chunk(d: &[u8]) -> Option<&[u8]> {
    if !d.starts_with(SIGNATURE) {
        return None;
    }
    let mut pos = SIGNATURE.len();
    for _ in 0..MAX_CHUNKS {
        let len = be_u32(d, pos)?;
        if len > 0x7FFF_FFFF {
            return None;
        }
        let typ = slice(d, pos + 4, 4)?;
        // Require the data and the CRC after it: a chunk cut short is not used.
        let body = slice(d, pos + 8, len as usize + 4)?;
        let body = &body[..len as usize];
        match typ {
            // Some writers keep JPEG's APP1 prefix; the standard says the TIFF header starts
            // the chunk.
            b"eXIf" => return Some(body.strip_prefix(EXIF_PREFIX).unwrap_or(body)),
            b"IEND" => return None,
            _ => {}
        }
        pos = pos.checked_add(12 + len as usize)?;
    }
    None
}
