//! Photo awareness for snapvault: what a file is, when it was taken, which files belong
//! together, and whether compressing it is worth the time.
//!
//! This crate knows nothing of the repository. Everything works on bytes the caller already
//! holds: the file name and the first [`HEAD_LIMIT`] bytes of the file, as read for chunking,
//! so there is never a second pass over a file.
//!
//! # What is read
//!
//! | format | capture time | Live Photo content id |
//! |---|---|---|
//! | JPEG | APP1 `Exif`: DateTimeOriginal + OffsetTimeOriginal, else DateTimeDigitized + OffsetTimeDigitized, else DateTime + OffsetTime; without an EXIF date, APP1 XMP | Apple MakerNote tag 0x0011 |
//! | HEIC / HEIF / AVIF | the `Exif` item found through `meta` → `iinf` / `iloc` (file offsets or `idat`), same tags | Apple MakerNote tag 0x0011 |
//! | TIFF / DNG / TIFF-based raws | the file is the TIFF structure, same tags | — |
//! | PNG | `eXIf` chunk, else a `Raw profile type exif` text chunk (`tEXt`/`zTXt`/`iTXt`, as ImageMagick, GIMP and exiv2 write), same tags; else XMP (`iTXt` `XML:com.adobe.xmp`) | — |
//! | WebP | RIFF `EXIF` chunk, same tags | — |
//! | MOV / MP4 | `moov/meta` keys+ilst `com.apple.quicktime.creationdate` (ISO 8601 with offset), or `©day`; else `mvhd` creation_time (UTC, reported with offset +00:00; 0 = unknown) | `com.apple.quicktime.content.identifier` |
//!
//! iPhone videos keep `moov` at the *end* of the file. When `moov` is not inside the head
//! bytes, [`inspect`] gives no capture time and the caller falls back to the file's birth
//! time or mtime ([`with_fallback`]). A caller that can seek may instead read the `moov` box
//! at [`video_metadata_offset`] and hand it to [`inspect_moov`].
//!
//! # Parser choice
//!
//! The parsers here are hand-written and bounded, not `nom-exif`. nom-exif 3.x brings `nom`,
//! `chrono`, `regex`, `bytes`, `tracing` and `iso6709parse` into a 2-core CI build, takes its
//! in-memory input as an owned `bytes::Bytes` (a copy of a 4 MiB head per file for a
//! borrowed slice), parses far more than the dozen tags needed here, and does not read the
//! Apple MakerNote content identifier used for Live Photo pairing. What is needed is small:
//! a fixed-depth TIFF IFD walk (IFD0 → Exif IFD → MakerNote; no chains followed, so no
//! loops), a JPEG marker walk, a PNG/RIFF chunk walk and an ISO-BMFF box walker. Every read is
//! bounds-checked (`Option`), every count read from input is bounded by the bytes actually
//! present or by a fixed cap, allocation happens only for small results (a capped copy of a
//! multi-extent Exif item, key lists), and nothing panics on hostile input: unit tests cut
//! every sample at every length, a proptest flips bytes, and `fuzz/fuzz_targets/media_inspect.rs`
//! fuzzes [`inspect`].
//!
//! # Pairing
//!
//! Live Photos pair by [`pair_stem`] (same folder, same base name, Apple's `E`/`O` edit
//! prefixes folded) and, where present, by content id: the MOV's
//! `com.apple.quicktime.content.identifier` equals the still's MakerNote ContentIdentifier.

mod bmff;
mod bytes;
mod jpeg;
mod png;
mod preview;
pub mod sample;
mod tiff;
mod time;
mod webp;
mod xmp;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_text;

use serde::{Deserialize, Serialize};

pub use preview::{MAX_THUMBNAIL, Preview, preview};
pub use time::{CaptureTime, MAX_OFFSET_MINUTES, ParseCaptureTimeError};

/// How many leading bytes of a file [`inspect`] wants. Stills keep their metadata in the
/// first few hundred KB; short videos (Live Photo MOVs are 1–4 MB) fit whole.
pub const HEAD_LIMIT: usize = 4 * 1024 * 1024;

