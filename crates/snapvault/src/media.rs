//! Photo awareness plugged into the snapshot pipeline: media kind, capture date with its
//! offset (or the fallback), Live Photo pairing key and content id, recorded in each file's
//! tree entry; zstd skipped for already-compressed media.

use snapvault_media::MediaKind;
use snapvault_repo::archiver::Inspector;
use snapvault_repo::blob::Compression;
use snapvault_repo::fs_source::SourceEntry;
use snapvault_repo::tree::MediaMeta;

pub struct PhotoInspector;

impl Inspector for PhotoInspector {
    fn compression(&self, name: &[u8], head: &[u8], level: i32) -> Compression {
        if snapvault_media::worth_compressing(name, head) {
            Compression::Try(level)
        } else {
            Compression::Never
        }
    }

    fn inspect(&self, path: &[u8], head: &[u8], entry: &SourceEntry) -> Option<MediaMeta> {
        let info = snapvault_media::inspect(&entry.name.0, head);
        if info.kind == MediaKind::Other {
            return None;
        }
        let info = snapvault_media::with_fallback(
            info,
            entry.btime.map(|b| b.div_euclid(1_000_000_000)),
            entry.mtime.div_euclid(1_000_000_000),
            None,
        );
        Some(MediaMeta {
            kind: info.kind.as_str().to_string(),
            taken: info.capture.map(|c| c.to_string()),
            date_source: info.date_source.map(|s| s.as_str().to_string()),
            pair: snapvault_media::pair_stem(path).map(|p| String::from_utf8_lossy(&p).into_owned()),
            content_id: info.content_id,
        })
    }
}
