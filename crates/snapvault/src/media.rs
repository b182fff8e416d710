//! Photo awareness plugged into the snapshot pipeline: media kind, capture date with its
//! offset (or the fallback), Live Photo pairing key and content id, recorded in each file's
//! tree entry; zstd skipped for already-compressed media.
//!
//! Videos that keep their `moov` box at the end (iPhone MOVs do) are handled by a
//! [`MoovProbe`] that walks the top-level boxes as the file streams past the chunker and
//! keeps only the `moov` box — still one pass over the file.

use snapvault_media::{MediaInfo, MediaKind};
use snapvault_repo::archiver::{Inspector, TailProbe};
use snapvault_repo::blob::Compression;
use snapvault_repo::fs_source::SourceEntry;
use snapvault_repo::tree::MediaMeta;

pub struct PhotoInspector;

/// Largest `moov` box we keep in memory.
const MAX_MOOV: u64 = 8 << 20;

fn meta_from(info: &MediaInfo, path: &[u8]) -> MediaMeta {
    MediaMeta {
        kind: info.kind.as_str().to_string(),
        taken: info.capture.map(|c| c.to_string()),
        date_source: info.date_source.map(|s| s.as_str().to_string()),
        pair: snapvault_media::pair_stem(path).map(|p| String::from_utf8_lossy(&p).into_owned()),
        content_id: info.content_id.clone(),
    }
}

fn is_fallback(m: &MediaMeta) -> bool {
    matches!(
        m.date_source.as_deref(),
        Some("birth_time" | "mtime") | None
    )
}

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
        // Without metadata: birth time, then mtime — but a birth time later than the mtime
        // is only when the file was copied here (copies keep the mtime), so the earlier wins.
        let mtime = entry.mtime.div_euclid(1_000_000_000);
        let btime = entry
            .btime
            .map(|b| b.div_euclid(1_000_000_000))
            .filter(|&b| b <= mtime);
        let info = snapvault_media::with_fallback(info, btime, mtime, None);
        Some(meta_from(&info, path))
    }

    fn tail_probe(
        &self,
        path: &[u8],
        head: &[u8],
        entry: &SourceEntry,
    ) -> Option<Box<dyn TailProbe>> {
        snapvault_media::video_metadata_offset(head)?;
        let mut p = MoovProbe {
            name: entry.name.0.clone(),
            path: path.to_vec(),
            next_box: 0,
            header: Vec::with_capacity(16),
            moov: None,
            done: false,
        };
        p.chunk(0, head);
        Some(Box::new(p))
    }
}

/// Walks top-level ISO-BMFF boxes across chunk boundaries and keeps the `moov` box.
pub struct MoovProbe {
    name: Vec<u8>,
    path: Vec<u8>,
    /// File offset of the next top-level box header.
    next_box: u64,
    /// Bytes of that header seen so far.
    header: Vec<u8>,
    /// (end offset, bytes from the box start) while collecting `moov`.
    moov: Option<(u64, Vec<u8>)>,
    done: bool,
}

impl TailProbe for MoovProbe {
    fn chunk(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        while !self.done {
            if let Some((box_end, buf)) = self.moov.as_mut() {
                let have = self.next_box + buf.len() as u64;
                if have < offset {
                    self.done = true; // a gap: cannot happen with in-order chunks
                    return;
                }
                let from = (have - offset) as usize;
                let until = (*box_end).min(end);
                if until > have {
                    buf.extend_from_slice(&data[from..(until - offset) as usize]);
                }
                if self.next_box + buf.len() as u64 >= *box_end {
                    self.done = true;
                }
                return;
            }
            // Gather the header of the box at next_box.
            let want = self.next_box + self.header.len() as u64;
            if want >= end {
                return;
            }
            if want < offset {
                self.done = true;
                return;
            }
            let from = (want - offset) as usize;
            let need = 16 - self.header.len();
            let take = need.min(data.len() - from);
            self.header.extend_from_slice(&data[from..from + take]);
            if self.header.len() < 8 {
                return;
            }
            let size32 = u32::from_be_bytes([
                self.header[0],
                self.header[1],
                self.header[2],
                self.header[3],
            ]) as u64;
            let size = match size32 {
                0 => u64::MAX, // to the end of the file
                1 if self.header.len() < 16 => {
                    if take == need {
                        continue;
                    }
                    return;
                }
                1 => u64::from_be_bytes([
                    self.header[8],
                    self.header[9],
                    self.header[10],
                    self.header[11],
                    self.header[12],
                    self.header[13],
                    self.header[14],
                    self.header[15],
                ]),
                s => s,
            };
            if size < 8 {
                self.done = true;
                return;
            }
            if &self.header[4..8] == b"moov" {
                if size > MAX_MOOV {
                    self.done = true;
                    return;
                }
                let mut buf = Vec::with_capacity(size as usize);
                buf.extend_from_slice(&self.header[..self.header.len().min(size as usize)]);
                self.header.clear();
                self.moov = Some((self.next_box + size, buf));
                continue;
            }
            self.next_box = self.next_box.saturating_add(size);
            self.header.clear();
        }
    }

    fn finish(self: Box<Self>, head_meta: Option<MediaMeta>) -> Option<MediaMeta> {
        let Some((box_end, buf)) = &self.moov else {
            return head_meta;
        };
        if self.next_box + buf.len() as u64 != *box_end {
            return head_meta;
        }
        let info = snapvault_media::inspect_moov(&self.name, buf);
        match head_meta {
            Some(m) if !is_fallback(&m) => Some(m),
            _ if info.capture.is_some() => Some(meta_from(&info, &self.path)),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapvault_media::CaptureTime;

    #[test]
    fn moov_found_at_the_end_across_any_chunking() {
        let c: CaptureTime = "2023-07-14T18:03:11+02:00".parse().unwrap();
        let mov = snapvault_media::sample::mov(&c, Some("ABC-123"), 300_000, 7);
        let head_len = 1000.min(mov.len());
        // iPhone-style: moov after mdat, beyond the head.
        assert!(snapvault_media::video_metadata_offset(&mov[..head_len]).is_some());
        for step in [1usize, 7, 4096, 65_536, mov.len()] {
            let entry = SourceEntry {
                name: "IMG_0001.MOV".into(),
                kind: snapvault_repo::tree::NodeKind::File,
                mode: 0o644,
                mtime: 0,
                btime: None,
                size: mov.len() as u64,
                target: None,
                rdev: None,
                link: None,
                ctime: None,
                inode: None,
            };
            let head = &mov[..head_len];
            let meta = PhotoInspector.inspect(b"DCIM/IMG_0001.MOV", head, &entry);
            let mut probe = PhotoInspector
                .tail_probe(b"DCIM/IMG_0001.MOV", head, &entry)
                .unwrap();
            let mut off = head_len;
            while off < mov.len() {
                let e = (off + step).min(mov.len());
                probe.chunk(off as u64, &mov[off..e]);
                off = e;
            }
            let m = probe.finish(meta).unwrap();
            assert_eq!(
                m.taken.as_deref(),
                Some("2023-07-14T18:03:11+02:00"),
                "step {step}"
            );
            assert_eq!(m.date_source.as_deref(), Some("quicktime"));
        }
    }
}
