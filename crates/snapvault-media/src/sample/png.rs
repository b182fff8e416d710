//! PNG files (stored zlib blocks, a real CRC) with an eXIf chunk.

use super::*;

pub(super) fn crc32(parts: &[&[u8]]) -> u32 {
    let mut c = !0u32;
    for p in parts {
        for &b in *p {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
    }
    !c
}

pub(crate) fn png_chunk(out: &mut Vec<u8>, typ: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(typ);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[typ, data]).to_be_bytes());
}

/// zlib stream of stored (uncompressed) deflate blocks.
pub(super) fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

/// A valid PNG (64 pixels wide, 8-bit RGB noise, about `payload_len` bytes of pixels stored
/// uncompressed) with an `eXIf` chunk before the image data, like an iPhone screenshot.
pub fn png(capture: &CaptureTime, payload_len: usize, seed: u64) -> Vec<u8> {
    let width = 64usize;
    let row = 1 + 3 * width;
    let height = payload_len.div_ceil(row).max(1);
    let mut rng = Rng::new(seed);
    let mut raw = Vec::with_capacity(row * height);
    for _ in 0..height {
        raw.push(0);
        raw.extend(rng.bytes(row - 1));
    }
    let mut out = crate::png::SIGNATURE.to_vec();
    let mut ihdr = (width as u32).to_be_bytes().to_vec();
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"eXIf", &exif_block(capture, None));
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}
