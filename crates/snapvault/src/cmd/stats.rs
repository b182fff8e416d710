//! `snapvault stats [--snapshot ID] [--json]`: what the repository holds and what it costs.
//!
//! - size on disk: every file of the repository (packs, index, snapshots, keys, config);
//! - original bytes: the files of the snapshots as they would be restored (each snapshot
//!   counted in full, as restic's `restore-size`);
//! - unique bytes: the distinct chunks those snapshots use, before compression;
//! - stored bytes: the same chunks as stored (compressed, encrypted), plus the trees;
//! - dedup ratio = original / unique; compression ratio = unique / stored;
//! - photos and videos, distinct by content, and a histogram by month of capture.
//!
//! Trees shared by several snapshots are read once.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use serde::Serialize;
use snapvault_repo::backend::FileKind;
use snapvault_repo::index::Index;
use snapvault_repo::tree::{NodeKind, Tree};
use snapvault_repo::walk::{TreeWalker, Visitor};
use snapvault_repo::{BlobId, RepoError, Repository};

use super::Ctx;
use crate::cli::StatsArgs;
use crate::fmt;
use crate::photoset::{self, ContentKey};

#[derive(Serialize, Default, Debug)]
pub struct RepoFiles {
    pub location: String,
    pub id: String,
    pub encrypted: bool,
    pub compression_level: i32,
    pub size_on_disk: u64,
    pub packs: u64,
    pub pack_bytes: u64,
    pub index_files: u64,
    pub snapshot_files: u64,
    pub key_files: u64,
}

#[derive(Serialize, Default, Debug, Clone, Copy)]
pub struct Counts {
    pub photos: u64,
    pub videos: u64,
}

#[derive(Serialize, Debug)]
pub struct Month {
    /// `YYYY-MM`, from the capture date as recorded (local time of the camera).
    pub month: String,
    pub photos: u64,
    pub videos: u64,
}

#[derive(Serialize, Debug)]
pub struct Year {
    pub year: String,
    pub photos: u64,
    pub videos: u64,
}

#[derive(Serialize, Debug)]
pub struct Stats {
    /// The snapshot looked at (full id), or `null` for the whole repository.
    pub snapshot: Option<String>,
    pub snapshots: u64,
    pub repository: RepoFiles,
    /// Files in the snapshots, each snapshot counted in full.
    pub files: u64,
    pub original_bytes: u64,
    /// Distinct data chunks used, and their size before compression.
    pub chunks: u64,
    pub unique_bytes: u64,
    /// Stored size of those chunks and of the snapshots' trees.
    pub stored_bytes: u64,
    pub dedup_ratio: f64,
    pub compression_ratio: f64,
    pub photos: u64,
    pub videos: u64,
    /// Photos and videos with no capture date.
    pub undated: Counts,
    pub by_year: Vec<Year>,
    pub by_month: Vec<Month>,
}

fn repo_files(repo: &Repository) -> Result<RepoFiles> {
    let be = repo.backend();
    let mut r = RepoFiles {
        location: be.location(),
        id: repo.config().id.clone(),
        encrypted: repo.config().encrypted,
        compression_level: repo.config().compression_level,
        ..Default::default()
    };
    r.size_on_disk = be.size(FileKind::Config, "config").unwrap_or(0);
    for kind in [
        FileKind::Key,
        FileKind::Lock,
        FileKind::Snapshot,
        FileKind::Index,
        FileKind::Pack,
        FileKind::Parity,
    ] {
        let (files, stray) = match kind {
            // A stray `notes.txt` in `index/` takes space but is no index file.
            FileKind::Index => snapvault_repo::index::list_files(be.as_ref())?,
            _ => (be.list(kind)?, Vec::new()),
        };
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        r.size_on_disk += bytes + stray.iter().map(|f| f.size).sum::<u64>();
        let n = files.len() as u64;
        match kind {
            FileKind::Pack => {
                r.packs = n;
                r.pack_bytes = bytes;
            }
            FileKind::Index => r.index_files = n,
            FileKind::Snapshot => r.snapshot_files = n,
            FileKind::Key => r.key_files = n,
            _ => {}
        }
    }
    Ok(r)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        return 1.0;
    }
    ((a as f64 / b as f64) * 100.0).round() / 100.0
}

