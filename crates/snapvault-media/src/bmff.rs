//! ISO base media file format (ISO/IEC 14496-12): HEIF/HEIC/AVIF stills and QuickTime/MP4
//! videos.
//!
//! The box walker never reads past its slice: a box whose declared size runs past the end is
//! returned once with the bytes that are there (`complete == false`) and ends the walk. A
//! container may be walked while incomplete; a leaf box (`mvhd`, `keys`, `iloc`, `data`, …) is
//! used only when complete, so a cut-off file yields nothing rather than half a value.

use std::borrow::Cow;

use crate::bytes::{array, be_u16, be_u32, be_u64, be_uint, slice};
use crate::jpeg::EXIF_PREFIX;
use crate::tiff::{ExifFacts, ascii_text, exif_facts};
use crate::time::{CaptureTime, parse_datetime};

/// Boxes walked in one container before giving up.
const MAX_BOXES: usize = 10_000;
/// Exif items assembled from several extents are copied; this caps the copy.
const MAX_EXIF_ITEM: usize = 1 << 20;
/// Exif item ids remembered from `iinf`, extents per item, keys in a `keys` box.
const MAX_EXIF_ITEMS: usize = 16;
const MAX_EXTENTS: usize = 64;
const MAX_KEYS: usize = 1024;
/// Seconds from 1904-01-01 (QuickTime's epoch) to 1970-01-01.
pub(crate) const QT_EPOCH_OFFSET: i64 = 2_082_844_800;

pub(crate) const KEY_CREATION_DATE: &[u8] = b"com.apple.quicktime.creationdate";
pub(crate) const KEY_CONTENT_ID: &[u8] = b"com.apple.quicktime.content.identifier";

/// One box: its type, its body (after the header) and whether all of it is there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bx<'a> {
    pub typ: [u8; 4],
    pub body: &'a [u8],
    /// Offset of the box (its header) in the slice walked.
    pub start: usize,
    /// Declared size of the whole box (header included).
    pub size: u64,
    pub complete: bool,
}

/// The boxes of a slice, in order.
pub(crate) fn boxes(d: &[u8]) -> Boxes<'_> {
    Boxes {
        d,
        pos: 0,
        n: 0,
        done: false,
    }
}

pub(crate) struct Boxes<'a> {
    d: &'a [u8],
    pos: usize,
    n: usize,
    done: bool,
}

impl<'a> Boxes<'a> {
    /// Offset in the walked slice where the walk stopped: the end of the last complete box.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
}

/// A box header at `pos`: (type, header length, declared size; 0 = "to the end").
pub(crate) fn header(d: &[u8], pos: usize) -> Option<([u8; 4], usize, u64)> {
    let size = be_u32(d, pos)?;
    let typ = array(d, pos + 4)?;
    match size {
        1 => Some((typ, 16, be_u64(d, pos + 8)?)),
        s => Some((typ, 8, u64::from(s))),
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Bx<'a>;

    fn next(&mut self) -> Option<Bx<'a>> {
        if self.done || self.n >= MAX_BOXES {
            return None;
        }
        self.n += 1;
        let Some((typ, hdr, size)) = header(self.d, self.pos) else {
            self.done = true;
            return None;
        };
        let avail = (self.d.len() - self.pos) as u64;
        let size = if size == 0 { avail } else { size };
        let body_off = self.pos + hdr;
        if size < hdr as u64 || body_off > self.d.len() {
            self.done = true;
            return None;
        }
        if size > avail {
            self.done = true;
            return Some(Bx {
                typ,
                body: &self.d[body_off..],
                start: self.pos,
                size,
                complete: false,
            });
        }
        let end = self.pos + size as usize;
        self.pos = end;
        Some(Bx {
            typ,
            body: &self.d[body_off..end],
            start: end - size as usize,
            size,
            complete: true,
        })
    }
}

/// The body of a complete full box after its version/flags, with the version.
fn full<'a>(b: &Bx<'a>) -> Option<(u8, &'a [u8])> {
    if !b.complete {
        return None;
    }
    Some((*b.body.first()?, b.body.get(4..)?))
}

// ---------------------------------------------------------------- HEIF / HEIC / AVIF

/// EXIF facts of a HEIF file: the `Exif` item located through `meta`/`iinf`/`iloc`.
pub(crate) fn heif_facts(d: &[u8]) -> ExifFacts {
    heif_exif(d)
        .map(|item| exif_facts(exif_item_tiff(&item).unwrap_or(&[])))
        .unwrap_or_default()
}