/// What a file is, for a photo library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Photo,
    Video,
    /// A file that belongs to a photo: `.AAE` edit recipe, `.XMP`, `.THM`.
    Sidecar,
    #[default]
    Other,
}

/// Where a capture time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    /// EXIF in a JPEG, HEIF, TIFF/DNG, PNG or WebP.
    Exif,
    /// QuickTime/MP4 metadata (Apple creationdate key, or `mvhd`).
    #[serde(rename = "quicktime")]
    QuickTime,
    /// An XMP packet (`exif:DateTimeOriginal`, `photoshop:DateCreated`, `xmp:CreateDate`),
    /// when the file has no EXIF date.
    Xmp,
    /// The file's birth (creation) time.
    BirthTime,
    /// The file's modification time.
    Mtime,
}

/// The container format, from magic bytes (or, failing those, the extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    /// HEIF/HEIC (`heic`, `heix`, `mif1`, … brands).
    Heif,
    Avif,
    Png,
    /// TIFF and TIFF-based raws: DNG, NEF, ARW, CR2, ORF, RW2, ….
    Tiff,
    /// Other camera raws (CR3, RAF, X3F): compressed, proprietary.
    Raw,
    Gif,
    Webp,
    /// Apple QuickTime (`.mov`).
    QuickTime,
    /// MP4 and other ISO-BMFF video (`.mp4`, `.m4v`, `.3gp`).
    Mp4,
    Unknown,
}

impl Format {
    /// The kind of media this format holds.
    pub fn kind(self) -> MediaKind {
        match self {
            Format::Jpeg
            | Format::Heif
            | Format::Avif
            | Format::Png
            | Format::Tiff
            | Format::Raw
            | Format::Gif
            | Format::Webp => MediaKind::Photo,
            Format::QuickTime | Format::Mp4 => MediaKind::Video,
            Format::Unknown => MediaKind::Other,
        }
    }

    /// Whether content of this format is already entropy-coded, so that zstd would not pay.
    /// TIFF is judged per file by [`worth_compressing`]; here it counts as not compressed.
    pub fn is_compressed(self) -> bool {
        !matches!(self, Format::Tiff | Format::Unknown)
    }
}

impl MediaKind {
    /// The lowercase name, as serialized: `photo`, `video`, `sidecar`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Video => "video",
            MediaKind::Sidecar => "sidecar",
            MediaKind::Other => "other",
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DateSource {
    /// The name, as serialized: `exif`, `quicktime`, `xmp`, `birth_time`, `mtime`.
    pub fn as_str(self) -> &'static str {
        match self {
            DateSource::Exif => "exif",
            DateSource::QuickTime => "quicktime",
            DateSource::Xmp => "xmp",
            DateSource::BirthTime => "birth_time",
            DateSource::Mtime => "mtime",
        }
    }
}

impl std::fmt::Display for DateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`inspect`] learned about a file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaInfo {
    pub kind: MediaKind,
    /// When the photo or video was taken (after [`with_fallback`]: always `Some`).
    pub capture: Option<CaptureTime>,
    pub date_source: Option<DateSource>,
    /// Apple's Live Photo content identifier (a UUID string), shared by a still and its video.
    pub content_id: Option<String>,
}