pub fn compute(repo: &Repository, index: &Index, only: Option<&str>) -> Result<Stats> {
    let snaps = match only {
        Some(spec) => vec![repo.find_snapshot(spec)?],
        None => {
            let (all, bad) = repo.snapshots()?;
            for (name, e) in &bad {
                eprintln!("warning: snapshot {name} cannot be read (left out): {e}");
            }
            all
        }
    };
    let mut v = Tally::default();
    // Each tree once over all the snapshots (most share most of theirs).
    let mut walker = TreeWalker::new(repo, index);
    for (_, s) in &snaps {
        v.files += s.summary.files_total;
        v.original += s.summary.bytes_total;
        walker.walk(s.tree, &mut v)?;
    }
    let Tally {
        trees,
        chunks,
        files,
        original,
        photos,
        videos,
        undated,
        months,
        ..
    } = v;
    let (mut unique, mut stored) = (0u64, 0u64);
    for id in &chunks {
        if let Some(loc) = index.get(id) {
            unique += loc.raw_len as u64;
            stored += loc.length as u64;
        }
    }
    let trees_stored: u64 = trees
        .iter()
        .filter_map(|t| index.get(t))
        .map(|l| l.length as u64)
        .sum();
    let mut by_year: BTreeMap<String, Counts> = BTreeMap::new();
    for (m, c) in &months {
        let y = by_year
            .entry(snapvault_repo::text::prefix(m, 4).to_string())
            .or_default();
        y.photos += c.photos;
        y.videos += c.videos;
    }
    Ok(Stats {
        snapshot: match only {
            Some(_) => snaps.first().map(|(id, _)| id.to_hex()),
            None => None,
        },
        snapshots: snaps.len() as u64,
        repository: repo_files(repo)?,
        files,
        original_bytes: original,
        chunks: chunks.len() as u64,
        unique_bytes: unique,
        stored_bytes: stored + trees_stored,
        dedup_ratio: ratio(original, unique),
        compression_ratio: ratio(unique, stored),
        photos,
        videos,
        undated,
        by_year: by_year
            .into_iter()
            .map(|(year, c)| Year {
                year,
                photos: c.photos,
                videos: c.videos,
            })
            .collect(),
        by_month: months
            .into_iter()
            .map(|(month, c)| Month {
                month,
                photos: c.photos,
                videos: c.videos,
            })
            .collect(),
    })
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A bar of `n` out of `max` in `width` cells, with eighth blocks for the remainder.
pub fn bar(n: u64, max: u64, width: usize) -> String {
    if max == 0 || n == 0 {
        return String::new();
    }
    let eighths = ((n as f64 / max as f64) * (width * 8) as f64)
        .round()
        .max(1.0) as usize;
    let mut s = "█".repeat(eighths / 8);
    const PART: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PART[eighths % 8]);
    s
}

