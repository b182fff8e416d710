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

mod picture;

pub use picture::jpeg_picture;

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

// ------------------------------------------------------------------ TIFF / EXIF

const ASCII: u16 = 2;
const SHORT: u16 = 3;
const LONG: u16 = 4;
const UNDEFINED: u16 = 7;
const SLONG: u16 = 9;

struct Ent {
    tag: u16,
    typ: u16,
    count: u32,
    value: Vec<u8>,
}

struct Tw {
    big: bool,
}

impl Tw {
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn ascii(&self, tag: u16, s: &str) -> Ent {
        let mut value = s.as_bytes().to_vec();
        value.push(0);
        Ent {
            tag,
            typ: ASCII,
            count: value.len() as u32,
            value,
        }
    }

    fn short(&self, tag: u16, v: u16) -> Ent {
        Ent {
            tag,
            typ: SHORT,
            count: 1,
            value: self.u16(v).to_vec(),
        }
    }

    fn long(&self, tag: u16, v: u32) -> Ent {
        Ent {
            tag,
            typ: LONG,
            count: 1,
            value: self.u32(v).to_vec(),
        }
    }

    fn undefined(&self, tag: u16, value: Vec<u8>) -> Ent {
        Ent {
            tag,
            typ: UNDEFINED,
            count: value.len() as u32,
            value,
        }
    }

    fn ifd_size(entries: &[Ent]) -> usize {
        2 + 12 * entries.len()
            + 4
            + entries
                .iter()
                .filter(|e| e.value.len() > 4)
                .map(|e| e.value.len().next_multiple_of(2))
                .sum::<usize>()
    }

    /// Write an IFD at `out.len()` (offsets count from the start of `out`): the directory
    /// sorted by tag, then the out-of-line values in the order the entries were given.
    fn write_ifd(&self, out: &mut Vec<u8>, entries: &[Ent]) {
        let mut value_off = out.len() + 2 + 12 * entries.len() + 4;
        let mut offsets = Vec::with_capacity(entries.len());
        for e in entries {
            offsets.push(value_off);
            if e.value.len() > 4 {
                value_off += e.value.len().next_multiple_of(2);
            }
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| entries[i].tag);
        out.extend_from_slice(&self.u16(entries.len() as u16));
        for i in order {
            let e = &entries[i];
            out.extend_from_slice(&self.u16(e.tag));
            out.extend_from_slice(&self.u16(e.typ));
            out.extend_from_slice(&self.u32(e.count));
            if e.value.len() <= 4 {
                let mut field = [0u8; 4];
                field[..e.value.len()].copy_from_slice(&e.value);
                out.extend_from_slice(&field);
            } else {
                out.extend_from_slice(&self.u32(offsets[i] as u32));
            }
        }
        out.extend_from_slice(&[0; 4]);
        for e in entries.iter().filter(|e| e.value.len() > 4) {
            out.extend_from_slice(&e.value);
            if e.value.len() % 2 == 1 {
                out.push(0);
            }
        }
    }

    /// A TIFF structure: IFD0, then the Exif IFD (pointer added when `exif` is not empty),
    /// then `strip` (StripOffsets, tag 0x0111, in IFD0 is pointed at it).
    fn build(&self, mut ifd0: Vec<Ent>, exif: Vec<Ent>, strip: &[u8]) -> Vec<u8> {
        if !exif.is_empty() {
            ifd0.push(self.long(0x8769, 0));
        }
        let exif_off = 8 + Self::ifd_size(&ifd0);
        let strip_off = exif_off
            + if exif.is_empty() {
                0
            } else {
                Self::ifd_size(&exif)
            };
        for e in &mut ifd0 {
            match e.tag {
                0x8769 => e.value = self.u32(exif_off as u32).to_vec(),
                0x0111 => e.value = self.u32(strip_off as u32).to_vec(),
                _ => {}
            }
        }
        let mut out = Vec::with_capacity(strip_off + strip.len());
        out.extend_from_slice(if self.big { b"MM\0*" } else { b"II*\0" });
        out.extend_from_slice(&self.u32(8));
        self.write_ifd(&mut out, &ifd0);
        if !exif.is_empty() {
            self.write_ifd(&mut out, &exif);
        }
        out.extend_from_slice(strip);
        out
    }
}

