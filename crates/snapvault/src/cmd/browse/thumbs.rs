//! Thumbnails for the month grid, made when first asked for and kept in the cache folder
//! (`<cache>/thumbs/`, owner-only like the rest of it; never in the repository).
//!
//! A JPEG's embedded EXIF thumbnail is used as it is (a few KiB read from the first chunk,
//! nothing decoded). Small images a browser shows by itself (JPEG, PNG, GIF, WebP up to
//! [`SMALL_ORIGINAL`]) are served whole. HEIC's embedded thumbnail is HEVC-coded: it is
//! decoded by the system's libheif tools in a separate process (`heif.rs`; docs/design.md
//! says why) and sent as JPEG, which every browser shows. Videos, large images without a preview, and HEIC without a decoder get a
//! labelled placeholder.
//!
//! At most [`MAKERS`] thumbnails are made at once (a semaphore), each reading at most
//! [`super::media::HEAD_BYTES`], so memory stays bounded however many the page asks for.
//!
//! The photo page's picture ([`screen`]) of a HEIC is decoded the same way, at screen size,
//! under the same limit (each at most [`heif::MAX_OUTPUT`] in memory), and kept beside the
//! thumbnails as `<key>-screen.jpg`. Images a browser shows are their own
//! picture, whatever their size: the original, exact and not decoded here.

use std::path::PathBuf;

use snapvault_catalog::StoredContent;

use super::library::Library;
use super::{heif, media};

/// Images up to this size without an embedded preview are sent whole as their thumbnail.
pub const SMALL_ORIGINAL: u64 = 512 * 1024;
/// Thumbnails made at the same time.
pub const MAKERS: usize = 4;

/// What a grid cell shows.
pub enum Thumb {
    /// A thumbnail (embedded JPEG preview or decoded HEIC, from the cache or just made),
    /// with its media type.
    Image(Vec<u8>, &'static str),
    /// The original itself is small enough and the browser shows it.
    Original,
    /// A placeholder, by why there is no picture.
    Placeholder(Placeholder),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// HEIC, and no decoder installed.
    Heic,
    /// HEIC the decoder could not read.
    HeicFailed,
    Video,
    NoPreview,
}

impl Placeholder {
    pub fn svg(self) -> &'static str {
        match self {
            Placeholder::Heic => include_str!("assets/heic.svg"),
            Placeholder::HeicFailed => include_str!("assets/heicbad.svg"),
            Placeholder::Video => include_str!("assets/video.svg"),
            Placeholder::NoPreview => include_str!("assets/nopreview.svg"),
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Placeholder::Heic => "heic",
            Placeholder::HeicFailed => "heicbad",
            Placeholder::Video => "video",
            Placeholder::NoPreview => "none",
        }
    }

    fn from_marker(s: &[u8]) -> Option<Placeholder> {
        match s {
            // (`heic`, no decoder, is not kept: one may be installed later.)
            b"heicbad" => Some(Placeholder::HeicFailed),
            b"video" => Some(Placeholder::Video),
            b"none" => Some(Placeholder::NoPreview),
            _ => None,
        }
    }
}

/// `<cache>/thumbs`, or `None` when there is no usable cache folder (then nothing is kept).
pub fn cache_dir(repo_id: &str) -> Option<PathBuf> {
    let d = crate::cache::dir(repo_id)?.join("thumbs");
    std::fs::create_dir_all(&d).ok()?;
    Some(d)
}