fn print(ctx: &Ctx, st: &Stats) {
    let r = &st.repository;
    let what = match &st.snapshot {
        Some(id) => format!("snapshot {}", snapvault_repo::text::prefix(id, 8)),
        None => format!("{} snapshot(s)", st.snapshots),
    };
    println!(
        "repository {} ({}, id {})",
        r.location,
        if r.encrypted {
            "encrypted"
        } else {
            "NOT encrypted"
        },
        snapvault_repo::text::prefix(&r.id, 8)
    );
    println!(
        "  size on disk     {:>10}  ({} pack(s), {} index file(s), {} snapshot(s))",
        fmt::size(r.size_on_disk),
        r.packs,
        r.index_files,
        r.snapshot_files
    );
    println!("{what}:");
    println!(
        "  original         {:>10}  in {} file(s), as restored",
        fmt::size(st.original_bytes),
        st.files
    );
    println!(
        "  unique           {:>10}  in {} chunk(s): deduplication {:.2}x",
        fmt::size(st.unique_bytes),
        st.chunks,
        st.dedup_ratio
    );
    println!(
        "  stored           {:>10}  compression {:.2}x (photos and videos are already compressed)",
        fmt::size(st.stored_bytes),
        st.compression_ratio
    );
    println!(
        "  photos {}, videos {} (distinct by content){}",
        st.photos,
        st.videos,
        if st.undated.photos + st.undated.videos > 0 {
            format!(
                "; {} without a capture date",
                st.undated.photos + st.undated.videos
            )
        } else {
            String::new()
        }
    );
    if st.by_month.is_empty() {
        return;
    }
    println!();
    println!("photos and videos by month taken:");
    let max = st
        .by_month
        .iter()
        .map(|m| m.photos + m.videos)
        .max()
        .unwrap_or(0);
    let mut year = "";
    for m in &st.by_month {
        let (y, mo) = m.month.split_at(4);
        if y != year {
            year = y;
            let total = st
                .by_year
                .iter()
                .find(|x| x.year == y)
                .map_or(0, |x| x.photos + x.videos);
            println!("{y}  ({total})");
        }
        let idx: usize = mo.trim_start_matches('-').parse().unwrap_or(0);
        let name = MONTHS.get(idx.wrapping_sub(1)).copied().unwrap_or("???");
        println!(
            "  {name} {:>6} {}",
            m.photos + m.videos,
            bar(m.photos + m.videos, max, 40)
        );
    }
    let _ = ctx;
}

pub fn run(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let repo = ctx.open()?;
    let index = repo.load_index()?.index;
    let st = compute(&repo, &index, a.snapshot.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&st)?);
    } else {
        print(ctx, &st);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn bars() {
        assert_eq!(super::bar(0, 10, 40), "");
        assert_eq!(super::bar(10, 10, 4), "████");
        assert_eq!(super::bar(5, 10, 4), "██");
        assert_eq!(super::bar(1, 1000, 4), "▏");
        assert_eq!(super::ratio(3, 2), 1.5);
        assert_eq!(super::ratio(3, 0), 1.0);
    }
}

/// What the snapshots' trees hold, each tree counted once.
#[derive(Default)]
struct Tally {
    trees: HashSet<BlobId>,
    chunks: HashSet<BlobId>,
    /// Photos and videos seen (by content); the first copy walked dates one.
    media: HashSet<ContentKey>,
    files: u64,
    original: u64,
    photos: u64,
    videos: u64,
    undated: Counts,
    months: BTreeMap<String, Counts>,
}

impl Visitor for Tally {
    fn tree(&mut self, id: &BlobId, _: &[u8], tree: &Tree) -> snapvault_repo::Result<bool> {
        self.trees.insert(*id);
        for n in tree.nodes.iter().filter(|n| n.kind == NodeKind::File) {
            self.chunks.extend(n.content.iter().copied());
            let Some(m) = &n.media else { continue };
            let video = match m.kind.as_str() {
                "photo" => false,
                "video" => true,
                _ => continue,
            };
            if !self.media.insert(photoset::content_key(n)) {
                continue;
            }
            // `taken` comes from a stored tree: take `YYYY-MM` only when it is there,
            // never by slicing blindly.
            let month = m.taken.as_deref().and_then(|t| t.get(..7));
            let slot = match month {
                Some(mo) if mo.as_bytes().get(4) == Some(&b'-') => {
                    self.months.entry(mo.to_string()).or_default()
                }
                _ => &mut self.undated,
            };
            if video {
                self.videos += 1;
                slot.videos += 1;
            } else {
                self.photos += 1;
                slot.photos += 1;
            }
        }
        Ok(true)
    }

    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
        Err(e)
    }
}
