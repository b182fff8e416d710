//! A JPEG that shows a picture: a small generated landscape (sky, sun, hills, water; colours
//! from the seed), for samples a person looks at (`snapvault demo`, then `browse`).
//!
//! No JPEG encoder is in the dependency tree, and none is needed for this: every 8×8 block
//! is one flat colour, so only its DC coefficient is coded (the AC part of every block is
//! an end-of-block code). That is a valid baseline JPEG (SOF0, 4:4:4 YCbCr) any decoder
//! reads, a few kilobytes for [`WIDTH`]×[`HEIGHT`], with 4-pixel blocks at thumbnail size.

use super::{Rng, jpeg_head, jpeg_segment};
use crate::CaptureTime;

/// The picture's size (multiples of 8; 4:3 like a phone's photos).
pub const WIDTH: u16 = 320;
pub const HEIGHT: u16 = 240;

/// [`super::jpeg`] with a picture instead of the 8×8 grey square: SOI, APP1 Exif (capture
/// time and offset, camera, Apple MakerNote with the content id), `payload_len` bytes of
/// noise in COM segments (so sizes behave as a phone's), then the picture.
pub fn jpeg_picture(
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    let mut out = jpeg_head(capture, content_id, payload_len, seed);
    let scene = Scene::new(seed);
    encode(&mut out, WIDTH, HEIGHT, |x, y| scene.at(x, y));
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A landscape: sky fading to the horizon, a sun, two ranges of hills, water below.
struct Scene {
    sky: [f32; 3],
    horizon: [f32; 3],
    sun: (f32, f32, f32),
    hills: [[f32; 3]; 2],
    water: [f32; 3],
    phase: f32,
}

impl Scene {
    fn new(seed: u64) -> Scene {
        let mut r = Rng::new(seed ^ 0x9A1E_77E5);
        let mut f = |lo: f32, hi: f32| lo + (hi - lo) * (r.below(1000) as f32 / 1000.0);
        // Day, dusk or dawn, by the seed.
        let (sky, horizon) = match r_pick(seed) {
            0 => ([60.0, 120.0, 220.0], [190.0, 220.0, 250.0]),
            1 => ([70.0, 40.0, 120.0], [250.0, 150.0, 80.0]),
            _ => ([30.0, 60.0, 130.0], [240.0, 200.0, 170.0]),
        };
        Scene {
            sky,
            horizon,
            sun: (
                f(0.15, 0.85) * f32::from(WIDTH),
                f(0.15, 0.4) * f32::from(HEIGHT),
                f(14.0, 26.0),
            ),
            hills: [
                [f(40.0, 90.0), f(90.0, 140.0), f(50.0, 90.0)],
                [f(20.0, 50.0), f(60.0, 100.0), f(30.0, 60.0)],
            ],
            water: [f(20.0, 50.0), f(80.0, 120.0), f(150.0, 200.0)],
            phase: f(0.0, 6.0),
        }
    }

    fn at(&self, x: u32, y: u32) -> [u8; 3] {
        let (w, h) = (f32::from(WIDTH), f32::from(HEIGHT));
        let (x, y) = (x as f32, y as f32);
        let sea = h * 0.72;
        let ridge = |k: f32, base: f32, amp: f32| {
            base - amp * (0.5 + 0.5 * (x / w * k + self.phase * k).sin())
        };
        let c = if y >= sea {
            let t = (y - sea) / (h - sea);
            mix(self.water, [10.0, 30.0, 60.0], t)
        } else if y >= ridge(9.0, sea, h * 0.12) {
            self.hills[1]
        } else if y >= ridge(5.0, sea - h * 0.06, h * 0.22) {
            self.hills[0]
        } else {
            let (sx, sy, sr) = self.sun;
            if (x - sx).powi(2) + (y - sy).powi(2) <= sr * sr {
                [255.0, 235.0, 150.0]
            } else {
                mix(self.sky, self.horizon, y / sea)
            }
        };
        c.map(|v| v.clamp(0.0, 255.0) as u8)
    }
}

fn r_pick(seed: u64) -> u64 {
    Rng::new(seed ^ 0xDA7).below(3)
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [0, 1, 2].map(|i| a[i] + (b[i] - a[i]) * t)
}

/// JPEG entropy-coded bits, with a 0x00 stuffed after every 0xFF byte.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u32,
    n: u32,
}