/// Lower-cased extension of a file name or path (bytes after the last `.` of the last path
/// component), if it is short ASCII.
fn extension(name: &[u8]) -> Option<[u8; 8]> {
    let base = name
        .iter()
        .rposition(|&b| b == b'/' || b == b'\\')
        .map_or(name, |i| &name[i + 1..]);
    let dot = base.iter().rposition(|&b| b == b'.')?;
    let ext = &base[dot + 1..];
    if dot == 0 || ext.is_empty() || ext.len() > 8 {
        return None;
    }
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(ext) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

fn ext_str(ext: &[u8; 8]) -> &[u8] {
    let n = ext.iter().position(|&b| b == 0).unwrap_or(8);
    &ext[..n]
}

/// Kind from the extension alone.
fn ext_kind(name: &[u8]) -> MediaKind {
    let Some(ext) = extension(name) else {
        return MediaKind::Other;
    };
    match ext_str(&ext) {
        b"jpg" | b"jpeg" | b"jpe" | b"jfif" | b"heic" | b"heif" | b"hif" | b"avif" | b"png"
        | b"dng" | b"tif" | b"tiff" | b"gif" | b"webp" | b"bmp" | b"jxl" | b"cr2" | b"cr3"
        | b"crw" | b"nef" | b"nrw" | b"arw" | b"srf" | b"sr2" | b"orf" | b"rw2" | b"raf"
        | b"pef" | b"srw" | b"erf" | b"3fr" | b"iiq" | b"mos" | b"x3f" | b"raw" | b"rwl"
        | b"dcr" | b"kdc" | b"mrw" => MediaKind::Photo,
        b"mov" | b"qt" | b"mp4" | b"m4v" | b"3gp" | b"3g2" | b"avi" | b"mkv" | b"mts" | b"m2ts"
        | b"webm" | b"wmv" | b"mpg" | b"mpeg" => MediaKind::Video,
        b"aae" | b"xmp" | b"thm" => MediaKind::Sidecar,
        _ => MediaKind::Other,
    }
}

/// Format from the extension alone.
fn ext_format(name: &[u8]) -> Format {
    let Some(ext) = extension(name) else {
        return Format::Unknown;
    };
    match ext_str(&ext) {
        b"jpg" | b"jpeg" | b"jpe" | b"jfif" => Format::Jpeg,
        b"heic" | b"heif" | b"hif" => Format::Heif,
        b"avif" => Format::Avif,
        b"png" => Format::Png,
        b"tif" | b"tiff" | b"dng" | b"nef" | b"nrw" | b"arw" | b"srf" | b"sr2" | b"cr2"
        | b"orf" | b"rw2" | b"pef" | b"srw" | b"erf" | b"3fr" | b"iiq" | b"mos" | b"rwl"
        | b"dcr" | b"kdc" => Format::Tiff,
        b"cr3" | b"raf" | b"x3f" | b"crw" | b"mrw" => Format::Raw,
        b"gif" => Format::Gif,
        b"webp" => Format::Webp,
        b"mov" | b"qt" => Format::QuickTime,
        b"mp4" | b"m4v" | b"3gp" | b"3g2" => Format::Mp4,
        _ => Format::Unknown,
    }
}

/// Format from magic bytes, when they say.
fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(jpeg::SOI) {
        return Some(Format::Jpeg);
    }
    if head.starts_with(png::SIGNATURE) {
        return Some(Format::Png);
    }
    if tiff::Tiff::parse(head).is_some() || head.starts_with(b"II+\0") || head.starts_with(b"MM\0+")
    {
        return Some(Format::Tiff);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(Format::Gif);
    }
    if webp::is_webp(head) {
        return Some(Format::Webp);
    }
    if head.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(Format::Raw);
    }
    match head.get(4..8)? {
        b"ftyp" => ftyp_format(head),
        // QuickTime files from before `ftyp`.
        b"moov" | b"mdat" | b"wide" | b"pnot" => Some(Format::QuickTime),
        _ => None,
    }
}

/// Format of an ISO-BMFF file from its `ftyp` major and compatible brands.
fn ftyp_format(head: &[u8]) -> Option<Format> {
    let ftyp = bmff::boxes(head).next().filter(|b| &b.typ == b"ftyp")?;
    let major = ftyp.body.get(..4)?;
    let compatible = ftyp.body.get(8..).unwrap_or(&[]).chunks_exact(4);
    let of = |brand: &[u8]| match brand {
        b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" => Some(Format::Heif),
        b"avif" | b"avis" => Some(Format::Avif),
        b"crx " => Some(Format::Raw),
        b"qt  " => Some(Format::QuickTime),
        _ => None,
    };
    if let Some(f) = of(major) {
        return Some(f);
    }
    // Generic major brands (mif1, isom, mp42, …): let a compatible brand decide.
    if let Some(f) = compatible.clone().find_map(of) {
        return Some(f);
    }
    match major {
        b"mif1" | b"msf1" | b"mif2" => Some(Format::Heif),
        b"M4A " | b"M4B " | b"M4P " | b"F4A " => None,
        _ => Some(Format::Mp4),
    }
}

