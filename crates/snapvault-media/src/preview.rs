//! What a photo page shows beyond the catalog: the camera that took it, and the preview
//! image embedded in the file, read from its first bytes only.
//!
//! A JPEG's EXIF block may carry a small JPEG in IFD1 (`JPEGInterchangeFormat` 0x0201,
//! `JPEGInterchangeFormatLength` 0x0202): a thumbnail for free, without decoding the photo.
//! A HEIC's thumbnail item is HEVC-coded and needs a decoder, which this crate does not
//! have (see docs/design.md), so for HEIC only the camera is read.

use crate::bytes::slice;
use crate::tiff::{Tiff, ascii_text};

const TAG_MAKE: u16 = 0x010F;
const TAG_MODEL: u16 = 0x0110;
const TAG_THUMB_OFFSET: u16 = 0x0201;
const TAG_THUMB_LENGTH: u16 = 0x0202;
/// A thumbnail larger than this is not a thumbnail (EXIF caps APP1 at 64 KiB anyway).
pub const MAX_THUMBNAIL: usize = 64 * 1024;

/// The camera and the embedded JPEG preview of a still, as far as `head` holds them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Preview {
    /// `Make Model` ("Apple iPhone 15 Pro"); the model alone when it already names the make.
    pub camera: Option<String>,
    /// A complete JPEG (starts with SOI), at most [`MAX_THUMBNAIL`] bytes.
    pub thumbnail: Option<Vec<u8>>,
}

/// Read the camera and embedded preview from a file's first bytes. Never panics; anything
/// missing, truncated or malformed is simply `None`.
pub fn preview(head: &[u8]) -> Preview {
    let tiff = match crate::sniff(head) {
        Some(crate::Format::Jpeg) => {
            crate::jpeg::exif_segment(head).map(std::borrow::Cow::Borrowed)
        }
        Some(crate::Format::Heif) => crate::bmff::heif_exif(head)
            .and_then(|item| crate::bmff::exif_item_tiff(&item).map(<[u8]>::to_vec))
            .map(std::borrow::Cow::Owned),
        Some(crate::Format::Tiff) => Some(std::borrow::Cow::Borrowed(head)),
        _ => None,
    };
    let Some(tiff) = tiff else {
        return Preview::default();
    };
    Preview {
        camera: camera(&tiff),
        thumbnail: thumbnail(&tiff),
    }
}

fn camera(data: &[u8]) -> Option<String> {
    let t = Tiff::parse(data)?;
    let (mut make, mut model) = (None, None);
    for e in t.entries(t.ifd0()) {
        match e.tag() {
            TAG_MAKE => make = t.value(&e).and_then(ascii_text),
            TAG_MODEL => model = t.value(&e).and_then(ascii_text),
            _ => {}
        }
    }
    match (make, model) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (make, model) => model.or(make),
    }
}

/// The JPEG that IFD1 points to.
fn thumbnail(data: &[u8]) -> Option<Vec<u8>> {
    let t = Tiff::parse(data)?;
    let endian = t.endian();
    let ifd0 = t.ifd0();
    let count = usize::from(endian.u16(data, ifd0)?);
    let next = ifd0.checked_add(2)?.checked_add(count.checked_mul(12)?)?;
    let ifd1 = endian.u32(data, next)? as usize;
    if ifd1 == 0 || ifd1 == ifd0 {
        return None;
    }
    let (mut off, mut len) = (None, None);
    for e in t.entries(ifd1) {
        match e.tag() {
            TAG_THUMB_OFFSET => off = t.uint(&e),
            TAG_THUMB_LENGTH => len = t.uint(&e),
            _ => {}
        }
    }
    let len = len? as usize;
    if len > MAX_THUMBNAIL {
        return None;
    }
    let jpeg = slice(data, off? as usize, len)?;
    jpeg.starts_with(crate::jpeg::SOI).then(|| jpeg.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaptureTime;
    use crate::sample;

    fn when() -> CaptureTime {
        "2023-07-14T18:03:11+02:00".parse().unwrap()
    }

    #[test]
    fn jpeg_thumbnail_and_camera() {
        let j = sample::jpeg_with_thumbnail(&when(), 3000, 7);
        let p = preview(&j);
        assert_eq!(p.camera.as_deref(), Some("Apple iPhone 15 Pro"));
        let t = p.thumbnail.unwrap();
        assert!(t.starts_with(&[0xFF, 0xD8]) && t.ends_with(&[0xFF, 0xD9]));
        // Still a photo with the same capture date.
        assert_eq!(crate::inspect(b"a.jpg", &j).capture, Some(when()));
    }

    #[test]
    fn no_thumbnail_without_ifd1_and_heic_camera() {
        let p = preview(&sample::jpeg(&when(), None, 100, 1));
        assert_eq!(p.camera.as_deref(), Some("Apple iPhone 15 Pro"));
        assert_eq!(p.thumbnail, None);
        let h = preview(&sample::heic(&when(), None, 100, 1));
        assert_eq!(h.camera.as_deref(), Some("Apple iPhone 15 Pro"));
        assert_eq!(h.thumbnail, None);
    }

    #[test]
    fn truncated_or_garbage_never_panics() {
        let j = sample::jpeg_with_thumbnail(&when(), 100, 7);
        for n in 0..j.len() {
            let p = preview(&j[..n]);
            if let Some(t) = p.thumbnail {
                assert!(t.len() <= MAX_THUMBNAIL);
            }
        }
        let mut x = j.clone();
        for i in 0..x.len() {
            x[i] ^= 0x5A;
            let _ = preview(&x);
            x[i] ^= 0x5A;
        }
    }
}
