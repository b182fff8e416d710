//! ISO-BMFF containers: HEIC stills and QuickTime/MP4 movies with their metadata boxes.

use super::*;

pub(super) fn bx(typ: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    v.extend_from_slice(typ);
    v.extend_from_slice(body);
    v
}

pub(super) fn full_bx(typ: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&flags.to_be_bytes()[1..]);
    b.extend_from_slice(body);
    bx(typ, &b)
}

pub(super) fn ftyp(major: &[u8; 4], minor: u32, compatible: &[&[u8; 4]]) -> Vec<u8> {
    let mut b = major.to_vec();
    b.extend_from_slice(&minor.to_be_bytes());
    for c in compatible {
        b.extend_from_slice(*c);
    }
    bx(b"ftyp", &b)
}

pub(super) fn hdlr(handler: &[u8; 4]) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(handler);
    b.extend_from_slice(&[0; 12]);
    b.push(0);
    full_bx(b"hdlr", 0, 0, &b)
}

pub(super) fn infe(id: u16, item_type: &[u8; 4]) -> Vec<u8> {
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

pub(super) fn mvhd(capture: &CaptureTime) -> Vec<u8> {
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
pub(super) fn qt_meta(items: &[(&str, String)]) -> Vec<u8> {
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
