//! TIFF and EXIF blocks: the capture date, offset, camera and content identifier as phones write them.

use super::*;

pub(super) const ASCII: u16 = 2;
pub(super) const SHORT: u16 = 3;
pub(super) const LONG: u16 = 4;
pub(super) const UNDEFINED: u16 = 7;
pub(super) const SLONG: u16 = 9;

pub(super) struct Ent {
    tag: u16,
    typ: u16,
    count: u32,
    value: Vec<u8>,
}

pub(super) struct Tw {
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

pub(super) fn exif_date(t: &CaptureTime) -> String {
    format!(
        "{:04}:{:02}:{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

pub(super) fn offset_string(t: &CaptureTime, colon: bool) -> Option<String> {
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
pub(super) fn apple_maker_note(content_id: &str) -> Vec<u8> {
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

pub(super) fn camera_ifd0(w: &Tw) -> Vec<Ent> {
    vec![
        w.ascii(0x010F, "Apple"),
        w.ascii(0x0110, "iPhone 15 Pro"),
        w.ascii(0x0131, "17.2"),
        w.short(0x0112, 1),
    ]
}

/// The Exif IFD entries, values laid out offset first, date next, MakerNote last, so that a
/// file cut anywhere holds either the date with its offset or no date.
pub(super) fn exif_ifd(w: &Tw, capture: &CaptureTime, content_id: Option<&str>) -> Vec<Ent> {
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
