//! TIFF / EXIF reading: the few tags snapvault needs, by a fixed-depth IFD walk.
//!
//! Only IFD0, the Exif IFD it points to, SubIFDs one level down and Apple's MakerNote IFD are
//! read; no chain is followed, so there are no loops to guard against. An IFD's entries are
//! read while they lie inside the data; a value is used only when all of its bytes are there.

use crate::bytes::{Endian, slice};
use crate::time::{CaptureTime, parse_datetime, parse_offset, trim};

const TAG_NEW_SUBFILE_TYPE: u16 = 0x00FE;
const TAG_COMPRESSION: u16 = 0x0103;
const TAG_DATE_TIME: u16 = 0x0132;
const TAG_SUB_IFDS: u16 = 0x014A;
const TAG_EXIF_IFD: u16 = 0x8769;
const TAG_DATE_TIME_ORIGINAL: u16 = 0x9003;
const TAG_DATE_TIME_DIGITIZED: u16 = 0x9004;
const TAG_OFFSET_TIME: u16 = 0x9010;
const TAG_OFFSET_TIME_ORIGINAL: u16 = 0x9011;
const TAG_OFFSET_TIME_DIGITIZED: u16 = 0x9012;
const TAG_MAKER_NOTE: u16 = 0x927C;
/// Apple MakerNote: `ContentIdentifier` (the Live Photo pairing UUID).
const TAG_APPLE_CONTENT_ID: u16 = 0x0011;

/// Apple's MakerNote starts with this, then `00 01` and a byte order mark; its IFD follows at
/// offset 14 and its value offsets count from the start of the MakerNote.
const APPLE_MAKER_NOTE: &[u8] = b"Apple iOS\0";

/// SubIFDs looked at when judging a TIFF/DNG's main image.
const MAX_SUB_IFDS: usize = 8;

/// A TIFF structure: the data it lives in (offsets count from its first byte) and byte order.
pub(crate) struct Tiff<'a> {
    data: &'a [u8],
    endian: Endian,
    ifd0: usize,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    tag: u16,
    typ: u16,
    count: u32,
    /// Offset of the entry's 4-byte value/offset field.
    field: usize,
}

impl Entry {
    pub(crate) fn tag(&self) -> u16 {
        self.tag
    }
}

impl<'a> Tiff<'a> {
    /// A TIFF header at the start of `data`: `II*\0`, `MM\0*`, and the same layout under the
    /// magic numbers of Olympus ORF (`IIRO`, `IIRS`, `MMOR`) and Panasonic RW2 (`IIU\0`).
    pub(crate) fn parse(data: &'a [u8]) -> Option<Self> {
        let endian = match data.get(..4)? {
            b"II*\0" | b"IIRO" | b"IIRS" | b"IIU\0" => Endian::Little,
            b"MM\0*" | b"MMOR" => Endian::Big,
            _ => return None,
        };
        let ifd0 = endian.u32(data, 4)? as usize;
        Some(Tiff { data, endian, ifd0 })
    }

    pub(crate) fn ifd0(&self) -> usize {
        self.ifd0
    }

    pub(crate) fn endian(&self) -> Endian {
        self.endian
    }

    /// Entries of the IFD at `ifd`, while they lie inside the data.
    pub(crate) fn entries(&self, ifd: usize) -> impl Iterator<Item = Entry> + '_ {
        let count = self.endian.u16(self.data, ifd).map_or(0, usize::from);
        (0..count).map_while(move |i| {
            let off = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
            slice(self.data, off, 12)?;
            Some(Entry {
                tag: self.endian.u16(self.data, off)?,
                typ: self.endian.u16(self.data, off + 2)?,
                count: self.endian.u32(self.data, off + 4)?,
                field: off + 8,
            })
        })
    }

    /// All bytes of an entry's value, if they are all inside the data.
    pub(crate) fn value(&self, e: &Entry) -> Option<&'a [u8]> {
        let unit = match e.typ {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 => 8,
            _ => return None,
        };
        let size = usize::try_from(e.count).ok()?.checked_mul(unit)?;
        if size <= 4 {
            slice(self.data, e.field, size)
        } else {
            let off = self.endian.u32(self.data, e.field)? as usize;
            slice(self.data, off, size)
        }
    }

    /// The first value of a SHORT, LONG or IFD entry.
    pub(crate) fn uint(&self, e: &Entry) -> Option<u32> {
        if e.count == 0 {
            return None;
        }
        match e.typ {
            3 => self.endian.u16(self.data, e.field).map(u32::from),
            4 | 13 => self.endian.u32(self.data, e.field),
            _ => None,
        }
    }

    /// The `i`-th value of a LONG or IFD array.
    fn uint_at(&self, e: &Entry, i: usize) -> Option<u32> {
        if !matches!(e.typ, 4 | 13) {
            return None;
        }
        let v = self.value(e)?;
        self.endian.u32(v, i.checked_mul(4)?)
    }
}