impl Bits<'_> {
    fn put(&mut self, value: u32, len: u32) {
        for i in (0..len).rev() {
            self.acc = (self.acc << 1) | ((value >> i) & 1);
            self.n += 1;
            if self.n == 8 {
                let b = self.acc as u8;
                self.out.push(b);
                if b == 0xFF {
                    self.out.push(0);
                }
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    /// Pad the last byte with ones.
    fn finish(mut self) {
        while self.n != 0 {
            self.put(1, 1);
        }
    }
}

/// DQT, SOF0, DHT, SOS and the coded blocks of a `w`×`h` picture (multiples of 8), each
/// 8×8 block the colour `pixel` gives at its centre.
fn encode(out: &mut Vec<u8>, w: u16, h: u16, pixel: impl Fn(u32, u32) -> [u8; 3]) {
    // Quantisation table 0, all ones: a flat block's DC is 8 × (value − 128).
    let mut dqt = vec![0u8];
    dqt.extend_from_slice(&[1; 64]);
    jpeg_segment(out, 0xDB, &dqt);
    let [wh, wl] = w.to_be_bytes();
    let [hh, hl] = h.to_be_bytes();
    // 8-bit; Y, Cb, Cr (ids 1-3), 1×1 sampling each, table 0.
    jpeg_segment(
        out,
        0xC0,
        &[8, hh, hl, wh, wl, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0],
    );
    // DC table 0: the twelve size categories 0-11, each a 4-bit code (its own number).
    let mut dc = vec![0x00];
    dc.extend_from_slice(&[0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    dc.extend(0u8..12);
    jpeg_segment(out, 0xC4, &dc);
    // AC table 0: only end-of-block, the 1-bit code "0".
    let mut ac = vec![0x10, 1];
    ac.extend_from_slice(&[0; 15]);
    ac.push(0);
    jpeg_segment(out, 0xC4, &ac);
    jpeg_segment(out, 0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);
    let mut bits = Bits { out, acc: 0, n: 0 };
    let mut pred = [0i32; 3];
    for by in 0..u32::from(h / 8) {
        for bx in 0..u32::from(w / 8) {
            let [r, g, b] = pixel(bx * 8 + 4, by * 8 + 4).map(f32::from);
            let ycc = [
                0.299 * r + 0.587 * g + 0.114 * b,
                128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b,
                128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b,
            ];
            for (c, v) in ycc.into_iter().enumerate() {
                let dc = 8 * (v.round().clamp(0.0, 255.0) as i32 - 128);
                let diff = dc - pred[c];
                pred[c] = dc;
                let size = 32 - diff.unsigned_abs().leading_zeros();
                bits.put(size, 4);
                // Negative differences are sent as their ones' complement in `size` bits.
                let v = if diff < 0 { diff - 1 } else { diff };
                bits.put(v as u32 & ((1u32 << size) - 1), size);
                bits.put(0, 1); // end of block
            }
        }
    }
    bits.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_is_a_jpeg_with_its_metadata() {
        let t = CaptureTime::from_unix(1_690_000_000, Some(120));
        let id = super::super::content_id(3);
        let b = jpeg_picture(&t, Some(&id), 1000, 3);
        let info = crate::inspect(b"IMG_0001.JPG", &b);
        assert_eq!(info.capture, Some(t));
        assert_eq!(info.content_id.as_deref(), Some(id.as_str()));
        // SOF0: 8-bit, 240 high, 320 wide, three components.
        let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        assert_eq!(&b[sof + 4..sof + 10], &[8, 0, 240, 1, 64, 3]);
        assert!(b.ends_with(&[0xFF, 0xD9]));
        assert_ne!(jpeg_picture(&t, None, 0, 1), jpeg_picture(&t, None, 0, 2));
    }
}