fn exif_date(t: &CaptureTime) -> String {
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

fn offset_string(t: &CaptureTime, colon: bool) -> Option<String> {
    let o = t.offset_minutes?;
    let sign = if o < 0 { '-' } else { '+' };
    let a = o.unsigned_abs();
    Some(if colon {
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    } else {
        format!("{sign}{:02}{:02}", a / 60, a % 60)
    })
}

/// Apple's MakerNote ("Apple iOS" header, big-endian IFD at 14, offsets from its start)
/// holding the Live Photo ContentIdentifier (tag 0x0011).
fn apple_maker_note(content_id: &str) -> Vec<u8> {
    let mut id = content_id.as_bytes().to_vec();
    id.push(0);
    let mut m = b"Apple iOS\0\0\x01MM".to_vec();
    m.extend_from_slice(&2u16.to_be_bytes());
    // 0x0001 MakerNoteVersion (SLONG 14), 0x0011 ContentIdentifier (ASCII, after the IFD).
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&SLONG.to_be_bytes());
    m.extend_from_slice(&1u32.to_be_bytes());
    m.extend_from_slice(&14u32.to_be_bytes());
    m.extend_from_slice(&0x0011u16.to_be_bytes());
    m.extend_from_slice(&ASCII.to_be_bytes());
    m.extend_from_slice(&(id.len() as u32).to_be_bytes());
    if id.len() <= 4 {
        let mut field = [0u8; 4];
        field[..id.len()].copy_from_slice(&id);
        m.extend_from_slice(&field);
        m.extend_from_slice(&0u32.to_be_bytes());
    } else {
        m.extend_from_slice(&(14u32 + 2 + 24 + 4).to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        m.extend_from_slice(&id);
    }
    m
}

fn camera_ifd0(w: &Tw) -> Vec<Ent> {
    vec![
        w.ascii(0x010F, "Apple"),
        w.ascii(0x0110, "iPhone 15 Pro"),
        w.ascii(0x0131, "17.2"),
        w.short(0x0112, 1),
    ]
}

/// The Exif IFD entries, values laid out offset first, date next, MakerNote last, so that a
/// file cut anywhere holds either the date with its offset or no date.
fn exif_ifd(w: &Tw, capture: &CaptureTime, content_id: Option<&str>) -> Vec<Ent> {
    let mut e = vec![w.undefined(0x9000, b"0232".to_vec())];
    if let Some(o) = offset_string(capture, true) {
        e.push(w.ascii(0x9011, &o));
        e.push(w.ascii(0x9012, &o));
    }
    let date = exif_date(capture);
    e.push(w.ascii(0x9003, &date));
    e.push(w.ascii(0x9004, &date));
    if let Some(id) = content_id {
        e.push(w.undefined(0x927C, apple_maker_note(id)));
    }
    e
}

/// An EXIF TIFF structure (big-endian, as Apple writes it) with Make/Model in IFD0 and
/// DateTimeOriginal, DateTimeDigitized, their offsets (when `capture` has one) and, given a
/// content id, an Apple MakerNote in the Exif IFD. This is what follows `Exif\0\0` in a JPEG.
pub fn exif_block(capture: &CaptureTime, content_id: Option<&str>) -> Vec<u8> {
    exif_block_with(true, capture, content_id)
}

pub(crate) fn exif_block_with(
    big: bool,
    capture: &CaptureTime,
    content_id: Option<&str>,
) -> Vec<u8> {
    let w = Tw { big };
    w.build(camera_ifd0(&w), exif_ifd(&w, capture, content_id), &[])
}

/// A little-endian TIFF with IFD0 entries only (DateTime 0x0132 and, in an Exif IFD,
/// OffsetTime 0x9010) — the fallback path of EXIF dates.
#[cfg(test)]
pub(crate) fn exif_block_modified_only(capture: &CaptureTime) -> Vec<u8> {
    let w = Tw { big: false };
    let mut ifd0 = camera_ifd0(&w);
    ifd0.push(w.ascii(0x0132, &exif_date(capture)));
    let exif = offset_string(capture, true)
        .map(|o| vec![w.ascii(0x9010, &o)])
        .unwrap_or_default();
    w.build(ifd0, exif, &[])
}

/// A valid uncompressed 8-bit greyscale TIFF (256 pixels wide, noise) with EXIF dates, as a
/// stand-in for a DNG or TIFF scan.
pub fn tiff(capture: &CaptureTime, payload_len: usize, seed: u64) -> Vec<u8> {
    let w = Tw { big: false };
    let width = 256u32;
    let height = (payload_len.div_ceil(256).max(1)) as u32;
    let strip = noise((width * height) as usize, seed);
    let mut ifd0 = vec![
        w.long(0x00FE, 0),
        w.long(0x0100, width),
        w.long(0x0101, height),
        w.short(0x0102, 8),
        w.short(0x0103, 1),
        w.short(0x0106, 1),
        w.long(0x0111, 0),
        w.short(0x0115, 1),
        w.long(0x0116, height),
        w.long(0x0117, width * height),
    ];
    ifd0.extend(camera_ifd0(&w));
    w.build(ifd0, exif_ifd(&w, capture, None), &strip)
}

// ------------------------------------------------------------------ JPEG

fn jpeg_segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
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
fn jpeg_head(
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

// ------------------------------------------------------------------ ISO-BMFF

fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

fn full_bx(typ: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&flags.to_be_bytes()[1..]);
    b.extend_from_slice(body);
    bx(typ, &b)
}

fn ftyp(major: &[u8; 4], minor: u32, compatible: &[&[u8; 4]]) -> Vec<u8> {
    let mut b = major.to_vec();
    b.extend_from_slice(&minor.to_be_bytes());
    for c in compatible {
        b.extend_from_slice(*c);
    }
    bx(b"ftyp", &b)
}

fn hdlr(handler: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(handler);
    b.extend_from_slice(&[0; 12]);
    b.push(0);
    full_bx(b"hdlr", 0, 0, &b)
}

fn infe(id: u16, item_type: &[u8; 4]) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(item_type);
    b.push(0);
    full_bx(b"infe", 2, 0, &b)
}