/// An ASCII value as text: up to the first NUL, trimmed, printable ASCII only, 1–128 bytes.
pub(crate) fn ascii_text(v: &[u8]) -> Option<String> {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    let t = trim(&v[..end]);
    (!t.is_empty() && t.len() <= 128 && t.iter().all(|b| b.is_ascii_graphic() || *b == b' '))
        .then(|| String::from_utf8_lossy(t).into_owned())
}

/// What snapvault reads from an EXIF block.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ExifFacts {
    pub original: Option<CaptureTime>,
    pub original_offset: Option<i16>,
    pub digitized: Option<CaptureTime>,
    pub digitized_offset: Option<i16>,
    pub modified: Option<CaptureTime>,
    pub modified_offset: Option<i16>,
    pub content_id: Option<String>,
}

impl ExifFacts {
    /// DateTimeOriginal with OffsetTimeOriginal, else DateTimeDigitized with its offset, else
    /// DateTime (IFD0) with OffsetTime. Original and digitized describe the same moment, so
    /// each borrows the other's offset when its own is missing.
    pub(crate) fn capture(&self) -> Option<CaptureTime> {
        if let Some(t) = self.original {
            return Some(t.with_offset(self.original_offset.or(self.digitized_offset)));
        }
        if let Some(t) = self.digitized {
            return Some(t.with_offset(self.digitized_offset.or(self.original_offset)));
        }
        self.modified.map(|t| t.with_offset(self.modified_offset))
    }
}

/// Read capture dates, offsets and Apple's content identifier from a TIFF structure (an EXIF
/// block after its `Exif\0\0` prefix, or a whole TIFF/DNG file).
pub(crate) fn exif_facts(data: &[u8]) -> ExifFacts {
    let mut f = ExifFacts::default();
    let Some(t) = Tiff::parse(data) else {
        return f;
    };
    let mut exif_ifd = None;
    for e in t.entries(t.ifd0) {
        match e.tag {
            TAG_DATE_TIME => f.modified = t.value(&e).and_then(parse_datetime),
            TAG_EXIF_IFD => exif_ifd = t.uint(&e),
            _ => {}
        }
    }
    let Some(ifd) = exif_ifd.map(|o| o as usize).filter(|&o| o != t.ifd0) else {
        return f;
    };
    for e in t.entries(ifd) {
        let v = || t.value(&e);
        match e.tag {
            TAG_DATE_TIME_ORIGINAL => f.original = v().and_then(parse_datetime),
            TAG_DATE_TIME_DIGITIZED => f.digitized = v().and_then(parse_datetime),
            TAG_OFFSET_TIME => f.modified_offset = v().and_then(parse_offset),
            TAG_OFFSET_TIME_ORIGINAL => f.original_offset = v().and_then(parse_offset),
            TAG_OFFSET_TIME_DIGITIZED => f.digitized_offset = v().and_then(parse_offset),
            TAG_MAKER_NOTE => f.content_id = v().and_then(apple_content_id),
            _ => {}
        }
    }
    f
}

/// `ContentIdentifier` (tag 0x0011) of an Apple iOS MakerNote.
fn apple_content_id(mn: &[u8]) -> Option<String> {
    if !mn.starts_with(APPLE_MAKER_NOTE) {
        return None;
    }
    let endian = match mn.get(12..14)? {
        b"MM" => Endian::Big,
        b"II" => Endian::Little,
        _ => return None,
    };
    let t = Tiff {
        data: mn,
        endian,
        ifd0: 14,
    };
    let e = t.entries(t.ifd0).find(|e| e.tag == TAG_APPLE_CONTENT_ID)?;
    ascii_text(t.value(&e)?)
}

/// Compression of a TIFF/DNG's full-resolution image (NewSubfileType 0, in IFD0 or one of
/// its SubIFDs): 1 is uncompressed, 7 JPEG (lossless in DNG), 34892 lossy JPEG, ….
pub(crate) fn main_image_compression(data: &[u8]) -> Option<u32> {
    let t = Tiff::parse(data)?;
    let judge = |ifd: usize| {
        let mut subfile = 0;
        let mut compression = None;
        for e in t.entries(ifd) {
            match e.tag {
                TAG_NEW_SUBFILE_TYPE => subfile = t.uint(&e).unwrap_or(1),
                TAG_COMPRESSION => compression = t.uint(&e),
                _ => {}
            }
        }
        compression.filter(|_| subfile == 0)
    };
    if let Some(c) = judge(t.ifd0) {
        return Some(c);
    }
    let subs = t.entries(t.ifd0).find(|e| e.tag == TAG_SUB_IFDS)?;
    (0..(subs.count as usize).min(MAX_SUB_IFDS)).find_map(|i| {
        let ifd = if subs.count == 1 {
            t.uint(&subs)
        } else {
            t.uint_at(&subs, i)
        }?;
        judge(ifd as usize)
    })
}
