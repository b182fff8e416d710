//! Thumbnails for the month grid, made when first asked for and kept in the cache folder
//! (`<cache>/thumbs/`, owner-only like the rest of it; never in the repository).
//!
//! A JPEG's embedded EXIF thumbnail is used as it is (a few KiB read from the first chunk,
//! nothing decoded). Small images a browser shows by itself (JPEG, PNG, GIF, WebP up to
//! [`SMALL_ORIGINAL`]) are served whole. HEIC's embedded thumbnail is HEVC-coded and this
//! build has no HEVC decoder (docs/design.md says why), so HEIC photos, videos and large
//! images without a preview get a labelled placeholder.
//!
//! At most [`MAKERS`] thumbnails are made at once (a semaphore), each reading at most
//! [`super::media::HEAD_BYTES`], so memory stays bounded however many the page asks for.

use std::path::PathBuf;

use snapvault_catalog::StoredContent;

use super::library::Library;
use super::media;

/// Images up to this size without an embedded preview are sent whole as their thumbnail.
pub const SMALL_ORIGINAL: u64 = 512 * 1024;
/// Thumbnails made at the same time.
pub const MAKERS: usize = 4;

/// What a grid cell shows.
pub enum Thumb {
    /// A JPEG thumbnail (embedded preview, from the cache or just made).
    Jpeg(Vec<u8>),
    /// The original itself is small enough and the browser shows it.
    Original,
    /// A placeholder, by why there is no picture.
    Placeholder(Placeholder),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    Heic,
    Video,
    NoPreview,
}

impl Placeholder {
    pub fn svg(self) -> &'static str {
        match self {
            Placeholder::Heic => include_str!("assets/heic.svg"),
            Placeholder::Video => include_str!("assets/video.svg"),
            Placeholder::NoPreview => include_str!("assets/nopreview.svg"),
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Placeholder::Heic => "heic",
            Placeholder::Video => "video",
            Placeholder::NoPreview => "none",
        }
    }

    fn from_marker(s: &[u8]) -> Option<Placeholder> {
        match s {
            b"heic" => Some(Placeholder::Heic),
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
        return Ok(Thumb::Jpeg(b));
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
        return Ok(Thumb::Jpeg(t));
    }
    let heic = matches!(
        snapvault_media::format_of(name.as_bytes(), &head),
        snapvault_media::Format::Heif
    );
    let p = if heic {
        Placeholder::Heic
    } else {
        Placeholder::NoPreview
    };
    if let Some(n) = &none {
        let _ = crate::cache::write(n, p.marker().as_bytes());
    }
    Ok(fallback(content, name, p))
}

fn fallback(content: &StoredContent, name: &str, p: Placeholder) -> Thumb {
    if p == Placeholder::NoPreview && content.size <= SMALL_ORIGINAL && media::browser_shows(name) {
        Thumb::Original
    } else {
        Thumb::Placeholder(p)
    }
}