/// How the HEIC places its Exif item: in `mdat` via file offsets (iloc v0, as iPhones do), or
/// in `idat` (iloc v1, construction method 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExifPlace {
    Mdat,
    Idat,
}

/// A HEIC: `ftyp` (heic, mif1), `meta` (hdlr, pitm, iinf with an `hvc1` image item and an
/// `Exif` item, iref, iprp/ipco/ispe/ipma, iloc) and `mdat` holding the Exif item (4-byte
/// TIFF-header offset, `Exif\0\0`, TIFF) and `payload_len` bytes of noise as the image item.
pub fn heic(
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    heic_with(ExifPlace::Mdat, capture, content_id, payload_len, seed)
}

pub(crate) fn heic_with(
    place: ExifPlace,
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    let mut exif_item = 6u32.to_be_bytes().to_vec();
    exif_item.extend_from_slice(b"Exif\0\0");
    exif_item.extend_from_slice(&exif_block(capture, content_id));
    let image = noise(payload_len, seed);
    let ftyp = ftyp(b"heic", 0, &[b"mif1", b"heic"]);

    let meta = |mdat_body_off: u32| {
        let mut children = hdlr(b"pict");
        children.extend(full_bx(b"pitm", 0, 0, &1u16.to_be_bytes()));
        let mut iinf = 2u16.to_be_bytes().to_vec();
        iinf.extend(infe(1, b"hvc1"));
        iinf.extend(infe(2, b"Exif"));
        children.extend(full_bx(b"iinf", 0, 0, &iinf));
        let cdsc = bx(b"cdsc", &[0, 2, 0, 1, 0, 1]);
        children.extend(full_bx(b"iref", 0, 0, &cdsc));
        let mut ispe = 8u32.to_be_bytes().to_vec();
        ispe.extend_from_slice(&8u32.to_be_bytes());
        let ipco = bx(b"ipco", &full_bx(b"ispe", 0, 0, &ispe));
        let ipma = full_bx(b"ipma", 0, 0, &[0, 0, 0, 1, 0, 1, 1, 0x01]);
        let mut iprp = ipco;
        iprp.extend(ipma);
        children.extend(bx(b"iprp", &iprp));
        let (version, image_off, exif_off) = match place {
            ExifPlace::Mdat => (0u8, mdat_body_off + exif_item.len() as u32, mdat_body_off),
            ExifPlace::Idat => (1u8, mdat_body_off, 0),
        };
        // offset_size 4, length_size 4, base_offset_size 0, index_size 0.
        let mut iloc = vec![0x44, 0x00];
        iloc.extend_from_slice(&2u16.to_be_bytes());
        let mut item = |id: u16, method: u16, off: u32, len: usize| {
            iloc.extend_from_slice(&id.to_be_bytes());
            if version >= 1 {
                iloc.extend_from_slice(&method.to_be_bytes());
            }
            iloc.extend_from_slice(&0u16.to_be_bytes());
            iloc.extend_from_slice(&1u16.to_be_bytes());
            iloc.extend_from_slice(&off.to_be_bytes());
            iloc.extend_from_slice(&(len as u32).to_be_bytes());
        };
        item(1, 0, image_off, image.len());
        match place {
            ExifPlace::Mdat => item(2, 0, exif_off, exif_item.len()),
            ExifPlace::Idat => item(2, 1, 0, exif_item.len()),
        }
        children.extend(full_bx(b"iloc", version, 0, &iloc));
        if place == ExifPlace::Idat {
            children.extend(bx(b"idat", &exif_item));
        }
        full_bx(b"meta", 0, 0, &children)
    };
    // The meta box's size does not depend on the offsets it holds.
    let mdat_body_off = (ftyp.len() + meta(0).len() + 8) as u32;
    let mut mdat = Vec::with_capacity(exif_item.len() + image.len());
    if place == ExifPlace::Mdat {
        mdat.extend_from_slice(&exif_item);
    }
    mdat.extend_from_slice(&image);
    let mut out = ftyp;
    out.extend(meta(mdat_body_off));
    out.extend(bx(b"mdat", &mdat));
    out
}