/// The container format: magic bytes first, the extension when they say nothing.
pub fn format_of(name: &[u8], head: &[u8]) -> Format {
    sniff(head).unwrap_or_else(|| ext_format(name))
}

/// Kind from file name (extension, case-insensitive) and magic bytes.
///
/// Sidecar extensions (`.aae`, `.xmp`, `.thm`) always give [`MediaKind::Sidecar`]; otherwise
/// magic bytes win over the extension (a `.JPG` that is really HEIC is still a photo), and
/// the extension decides when the bytes are not recognised (or `head` is empty).
pub fn kind_of(name: &[u8], head: &[u8]) -> MediaKind {
    let by_name = ext_kind(name);
    if by_name == MediaKind::Sidecar {
        return by_name;
    }
    sniff(head).map_or(by_name, Format::kind)
}

/// Inspect a file from bytes the caller already has: its name and its first bytes (up to
/// [`HEAD_LIMIT`] are useful; more are allowed and cost nothing extra for stills).
///
/// Never panics. Hostile, truncated or missing metadata gives `capture: None`; so does a
/// video whose `moov` box lies beyond `head` (see [`video_metadata_offset`]).
pub fn inspect(name: &[u8], head: &[u8]) -> MediaInfo {
    let kind = kind_of(name, head);
    let mut info = MediaInfo {
        kind,
        ..MediaInfo::default()
    };
    // XMP, for a file whose EXIF gives no date (see `xmp.rs` for its order of properties).
    let mut xmp = None;
    let exif = match sniff(head) {
        Some(Format::Jpeg) => {
            let f = jpeg::facts(head);
            if f.capture().is_none() {
                xmp = jpeg::xmp_capture(head);
            }
            f
        }
        Some(Format::Png) => {
            let f = png::facts(head);
            xmp = f.xmp;
            f.exif
        }
        Some(Format::Tiff) => tiff::exif_facts(head),
        Some(Format::Webp) => webp::facts(head),
        Some(Format::Heif | Format::Avif | Format::Raw | Format::QuickTime | Format::Mp4) => {
            let exif = bmff::heif_facts(head);
            if exif.capture().is_none() {
                let qt = bmff::qt_facts(head);
                if qt.capture().is_some() || qt.content_id.is_some() {
                    info.capture = qt.capture();
                    info.date_source = info.capture.map(|_| DateSource::QuickTime);
                    info.content_id = qt.content_id;
                    return info;
                }
            }
            exif
        }
        Some(Format::Gif | Format::Unknown) | None => return info,
    };
    info.capture = exif.capture();
    info.date_source = info.capture.map(|_| DateSource::Exif);
    if info.capture.is_none()
        && let Some(t) = xmp
    {
        info.capture = Some(t);
        info.date_source = Some(DateSource::Xmp);
    }
    info.content_id = exif.content_id;
    info
}

/// For a QuickTime/MP4 file whose `moov` box is not complete inside `head`: the file offset
/// of the first top-level box that `head` does not hold, where a caller able to seek can
/// read on (a box header: 32-bit size, type, 64-bit size when the first is 1) to find
/// `moov`. `None` when `head` holds `moov`, the file is no video, or its boxes are garbage.
pub fn video_metadata_offset(head: &[u8]) -> Option<u64> {
    match sniff(head)? {
        Format::QuickTime | Format::Mp4 => bmff::first_unread_box(head),
        _ => None,
    }
}

/// Capture time and content id from a `moov` box read on its own (header included), e.g.
/// at [`video_metadata_offset`]. Kind is taken from the name, defaulting to video.
pub fn inspect_moov(name: &[u8], moov: &[u8]) -> MediaInfo {
    let qt = bmff::qt_facts(moov);
    let kind = match ext_kind(name) {
        MediaKind::Other => MediaKind::Video,
        k => k,
    };
    let capture = qt.capture();
    MediaInfo {
        kind,
        capture,
        date_source: capture.map(|_| DateSource::QuickTime),
        content_id: qt.content_id,
    }
}

