//! Small, real, parseable media files built in memory, deterministic from a seed: for demos
//! (`snapvault demo`) and end-to-end tests.
//!
//! Each file is structurally valid for its format and carries the metadata [`inspect`]
//! reads, followed by `payload_len` bytes of incompressible pseudo-random data (so that
//! deduplication and compression behave as with real photos). The JPEG decodes (an 8×8 grey
//! image; [`jpeg_picture`] a generated landscape), the PNG and TIFF decode (noise); the HEIC
//! and MOV/MP4 are well-formed containers whose coded image/video data is noise (no HEVC
//! encoder is in the build, so a sample HEIC cannot hold a real picture: libraries a person
//! looks at use JPEG stills, [`Stills::Pictures`]).
//!
//! [`inspect`]: crate::inspect

mod aae;
mod bmff;
mod exif;
mod jpeg;
mod library;
mod picture;
mod png;

pub use aae::*;
pub use bmff::*;
pub use exif::*;
pub use jpeg::*;
pub use library::*;
pub use picture::jpeg_picture;
pub use png::*;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::CaptureTime;
use crate::bmff::QT_EPOCH_OFFSET;

/// SplitMix64: tiny, fast, deterministic.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5EED_5A4F_0BAD_C0DE)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// `len` pseudo-random bytes from `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    Rng::new(seed).bytes(len)
}

/// A UUID-shaped identifier (uppercase, as Apple writes content identifiers), from `seed`.
pub fn content_id(seed: u64) -> String {
    let mut r = Rng::new(seed ^ 0x000C_017E_771D);
    let h = format!("{:016X}{:016X}", r.next(), r.next());
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