fn mvhd(capture: &CaptureTime) -> Vec<u8> {
    let secs = capture.to_unix_seconds() + QT_EPOCH_OFFSET;
    let mut b = Vec::new();
    let version = match u32::try_from(secs) {
        Ok(s) => {
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&600u32.to_be_bytes());
            b.extend_from_slice(&1800u32.to_be_bytes());
            0
        }
        Err(_) => {
            let s = secs.max(0) as u64;
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&s.to_be_bytes());
            b.extend_from_slice(&600u32.to_be_bytes());
            b.extend_from_slice(&1800u64.to_be_bytes());
            1
        }
    };
    b.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    b.extend_from_slice(&0x0100u16.to_be_bytes());
    b.extend_from_slice(&[0; 10]);
    for m in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.extend_from_slice(&m.to_be_bytes());
    }
    b.extend_from_slice(&[0; 24]);
    b.extend_from_slice(&2u32.to_be_bytes());
    full_bx(b"mvhd", version, 0, &b)
}

/// QuickTime `meta` (plain box): hdlr `mdta`, `keys`, `ilst` with UTF-8 `data` values.
fn qt_meta(items: &[(&str, String)]) -> Vec<u8> {
    let mut keys = (items.len() as u32).to_be_bytes().to_vec();
    let mut ilst = Vec::new();
    for (i, (k, v)) in items.iter().enumerate() {
        keys.extend_from_slice(&((k.len() + 8) as u32).to_be_bytes());
        keys.extend_from_slice(b"mdta");
        keys.extend_from_slice(k.as_bytes());
        let mut data = 1u32.to_be_bytes().to_vec();
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(v.as_bytes());
        ilst.extend(bx(&((i + 1) as u32).to_be_bytes(), &bx(b"data", &data)));
    }
    let mut body = hdlr(b"mdta");
    body.extend(full_bx(b"keys", 0, 0, &keys));
    body.extend(bx(b"ilst", &ilst));
    bx(b"meta", &body)
}