/// The thumbnail for a stored file (blocking: reads the repository and the cache).
pub fn thumb(
    lib: &Library,
    cache: Option<&PathBuf>,
    key: &str,
    content: &StoredContent,
    name: &str,
) -> std::io::Result<Thumb> {
    if content.kind == "video" {
        return Ok(Thumb::Placeholder(Placeholder::Video));
    }
    // Keys are 64 hex digits (checked by the caller's parse), so they are safe file names.
    let jpg = cache.map(|d| d.join(format!("{key}.jpg")));
    let none = cache.map(|d| d.join(format!("{key}.none")));
    if let Some(Ok(b)) = jpg.as_ref().map(std::fs::read) {
        return Ok(Thumb::Image(b, "image/jpeg"));
    }
    if let Some(Ok(b)) = none.as_ref().map(std::fs::read)
        && let Some(p) = Placeholder::from_marker(&b)
    {
        return Ok(fallback(content, name, p));
    }
    let head = media::head(lib, content)?;
    let preview = snapvault_media::preview(&head);
    if let Some(t) = preview.thumbnail {
        if let Some(p) = &jpg {
            let _ = crate::cache::write(p, &t);
        }
        return Ok(Thumb::Image(t, "image/jpeg"));
    }
    let heic = is_heic(name, &head);
    drop(head);
    let p = if heic {
        let Some(d) = heif::decoder() else {
            return Ok(Thumb::Placeholder(Placeholder::Heic));
        };
        forget_png(cache, key, "");
        match decode_kept(d, lib, content, cache, heif::Size::Thumb, &jpg) {
            Ok(b) => return Ok(Thumb::Image(b, "image/jpeg")),
            Err(e) => {
                eprintln!("browse: no thumbnail for {name}: {e}");
                Placeholder::HeicFailed
            }
        }
    } else {
        Placeholder::NoPreview
    };
    if let Some(n) = &none {
        let _ = crate::cache::write(n, p.marker().as_bytes());
    }
    Ok(fallback(content, name, p))
}

fn is_heic(name: &str, head: &[u8]) -> bool {
    matches!(
        snapvault_media::format_of(name.as_bytes(), head),
        snapvault_media::Format::Heif
    )
}

/// A HEIC decoded by `d` to JPEG, kept in the cache as `jpg`.
fn decode_kept(
    d: &heif::Decoder,
    lib: &Library,
    content: &StoredContent,
    cache: Option<&PathBuf>,
    size: heif::Size,
    jpg: &Option<PathBuf>,
) -> std::io::Result<Vec<u8>> {
    let work = cache.cloned().unwrap_or_else(std::env::temp_dir);
    let b = d.render(lib, content, &work, size)?;
    if let Some(p) = jpg {
        let _ = crate::cache::write(p, &b);
    }
    Ok(b)
}

/// Removes a PNG picture an earlier version kept (`<key><suffix>.png`): HEIC pictures are
/// JPEG now, and the cache is disposable.
fn forget_png(cache: Option<&PathBuf>, key: &str, suffix: &str) {
    if let Some(d) = cache {
        let _ = std::fs::remove_file(d.join(format!("{key}{suffix}.png")));
    }
}

fn fallback(content: &StoredContent, name: &str, p: Placeholder) -> Thumb {
    if p == Placeholder::NoPreview && content.size <= SMALL_ORIGINAL && media::browser_shows(name) {
        Thumb::Original
    } else {
        Thumb::Placeholder(p)
    }
}

/// The picture on a photo page (blocking): the original where the browser shows it, a
/// screen-size rendition of a HEIC (decoded when first asked for, then kept in the cache
/// folder), the thumbnail for anything else.
pub fn screen(
    lib: &Library,
    cache: Option<&PathBuf>,
    key: &str,
    content: &StoredContent,
    name: &str,
) -> std::io::Result<Thumb> {
    if content.kind == "video" {
        return Ok(Thumb::Placeholder(Placeholder::Video));
    }
    if media::browser_shows(name) {
        return Ok(Thumb::Original);
    }
    let jpg = cache.map(|d| d.join(format!("{key}-screen.jpg")));
    if let Some(Ok(b)) = jpg.as_ref().map(std::fs::read) {
        return Ok(Thumb::Image(b, "image/jpeg"));
    }
    if !is_heic(name, &media::head(lib, content)?) {
        // Raw and TIFF files: the thumbnail stands in.
        return thumb(lib, cache, key, content, name);
    }
    let Some(d) = heif::screen_decoder() else {
        return Ok(Thumb::Placeholder(Placeholder::Heic));
    };
    forget_png(cache, key, "-screen");
    match decode_kept(d, lib, content, cache, heif::Size::Screen, &jpg) {
        Ok(b) => Ok(Thumb::Image(b, "image/jpeg")),
        Err(e) => {
            eprintln!("browse: no screen-size picture of {name}: {e}");
            Ok(Thumb::Placeholder(Placeholder::HeicFailed))
        }
    }
}
