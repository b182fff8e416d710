//! JPEG files: an EXIF APP1 segment, optionally an embedded thumbnail, then the payload.

use super::*;

pub(super) fn jpeg_segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(body);
}

/// A valid baseline JPEG: SOI, APP1 Exif (DateTimeOriginal + OffsetTimeOriginal, Apple
/// MakerNote with the content id), `payload_len` bytes of noise in COM segments, then an 8×8
/// grey image (DQT, SOF0, DHT, SOS, one coded block) and EOI.
pub fn jpeg(
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    let mut out = jpeg_head(capture, content_id, payload_len, seed);
    // Quantisation table 0: all ones.
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1; 64]);
    jpeg_segment(&mut out, 0xDB, &dqt);
    // 8-bit, 8×8, one component (id 1, 1×1 sampling, table 0).
    jpeg_segment(&mut out, 0xC0, &[8, 0, 8, 0, 8, 1, 1, 0x11, 0]);
    // DC and AC tables with one 1-bit code each: DC category 0, AC end-of-block.
    let mut dht = |class: u8| {
        let mut t = vec![class];
        t.push(1);
        t.extend_from_slice(&[0; 15]);
        t.push(0);
        jpeg_segment(&mut out, 0xC4, &t);
    };
    dht(0x00);
    dht(0x10);
    jpeg_segment(&mut out, 0xDA, &[1, 1, 0x00, 0, 63, 0]);
    // Bits: DC "0", AC EOB "0", padded with ones.
    out.push(0x3F);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// SOI, APP1 Exif (capture time and offset, camera, Apple MakerNote with the content id),
/// then `payload_len` bytes of noise in COM segments: a sample JPEG up to its image.
pub(super) fn jpeg_head(
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&exif_block(capture, content_id));
    jpeg_segment(&mut out, 0xE1, &app1);
    for chunk in noise(payload_len, seed).chunks(65_533) {
        jpeg_segment(&mut out, 0xFE, chunk);
    }
    out
}

/// [`jpeg`] whose EXIF block also carries a thumbnail in IFD1 (`JPEGInterchangeFormat`):
/// a small baseline JPEG, as cameras and phones embed one.
pub fn jpeg_with_thumbnail(capture: &CaptureTime, payload_len: usize, seed: u64) -> Vec<u8> {
    // The thumbnail: the same 8×8 grey image, without an EXIF segment of its own.
    let plain = jpeg(capture, None, 0, seed);
    let app1_len = usize::from(u16::from_be_bytes([plain[4], plain[5]]));
    let mut thumb = plain[..2].to_vec();
    thumb.extend_from_slice(&plain[4 + app1_len..]);
    // IFD1 (big-endian, as exif_block writes): Compression 6, offset and length of the
    // thumbnail, which follows the IFD.
    let mut tiff = exif_block(capture, None);
    if tiff.len() % 2 == 1 {
        tiff.push(0);
    }
    let ifd1 = tiff.len() as u32;
    let count = u16::from_be_bytes([tiff[8], tiff[9]]) as usize;
    let next = 8 + 2 + count * 12;
    tiff[next..next + 4].copy_from_slice(&ifd1.to_be_bytes());
    let data = ifd1 + 2 + 3 * 12 + 4;
    tiff.extend_from_slice(&3u16.to_be_bytes());
    for (tag, typ, value) in [
        (0x0103u16, 3u16, 6u32 << 16),
        (0x0201, 4, data),
        (0x0202, 4, thumb.len() as u32),
    ] {
        tiff.extend_from_slice(&tag.to_be_bytes());
        tiff.extend_from_slice(&typ.to_be_bytes());
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&value.to_be_bytes());
    }
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&thumb);
    let mut out = vec![0xFF, 0xD8];
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    jpeg_segment(&mut out, 0xE1, &app1);
    for chunk in noise(payload_len, seed).chunks(65_533) {
        jpeg_segment(&mut out, 0xFE, chunk);
    }
    out.extend_from_slice(&thumb[2..]);
    out
}