/// The data of the first `Exif` item.
pub(crate) fn heif_exif(d: &[u8]) -> Option<Cow<'_, [u8]>> {
    let meta = boxes(d).find(|b| &b.typ == b"meta")?;
    // `meta` is a full box; its children may be walked even if it is cut short.
    let children = meta.body.get(4..)?;
    let mut ids = Vec::new();
    let mut iloc = None;
    let mut idat = None;
    for b in boxes(children) {
        match &b.typ {
            b"iinf" => ids = exif_item_ids(&b).unwrap_or_default(),
            b"iloc" if b.complete => iloc = Some(b),
            b"idat" if b.complete => idat = Some(b.body),
            _ => {}
        }
    }
    if ids.is_empty() {
        return None;
    }
    let loc = iloc_find(&iloc?, &ids)?;
    let src = match loc.method {
        0 => d,
        1 => idat?,
        _ => return None,
    };
    let extent = |&(off, len): &(u64, u64)| -> Option<&[u8]> {
        let start = usize::try_from(loc.base.checked_add(off)?).ok()?;
        let len = if len == 0 {
            src.len().checked_sub(start)?
        } else {
            usize::try_from(len).ok()?
        };
        slice(src, start, len)
    };
    match loc.extents.as_slice() {
        [one] => extent(one).map(Cow::Borrowed),
        many => {
            let mut out = Vec::new();
            for e in many {
                let part = extent(e)?;
                if out.len() + part.len() > MAX_EXIF_ITEM {
                    return None;
                }
                out.extend_from_slice(part);
            }
            Some(Cow::Owned(out))
        }
    }
}

/// The TIFF structure of an Exif item: a 4-byte offset, then (Apple) `Exif\0\0`, then TIFF.
pub(crate) fn exif_item_tiff(item: &[u8]) -> Option<&[u8]> {
    let skip = be_u32(item, 0)? as usize;
    let rest = item.get(4..)?.get(skip..)?;
    Some(rest.strip_prefix(EXIF_PREFIX).unwrap_or(rest))
}

/// Ids of `Exif` items listed in a complete `iinf` box.
fn exif_item_ids(iinf: &Bx<'_>) -> Option<Vec<u32>> {
    let (v, body) = full(iinf)?;
    let entries = body.get(if v == 0 { 2 } else { 4 }..)?;
    let mut ids = Vec::new();
    for infe in boxes(entries).filter(|b| &b.typ == b"infe") {
        let Some((v, b)) = full(&infe) else { continue };
        let (id, p) = match v {
            2 => (be_u16(b, 0).map(u32::from), 2),
            3 => (be_u32(b, 0), 4),
            _ => continue,
        };
        // item_protection_index (2 bytes), then item_type.
        if let Some(id) = id
            && slice(b, p + 2, 4) == Some(b"Exif")
            && ids.len() < MAX_EXIF_ITEMS
        {
            ids.push(id);
        }
    }
    Some(ids)
}

struct ItemLoc {
    method: u8,
    base: u64,
    extents: Vec<(u64, u64)>,
}

/// Location of the first of `ids` in an `iloc` box (versions 0–2), in this file
/// (`data_reference_index` 0) only.
fn iloc_find(iloc: &Bx<'_>, ids: &[u32]) -> Option<ItemLoc> {
    let (v, b) = full(iloc)?;
    if v > 2 {
        return None;
    }
    let sizes = *b.first()?;
    let sizes2 = *b.get(1)?;
    let (off_size, len_size) = (usize::from(sizes >> 4), usize::from(sizes & 15));
    let base_size = usize::from(sizes2 >> 4);
    let idx_size = if v >= 1 { usize::from(sizes2 & 15) } else { 0 };
    if [off_size, len_size, base_size, idx_size]
        .iter()
        .any(|s| !matches!(s, 0 | 4 | 8))
    {
        return None;
    }
    let mut p = 2;
    let count = if v < 2 {
        p += 2;
        u32::from(be_u16(b, 2)?)
    } else {
        p += 4;
        be_u32(b, 2)?
    };
    // Every item takes at least 6 bytes, so the loop ends when the box does.
    for _ in 0..count {
        let id = if v < 2 {
            p += 2;
            u32::from(be_u16(b, p - 2)?)
        } else {
            p += 4;
            be_u32(b, p - 4)?
        };
        let method = if v >= 1 {
            p += 2;
            (be_u16(b, p - 2)? & 15) as u8
        } else {
            0
        };
        let dref = be_u16(b, p)?;
        p += 2;
        let base = be_uint(b, p, base_size)?;
        p += base_size;
        let n = usize::from(be_u16(b, p)?);
        p += 2;
        let per = idx_size + off_size + len_size;
        if !ids.contains(&id) {
            p = p.checked_add(n.checked_mul(per)?)?;
            continue;
        }
        if dref != 0 || n == 0 || n > MAX_EXTENTS {
            return None;
        }
        let mut extents = Vec::with_capacity(n);
        for _ in 0..n {
            p += idx_size;
            let off = be_uint(b, p, off_size)?;
            p += off_size;
            let len = be_uint(b, p, len_size)?;
            p += len_size;
            extents.push((off, len));
        }
        return Some(ItemLoc {
            method,
            base,
            extents,
        });
    }
    None
}