/// An iPhone-style QuickTime movie: `ftyp` (qt), `wide`, `mdat` (`payload_len` bytes of
/// noise), then `moov` at the end with `mvhd` (UTC creation time) and `meta` keys/ilst:
/// make, model, `com.apple.quicktime.creationdate` (`2023-07-14T18:03:11+0200`) and, given
/// one, `com.apple.quicktime.content.identifier`.
pub fn mov(
    capture: &CaptureTime,
    content_id: Option<&str>,
    payload_len: usize,
    seed: u64,
) -> Vec<u8> {
    let mut out = ftyp(b"qt  ", 0x2005_0300, &[b"qt  "]);
    out.extend(bx(b"wide", &[]));
    out.extend(bx(b"mdat", &noise(payload_len, seed)));
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
        capture.year,
        capture.month,
        capture.day,
        capture.hour,
        capture.minute,
        capture.second,
        offset_string(capture, false).unwrap_or_default()
    );
    let mut items = vec![
        ("com.apple.quicktime.make", "Apple".to_owned()),
        ("com.apple.quicktime.model", "iPhone 15 Pro".to_owned()),
        ("com.apple.quicktime.creationdate", date),
    ];
    if let Some(id) = content_id {
        items.push(("com.apple.quicktime.content.identifier", id.to_owned()));
    }
    let mut moov = mvhd(capture);
    moov.extend(qt_meta(&items));
    out.extend(bx(b"moov", &moov));
    out
}

/// A "fast start" MP4 as Android phones and cameras write: `ftyp` (mp42, isom), `moov` with
/// only `mvhd` (creation time in UTC: the offset of `capture` is not stored), then `mdat`.
pub fn mp4(capture: &CaptureTime, payload_len: usize, seed: u64) -> Vec<u8> {
    let mut out = ftyp(b"mp42", 0, &[b"isom", b"mp42"]);
    out.extend(bx(b"moov", &mvhd(capture)));
    out.extend(bx(b"mdat", &noise(payload_len, seed)));
    out
}

// ------------------------------------------------------------------ PNG

