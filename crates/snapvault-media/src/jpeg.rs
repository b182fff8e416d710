//! JPEG: the first APP1 `Exif` segment before the scan.

use crate::bytes::{be_u16, slice};
use crate::tiff::{ExifFacts, exif_facts};

pub(crate) const SOI: &[u8] = &[0xFF, 0xD8, 0xFF];
pub(crate) const EXIF_PREFIX: &[u8] = b"Exif\0\0";
/// Markers walked before giving up (a real file has a few dozen before its scan).
const MAX_SEGMENTS: usize = 4096;

/// EXIF facts of a JPEG, from its first complete APP1 `Exif` segment.
pub(crate) fn facts(d: &[u8]) -> ExifFacts {
    exif_segment(d).map(exif_facts).unwrap_or_default()
}

/// The TIFF structure inside the first complete APP1 `Exif\0\0` segment.
fn exif_segment(d: &[u8]) -> Option<&[u8]> {
    if !d.starts_with(SOI) {
        return None;
    }
    let mut pos = 2;
    for _ in 0..MAX_SEGMENTS {
        if *d.get(pos)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *d.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *d.get(pos)?;
        pos += 1;
        match marker {
            // Markers without a length.
            0x01 | 0xD0..=0xD8 => continue,
            // End of image, or start of scan: no metadata after this point.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(be_u16(d, pos)?);
        let body = slice(d, pos + 2, len.checked_sub(2)?)?;
        if marker == 0xE1
            && let Some(tiff) = body.strip_prefix(EXIF_PREFIX)
        {
            return Some(tiff);
        }
        pos += len;
    }
    None
}