// ---------------------------------------------------------------- QuickTime / MP4

/// What snapvault reads from a QuickTime/MP4 `moov`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct QtFacts {
    /// `com.apple.quicktime.creationdate` (or iTunes-style `©day`): local time with offset.
    pub creation: Option<CaptureTime>,
    /// `mvhd` creation_time: a UTC instant, given with offset +00:00.
    pub mvhd: Option<CaptureTime>,
    pub content_id: Option<String>,
}

impl QtFacts {
    pub(crate) fn capture(&self) -> Option<CaptureTime> {
        self.creation.or(self.mvhd)
    }
}

/// Facts of the first `moov` box among the top-level boxes of `d` (a file prefix, or a
/// `moov` box read on its own).
pub(crate) fn qt_facts(d: &[u8]) -> QtFacts {
    let mut f = QtFacts::default();
    let Some(moov) = boxes(d).find(|b| &b.typ == b"moov") else {
        return f;
    };
    for b in boxes(moov.body) {
        match &b.typ {
            b"mvhd" => f.mvhd = mvhd_time(&b),
            b"meta" => meta_items(b.body, &mut f),
            b"udta" => {
                for u in boxes(b.body).filter(|u| &u.typ == b"meta") {
                    meta_items(u.body, &mut f);
                }
            }
            _ => {}
        }
    }
    f
}

/// Where in the file to look for `moov` when `head` holds no complete one: the offset of the
/// `moov` box cut short by the end of `head`, or else of the first top-level box that starts
/// beyond the boxes `head` holds (typically the one after a long `mdat`).
pub(crate) fn first_unread_box(head: &[u8]) -> Option<u64> {
    let mut it = boxes(head);
    for b in it.by_ref() {
        if &b.typ == b"moov" {
            return (!b.complete).then_some(b.start as u64);
        }
        if !b.complete {
            return (b.start as u64).checked_add(b.size);
        }
    }
    let pos = it.pos();
    header(head, pos).is_none().then_some(pos as u64)
}

/// `mvhd` creation_time (seconds since 1904, UTC); 0 (unset) and pre-1970 values give `None`.
fn mvhd_time(b: &Bx<'_>) -> Option<CaptureTime> {
    let (v, body) = full(b)?;
    let secs = match v {
        0 => u64::from(be_u32(body, 0)?),
        1 => be_u64(body, 0)?,
        _ => return None,
    };
    let unix = i64::try_from(secs).ok()? - QT_EPOCH_OFFSET;
    (unix > 0).then(|| CaptureTime::from_unix(unix, Some(0)))
}

/// Read a `meta` box body: QuickTime's (plain box, `hdlr`/`keys`/`ilst`) or MP4's (full box,
/// iTunes-style `ilst`).
fn meta_items(body: &[u8], f: &mut QtFacts) {
    let children = if body.get(4..8) == Some(b"hdlr") {
        body
    } else {
        body.get(4..).unwrap_or(&[])
    };
    let mut keys: Vec<&[u8]> = Vec::new();
    if let Some(k) = boxes(children).find(|b| &b.typ == b"keys") {
        keys = parse_keys(&k).unwrap_or_default();
    }
    let Some(ilst) = boxes(children).find(|b| &b.typ == b"ilst") else {
        return;
    };
    for item in boxes(ilst.body) {
        let key: &[u8] = match u32::from_be_bytes(item.typ) {
            0 => continue,
            i => keys.get(i as usize - 1).copied().unwrap_or(&item.typ),
        };
        let Some(value) = boxes(item.body)
            .find(|d| &d.typ == b"data" && d.complete)
            .and_then(|d| d.body.get(8..))
        else {
            continue;
        };
        match key {
            KEY_CREATION_DATE | b"\xA9day" if f.creation.is_none() => {
                f.creation = parse_datetime(value);
            }
            KEY_CONTENT_ID if f.content_id.is_none() => f.content_id = ascii_text(value),
            _ => {}
        }
    }
}

/// Key names of a complete `keys` box, in order (index 1 first).
fn parse_keys<'a>(b: &Bx<'a>) -> Option<Vec<&'a [u8]>> {
    let (_, body) = full(b)?;
    let count = be_u32(body, 0)? as usize;
    let mut keys = Vec::new();
    let mut p = 4;
    for _ in 0..count.min(MAX_KEYS) {
        let size = be_u32(body, p)? as usize;
        // key_size includes itself and the 4-byte namespace.
        let key = slice(body, p + 8, size.checked_sub(8)?)?;
        keys.push(key);
        p += size;
    }
    Some(keys)
}
