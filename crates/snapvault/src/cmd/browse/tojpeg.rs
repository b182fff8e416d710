//! PNG to JPEG, for the pictures `heif-thumbnailer` makes of HEICs (it writes only PNG):
//! every browser shows JPEG (issue 20: "browsers without HEIC support get JPEG"), and a
//! photo is several times smaller as JPEG than as PNG. Decoded by the `png` crate, encoded
//! by `jpeg-encoder` (both pure Rust, a few CPU seconds to build; docs/design.md, "HEIC
//! thumbnails").
//!
//! The PNG comes from a decoder that read an untrusted file, so it is bounded like one:
//! at most [`MAX_PIXELS`] pixels, decoded with the `png` crate's allocation limit.

use std::io::{self, Cursor};

/// Largest picture converted: the photo page's, [`super::heif::SCREEN`] pixels square.
pub const MAX_PIXELS: u64 = (super::heif::SCREEN as u64) * (super::heif::SCREEN as u64);
/// What the PNG decoder may allocate: the picture at 16 bits a channel with alpha, and
/// room for its rows.
const MAX_DECODED: usize = (MAX_PIXELS as usize) * 8 + (1 << 20);

fn bad(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("the decoder's PNG: {what}"))
}

/// `png` re-encoded as a baseline JPEG of `quality` (1-100). Transparent pixels are laid
/// on white (JPEG has no alpha).
pub fn from_png(png: &[u8], quality: u8) -> io::Result<Vec<u8>> {
    let mut dec =
        png::Decoder::new_with_limits(Cursor::new(png), png::Limits { bytes: MAX_DECODED });
    // Palette to RGB, low bit depths to 8, 16 bits to 8: the output is 8 bits a channel.
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(bad)?;
    let (w, h) = {
        let info = reader.info();
        (info.width, info.height)
    };
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(format_args!(
            "{w}x{h} pixels, more than the {MAX_PIXELS} converted"
        )));
    }
    let (Ok(jw), Ok(jh)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(bad(format_args!("{w}x{h} pixels, too large for JPEG")));
    };
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(bad)?;
    buf.truncate(frame.buffer_size());
    let (pixels, color) = match frame.color_type {
        png::ColorType::Rgb => (buf, jpeg_encoder::ColorType::Rgb),
        png::ColorType::Grayscale => (buf, jpeg_encoder::ColorType::Luma),
        png::ColorType::Rgba => (on_white(&buf, 4), jpeg_encoder::ColorType::Rgb),
        png::ColorType::GrayscaleAlpha => (on_white(&buf, 2), jpeg_encoder::ColorType::Luma),
        png::ColorType::Indexed => return Err(bad("a palette left after expansion")),
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&pixels, jw, jh, color)
        .map_err(|e| io::Error::other(format!("encoding the JPEG: {e}")))?;
    Ok(out)
}

/// Pixels of `n` 8-bit channels, the last alpha, laid on white: the other channels.
fn on_white(px: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(px.len() / n * (n - 1));
    for p in px.chunks_exact(n) {
        let (color, alpha) = p.split_at(n - 1);
        let a = u32::from(alpha.first().copied().unwrap_or(255));
        out.extend(
            color
                .iter()
                .map(|&c| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(w: u32, h: u32, color: png::ColorType, px: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().unwrap();
        wr.write_image_data(px).unwrap();
        wr.finish().unwrap();
        out
    }

    #[test]
    fn rgb_rgba_and_gray_become_jpeg() {
        for (color, n) in [
            (png::ColorType::Rgb, 3),
            (png::ColorType::Rgba, 4),
            (png::ColorType::Grayscale, 1),
            (png::ColorType::GrayscaleAlpha, 2),
        ] {
            let px: Vec<u8> = (0..16 * 8 * n).map(|i| (i * 7 % 256) as u8).collect();
            let jpg = from_png(&png_of(16, 8, color, &px), 80).unwrap();
            assert!(jpg.starts_with(&[0xFF, 0xD8]), "{color:?}");
            assert!(jpg.ends_with(&[0xFF, 0xD9]), "{color:?}");
        }
    }

    #[test]
    fn transparent_is_white_and_opaque_is_kept() {
        assert_eq!(
            on_white(&[10, 20, 30, 0, 10, 20, 30, 255], 4),
            [255, 255, 255, 10, 20, 30]
        );
    }

    #[test]
    fn not_a_png_or_too_large_is_an_error() {
        assert!(from_png(b"not a png", 80).is_err());
        assert!(from_png(&[], 80).is_err());
        let big = png_of(2049, 2048, png::ColorType::Grayscale, &vec![0; 2049 * 2048]);
        let e = from_png(&big, 80).unwrap_err().to_string();
        assert!(e.contains("2049x2048"), "{e}");
        let mut cut = png_of(16, 8, png::ColorType::Rgb, &[9; 16 * 8 * 3]);
        cut.truncate(cut.len() - 20);
        assert!(from_png(&cut, 80).is_err());
    }
}
