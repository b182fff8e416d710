//! A stored file's bytes, read back from the repository exactly as restore reads them: each
//! chunk fetched, decrypted and checked against its keyed hash, the chunk list checked
//! against the photo's identity, the length against the recorded size. Bytes are streamed a
//! chunk at a time (memory: a chunk or two per response), and a range request reads only
//! the chunks it covers.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use snapvault_catalog::StoredContent;
use snapvault_repo::{BlobId, Id};
use tokio::sync::mpsc;

use super::library::Library;

/// What is read of a file to find its camera and embedded preview: the APP1 segment of a
/// JPEG is at most 64 KiB and comes first; HEIC's `meta` box is small and first too.
pub const HEAD_BYTES: u64 = 256 * 1024;

/// Does the chunk list really make this identity? A catalog out of step with the
/// repository must not serve another photo's bytes under this one's name.
pub fn matches_key(key: &str, blobs: &[BlobId]) -> bool {
    let mut cat = Vec::with_capacity(blobs.len() * 32);
    for b in blobs {
        cat.extend_from_slice(b.as_bytes());
    }
    key.parse::<Id>().is_ok_and(|k| Id::hash_of(&cat) == k)
}

/// The chunks covering `range` of the file, with the part of each to keep.
fn plan(
    lib: &Library,
    blobs: &[BlobId],
    range: &Range<u64>,
) -> io::Result<Vec<(BlobId, Range<usize>)>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    for b in blobs {
        let len = lib
            .index
            .locations(b)
            .first()
            .map(|l| u64::from(l.raw_len))
            .ok_or_else(|| io::Error::other(format!("chunk {} is not in the index", b.short())))?;
        let (start, end) = (at, at + len);
        at = end;
        if end <= range.start || start >= range.end {
            continue;
        }
        let from = range.start.saturating_sub(start) as usize;
        let to = (range.end.min(end) - start) as usize;
        out.push((*b, from..to));
    }
    Ok(out)
}

/// Stream `range` of a stored file into `tx`, chunk by chunk, on the calling (blocking)
/// thread. An error ends the stream with that error, so the client's download fails
/// instead of ending short.
pub fn stream(
    lib: &Arc<Library>,
    content: &StoredContent,
    range: Range<u64>,
    tx: mpsc::Sender<io::Result<Bytes>>,
) {
    let send_err = |e: io::Error| {
        let _ = tx.blocking_send(Err(e));
    };
    let total: u64 = match content
        .blobs
        .iter()
        .map(|b| lib.index.locations(b).first().map(|l| u64::from(l.raw_len)))
        .sum::<Option<u64>>()
    {
        Some(t) => t,
        None => return send_err(io::Error::other("a chunk of this file is not in the index")),
    };
    if total != content.size {
        return send_err(io::Error::other(format!(
            "the stored chunks hold {total} bytes, the file had {}",
            content.size
        )));
    }
    let parts = match plan(lib, &content.blobs, &range) {
        Ok(p) => p,
        Err(e) => return send_err(e),
    };
    for (id, keep) in parts {
        match lib.repo.read_blob(&lib.index, &id) {
            Ok(data) => {
                let Some(part) = data.get(keep) else {
                    return send_err(io::Error::other(format!(
                        "chunk {} is shorter than the index says",
                        id.short()
                    )));
                };
                if tx.blocking_send(Ok(Bytes::copy_from_slice(part))).is_err() {
                    return; // the client went away
                }
            }
            Err(e) => return send_err(io::Error::other(e.to_string())),
        }
    }
}

/// The first [`HEAD_BYTES`] (or fewer) of a stored file, verified as above.
pub fn head(lib: &Library, content: &StoredContent) -> io::Result<Vec<u8>> {
    let end = HEAD_BYTES.min(content.size);
    let mut out = Vec::new();
    for (id, keep) in plan(lib, &content.blobs, &(0..end))? {
        let data = lib
            .repo
            .read_blob(&lib.index, &id)
            .map_err(|e| io::Error::other(e.to_string()))?;
        out.extend_from_slice(
            data.get(keep)
                .ok_or_else(|| io::Error::other("short chunk"))?,
        );
    }
    Ok(out)
}

/// Write a whole stored file to `out`, verified as above, a chunk at a time.
pub fn write_all(
    lib: &Library,
    content: &StoredContent,
    out: &mut impl io::Write,
) -> io::Result<u64> {
    let mut n = 0u64;
    for (id, keep) in plan(lib, &content.blobs, &(0..content.size))? {
        let data = lib
            .repo
            .read_blob(&lib.index, &id)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let part = data
            .get(keep)
            .ok_or_else(|| io::Error::other("short chunk"))?;
        out.write_all(part)?;
        n += part.len() as u64;
    }
    if n != content.size {
        return Err(io::Error::other(format!(
            "the stored chunks hold {n} bytes, the file had {}",
            content.size
        )));
    }
    Ok(n)
}

/// A single byte range from a `Range` header, for a file of `size` bytes: `Ok(None)` to
/// send the whole file (no header, or one we don't serve such as several ranges),
/// `Err(())` when it cannot be satisfied (416).
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(h) = header else { return Ok(None) };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(size)
        };
        start..end
    };
    if r.start >= size || r.start >= r.end {
        return Err(());
    }
    Ok(Some(r))
}

/// The content type of a file by its name.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "avif" => "image/avif",
        "tif" | "tiff" => "image/tiff",
        "dng" => "image/x-adobe-dng",
        "mov" => "video/quicktime",
        "mp4" | "m4v" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A HEIF image (HEIC from an iPhone) by its name: shown as a decoded picture.
pub fn is_heif(name: &str) -> bool {
    matches!(content_type(name), "image/heic" | "image/heif")
}

/// Can a browser show this image as it is?
pub fn browser_shows(name: &str) -> bool {
    matches!(
        content_type(name),
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-"), 10), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ok(Some(2..5)));
        assert_eq!(parse_range(Some("bytes=2-400"), 10), Ok(Some(2..10)));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ok(Some(7..10)));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Ok(Some(0..10)));
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 10), Ok(None));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=x-"), 10), Err(()));
        assert_eq!(parse_range(Some("bytes=0-"), 0), Err(()));
    }
}