/// Apply the fallback chain: the metadata date if there is one, else the birth time, else
/// the mtime (both Unix seconds), recording which source was used.
///
/// File times are instants; they are shown as wall time at `local_offset_minutes` (the
/// offset of the machine or phone the file came from, when known) and keep that offset; with
/// `None` they are UTC wall times with unknown offset. A birth time `<= 0` counts as unknown
/// (file systems report 0 when they do not record it).
pub fn with_fallback(
    mut info: MediaInfo,
    birthtime: Option<i64>,
    mtime: i64,
    local_offset_minutes: Option<i16>,
) -> MediaInfo {
    if info.capture.is_some() {
        return info;
    }
    let (secs, source) = match birthtime.filter(|&b| b > 0) {
        Some(b) => (b, DateSource::BirthTime),
        None => (mtime, DateSource::Mtime),
    };
    info.capture = Some(CaptureTime::from_unix(secs, local_offset_minutes));
    info.date_source = Some(source);
    info
}

/// Live Photo / sidecar pairing key: the path without its extension, for media and sidecar
/// files, with Apple's edit prefixes folded, so that a still, its video and its sidecars give
/// the same key: `DCIM/100APPLE/IMG_0001.HEIC`, `IMG_0001.MOV`, `IMG_0001.AAE`,
/// `IMG_E0001.HEIC` (edited rendition), `IMG_E0001.MOV` and `IMG_O0001.AAE` all give
/// `DCIM/100APPLE/IMG_0001`.
///
/// Folding: in the last `_`-separated part of the base name, an `E` or `O` directly followed
/// by digits only is dropped (uppercase, as Apple writes it). Case is otherwise kept: pairing
/// is within one folder, where Apple's names agree in case. `None` for files that are neither
/// media nor sidecar by extension, and for names without a stem (`.hidden`, `noext`).
pub fn pair_stem(path: &[u8]) -> Option<Vec<u8>> {
    if ext_kind(path) == MediaKind::Other {
        return None;
    }
    let slash = path.iter().rposition(|&b| b == b'/' || b == b'\\');
    let (dir, name) = match slash {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&path[..0], path),
    };
    let dot = name.iter().rposition(|&b| b == b'.')?;
    let stem = &name[..dot];
    let mut out = Vec::with_capacity(dir.len() + stem.len());
    out.extend_from_slice(dir);
    match stem.iter().rposition(|&b| b == b'_') {
        Some(u)
            if matches!(stem.get(u + 1), Some(b'E' | b'O'))
                && stem.len() > u + 2
                && stem[u + 2..].iter().all(u8::is_ascii_digit) =>
        {
            out.extend_from_slice(&stem[..=u]);
            out.extend_from_slice(&stem[u + 2..]);
        }
        _ => out.extend_from_slice(stem),
    }
    Some(out)
}

/// Should the repository bother running zstd on this content? `false` for already-compressed
/// media: JPEG, HEIF/HEIC, AVIF, PNG, GIF, WebP, MOV/MP4, CR3/RAF-like raws, and TIFF/DNG
/// whose full-resolution image is compressed (lossless-JPEG DNG included); also for
/// compressed audio and archives by extension. `true` for uncompressed TIFF/DNG, sidecars
/// (XML) and anything unrecognised — the repository may still skip zstd when it does not
/// shrink a chunk.
pub fn worth_compressing(name: &[u8], head: &[u8]) -> bool {
    match format_of(name, head) {
        Format::Tiff => tiff::main_image_compression(head).is_none_or(|c| c == 1),
        Format::Unknown => !matches!(
            extension(name).as_ref().map(ext_str),
            Some(
                b"zip"
                    | b"gz"
                    | b"tgz"
                    | b"xz"
                    | b"zst"
                    | b"bz2"
                    | b"7z"
                    | b"rar"
                    | b"mp3"
                    | b"m4a"
                    | b"aac"
                    | b"ogg"
                    | b"opus"
                    | b"flac"
                    | b"jxl"
                    | b"webm"
                    | b"mkv"
                    | b"avi"
                    | b"mts"
                    | b"m2ts"
            )
        ),
        f => !f.is_compressed(),
    }
}
