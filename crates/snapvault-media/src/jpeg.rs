//! JPEG: the first APP1 `Exif` segment before the scan, and the first APP1 XMP packet.

use crate::bytes::{be_u16, slice};
use crate::tiff::{ExifFacts, exif_facts};

pub(crate) const SOI: &[u8] = &[0xFF, 0xD8, 0xFF];
pub(crate) const EXIF_PREFIX: &[u8] = b"Exif\0\0";
pub(crate) const XMP_PREFIX: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// Markers walked before giving up (a real file has a few dozen before its scan).
const MAX_SEGMENTS: usize = 4096;

/// EXIF facts of a JPEG, from its first complete APP1 `Exif` segment.
pub(crate) fn facts(d: &[u8]) -> ExifFacts {
    segments(d)
        .find_map(|(marker, body)| {
            (marker == 0xE1)
                .then(|| body.strip_prefix(EXIF_PREFIX))
                .flatten()
        })
        .map(exif_facts)
        .unwrap_or_default()
}

/// The capture time of the first APP1 XMP packet (`http://ns.adobe.com/xap/1.0/\0`).
pub(crate) fn xmp_capture(d: &[u8]) -> Option<crate::CaptureTime> {
    segments(d)
        .find_map(|(marker, body)| {
            (marker == 0xE1)
                .then(|| body.strip_prefix(XMP_PREFIX))
                .flatten()
        })
        .and_then(crate::xmp::capture)
}

/// The complete marker segments before the scan: (marker, body).
fn segments(d: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = if d.starts_with(SOI) { 2 } else { usize::MAX };
    let mut n = 0;
    std::iter::from_fn(move || {
        loop {
            n += 1;
            if n > MAX_SEGMENTS || *d.get(pos)? != 0xFF {
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
            pos += len;
            return Some((marker, body));
        }
    })
}

/// The TIFF structure inside the first complete APP1 `Exif\0\0` segment (for the preview).
pub(crate) fn exif_segment(d: &[u8]) -> Option<&[u8]> {
    segments(d).find_map(|(marker, body)| {
        (marker == 0xE1)
            .then(|| body.strip_prefix(EXIF_PREFIX))
            .flatten()
    })
}