fn crc32(parts: &[&[u8]]) -> u32 {
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
fn zlib_stored(data: &[u8]) -> Vec<u8> {
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

// ------------------------------------------------------------------ AAE sidecar

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// An `.AAE` edit sidecar: Apple's XML property list with adjustment data (noise) and the
/// time of the edit (`edited`, written in UTC as Photos does).
pub fn aae(edited: &CaptureTime, seed: u64) -> Vec<u8> {
    let utc = edited.to_utc();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>adjustmentBaseVersion</key>
	<integer>0</integer>
	<key>adjustmentData</key>
	<data>
	{}
	</data>
	<key>adjustmentEditorBundleID</key>
	<string>com.apple.mobileslideshow</string>
	<key>adjustmentFormatIdentifier</key>
	<string>com.apple.photo</string>
	<key>adjustmentFormatVersion</key>
	<string>1.5</string>
	<key>adjustmentTimestamp</key>
	<date>{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z</date>
</dict>
</plist>
"#,
        base64(&noise(240, seed)),
        utc.year,
        utc.month,
        utc.day,
        utc.hour,
        utc.minute,
        utc.second
    )
    .into_bytes()
}

// ------------------------------------------------------------------ library

/// One item of a sample library, before it is written.
struct Planned {
    rel: String,
    bytes: Vec<u8>,
    capture: CaptureTime,
}

/// Capture time of photo `i` (1-based) of `n`: spread over about sixteen months from March
/// 2023, in daytime, mostly in Central European time (CET/CEST by season) with trips to New
/// York and Tokyo.
fn library_capture(i: usize, n: usize, rng: &mut Rng) -> CaptureTime {
    let start = CaptureTime {
        year: 2023,
        month: 3,
        day: 4,
        hour: 0,
        minute: 0,
        second: 0,
        offset_minutes: None,
    }
    .to_unix_seconds();
    let span_days = 480i64;
    let day = (i as i64 - 1) * span_days / (n.max(2) as i64 - 1);
    let tod = 8 * 3600 + rng.below(13 * 3600) as i64;
    let wall = CaptureTime::from_unix(start + day * 86_400 + tod, None);
    let offset = if i % 11 == 5 {
        -240
    } else if i % 13 == 8 {
        540
    } else if (4..=10).contains(&wall.month) {
        120
    } else {
        60
    };
    wall.with_offset(Some(offset))
}

/// A sample still: (capture, content id, payload length, seed) → the file.
pub type Maker = fn(&CaptureTime, Option<&str>, usize, u64) -> Vec<u8>;

/// What the camera stills of a sample [`library`] are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stills {
    /// HEIC, as an iPhone's (with a grey 8×8 JPEG every tenth): their coded image is noise,
    /// so no decoder shows them. Tests.
    #[default]
    Heic,
    /// JPEG pictures that decode ([`jpeg_picture`]) where the other has HEIC and JPEG: for a
    /// library a person looks at (`snapvault demo`, then `browse`).
    Pictures,
}

/// Write a small iPhone-like library under `dir` and return the paths written, sorted
/// ([`library_with`] HEIC stills).
pub fn library(dir: &Path, photos: usize, seed: u64) -> io::Result<Vec<PathBuf>> {
    library_with(dir, photos, seed, Stills::Heic)
}

/// Write a small iPhone-like library under `dir` and return the paths written, sorted.
///
/// `DCIM/100APPLE/IMG_0001.HEIC` … with, for photo `i` (1-based):
/// - `i % 10 == 4`: a JPEG (`IMG_000i.JPG`); `i % 10 == 7`: a PNG screenshot;
/// - otherwise a HEIC, which for odd `i` is a Live Photo: `IMG_000i.MOV` beside it with the
///   same content id and capture time;
/// - `i % 10 == 3`: an edit sidecar `IMG_000i.AAE`; `i % 10 == 9`: an edited rendition
///   `IMG_E000i.HEIC` plus `IMG_O000i.AAE` (newer iOS naming);
/// - every 1000 photos start a new folder (`101APPLE`, …).
///
/// Capture dates spread over 2023–2024 with UTC offsets; sizes are tens to a few hundred KB;
/// every file's mtime is set to its capture instant. Deterministic from `seed` (apart from
/// the directory and file times). With [`Stills::Pictures`] every HEIC above is a JPEG
/// picture instead (`IMG_000i.JPG`, `IMG_E000i.JPG`), and so is the tenth JPEG.
pub fn library_with(
    dir: &Path,
    photos: usize,
    seed: u64,
    stills: Stills,
) -> io::Result<Vec<PathBuf>> {
    let (ext, still): (&str, Maker) = match stills {
        Stills::Heic => ("HEIC", heic),
        Stills::Pictures => ("JPG", jpeg_picture),
    };
    let jpg: Maker = match stills {
        Stills::Heic => jpeg,
        Stills::Pictures => jpeg_picture,
    };
    let mut rng = Rng::new(seed);
    let mut planned = Vec::new();
    for i in 1..=photos {
        let capture = library_capture(i, photos, &mut rng);
        let folder = format!("DCIM/{}APPLE", 100 + (i - 1) / 1000);
        let num = i % 10_000;
        let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
        let kb = |rng: &mut Rng, lo: u64, hi: u64| (lo + rng.below(hi - lo)) as usize * 1024;
        let mut add = |name: String, bytes: Vec<u8>| {
            planned.push(Planned {
                rel: format!("{folder}/{name}"),
                bytes,
                capture,
            });
        };
        match i % 10 {
            4 => add(
                format!("IMG_{num:04}.JPG"),
                jpg(&capture, None, kb(&mut rng, 50, 200), s),
            ),
            7 => add(
                format!("IMG_{num:04}.PNG"),
                png(&capture, kb(&mut rng, 20, 60), s),
            ),
            _ => {
                let live = i % 2 == 1;
                let id = live.then(|| content_id(s));
                add(
                    format!("IMG_{num:04}.{ext}"),
                    still(&capture, id.as_deref(), kb(&mut rng, 40, 160), s),
                );
                if let Some(id) = &id {
                    add(
                        format!("IMG_{num:04}.MOV"),
                        mov(&capture, Some(id), kb(&mut rng, 80, 300), s ^ 1),
                    );
                }
            }
        }
        let edited =
            CaptureTime::from_unix(capture.to_unix_seconds() + 3_600, capture.offset_minutes);
        match i % 10 {
            3 => add(format!("IMG_{num:04}.AAE"), aae(&edited, s ^ 2)),
            9 => {
                add(
                    format!("IMG_E{num:04}.{ext}"),
                    still(&capture, None, kb(&mut rng, 40, 160), s ^ 3),
                );
                add(format!("IMG_O{num:04}.AAE"), aae(&edited, s ^ 2));
            }
            _ => {}
        }
    }
    let mut paths = Vec::with_capacity(planned.len());
    for p in planned {
        let path = dir.join(&p.rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, &p.bytes)?;
        let secs = p.capture.to_unix_seconds();
        let when = if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(when)?;
        paths.push(path);
    }
    paths.sort();
    Ok(paths)
}
