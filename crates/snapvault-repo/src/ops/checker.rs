//! `check`: structure (index ↔ pack headers ↔ snapshots ↔ trees) and, with read-data, every
//! blob decrypted and verified. Every problem names the object; damaged or missing blobs are
//! mapped back to the files and snapshots they hurt.
//!
//! Damage is only what the bytes prove: missing, wrong size, wrong hash, failed
//! authentication. An object that could not be read at all (a disk I/O error, a dropped
//! connection, a server gone) is *not checked*: reported as such, never counted as damage,
//! and none of its blobs is marked bad — or one network timeout would send every photo in
//! a good pack to the damage list and make the next snapshot store it again.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::error::{RepoError, Result};
use crate::format::id::{BlobId, Id, PackId, SnapshotId};
use crate::format::index_file;
use crate::format::pack::PackEntry;
use crate::repository::index::{BlobLocation, Bulk, ByPack, Index};
use crate::repository::open::Level;
use crate::repository::{Repository, parallel_map};
use crate::storage::FileKind;

mod data;
mod trees;
mod verify;
mod warm;

pub use warm::warm_up;

pub(crate) use data::read_header;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadData {
    None,
    All,
    /// Slice `n` of `m` (1-based), chosen deterministically by pack id.
    Slice(u32, u32),
    /// About this percentage of packs, chosen by pack id.
    Percent(f64),
    /// Rolling verification: packs verified least recently first, until the time is up.
    Budget(std::time::Duration),
}

impl ReadData {
    pub fn selects(&self, pack: &PackId) -> bool {
        let v = u32::from_le_bytes([pack.0.0[0], pack.0.0[1], pack.0.0[2], pack.0.0[3]]);
        match *self {
            ReadData::None => false,
            ReadData::All => true,
            ReadData::Slice(n, m) => m > 0 && v % m == n.saturating_sub(1) % m,
            ReadData::Percent(p) => (v as f64 / u32::MAX as f64) * 100.0 < p,
            ReadData::Budget(_) => true,
        }
    }

    /// Is every pack this selects read whole (no time budget that may stop early)? Then
    /// the structure check takes those packs' headers from that read instead of reading
    /// each pack's end first: one read per pack (one request on S3), not two.
    fn reads_every_selected(&self) -> bool {
        matches!(
            self,
            ReadData::All | ReadData::Slice(..) | ReadData::Percent(_)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The repository is damaged: check fails.
    Error,
    /// Worth knowing, harmless (leftovers of interrupted runs, duplicates).
    Notice,
}

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// What is wrong, e.g. `pack 3f2a…`, `snapshot 91bc…`, `key 77aa…`.
    pub object: String,
    pub message: String,
    /// What can be done about it, when there is a step to name: the CLI phrases it with
    /// its command names (error.rs rule 3) and adds it to the message.
    #[serde(skip)]
    pub remedy: Option<Remedy>,
}

pub use crate::error::Remedy;

/// An object that could not be read (I/O or network error): neither damaged nor known
/// intact.
#[derive(Clone, Debug, Serialize)]
pub struct NotChecked {
    pub object: String,
    pub message: String,
}

/// A file hurt by damage, with every snapshot that holds the damaged version.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedFile {
    pub path: String,
    pub snapshots: Vec<SnapshotId>,
    pub taken: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    pub damaged_files: Vec<DamagedFile>,
    /// Objects that could not be read: the check is incomplete, not failed.
    pub not_checked: Vec<NotChecked>,
    /// Files whose data (or folder listing) could not be read, so were not checked.
    pub files_not_checked: usize,
    /// Blobs that are missing or fail verification.
    #[serde(skip)]
    pub bad_blobs: HashSet<BlobId>,
    /// Blobs snapshots use that no index names (a subset of `bad_blobs`).
    #[serde(skip)]
    pub missing_blobs: HashSet<BlobId>,
    /// Damaged stored copies (blob, pack) found by reading data: `repair` drops exactly these.
    #[serde(skip)]
    pub bad_copies: Vec<(BlobId, PackId)>,
    /// Packs whose every byte was read and verified in this run (for rolling verification).
    #[serde(skip)]
    pub verified: Vec<PackId>,
    /// Packs present but damaged (wrong size, bad header, wrong hash, bad blobs).
    #[serde(skip)]
    pub damaged_packs: HashSet<PackId>,
    /// Packs that could not be read (their header, or their data with read-data).
    #[serde(skip)]
    pub unread_packs: HashSet<PackId>,
    /// An index file could not be read: blobs missing from the index may be in it, so
    /// they are not called missing.
    #[serde(skip)]
    pub index_incomplete: bool,
    /// An index file is damaged: packs and blobs no other index file names may be in it,
    /// so they are found again by rebuilding the index, not lost.
    #[serde(skip)]
    pub index_damaged: bool,
    /// Packs that no index mentions.
    #[serde(skip)]
    pub unindexed_packs: Vec<PackId>,
    /// Packs the index names that are not in the repository.
    #[serde(skip)]
    pub missing_packs: HashSet<PackId>,
    pub snapshots: usize,
    pub packs: usize,
    pub packs_read: usize,
    pub blobs: usize,
    pub bytes_read: u64,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// Did the check read everything it meant to?
    pub fn complete(&self) -> bool {
        self.not_checked.is_empty()
    }

    fn error(&mut self, object: String, message: impl Into<String>) {
        self.push(Severity::Error, object, message.into(), None);
    }

    fn notice(&mut self, object: String, message: impl Into<String>) {
        self.push(Severity::Notice, object, message.into(), None);
    }

    fn push(&mut self, severity: Severity, object: String, message: String, r: Option<Remedy>) {
        self.problems.push(Problem {
            severity,
            object,
            message,
            remedy: r,
        });
    }

    fn unread(&mut self, object: String, message: impl Into<String>) {
        self.not_checked.push(NotChecked {
            object,
            message: message.into(),
        });
    }
}

pub use crate::ops::observe::CheckObserver;

pub struct CheckOptions {
    pub read_data: ReadData,
    pub threads: usize,
    /// When each pack was last verified (Unix seconds), for [`ReadData::Budget`].
    pub last_verified: HashMap<PackId, i64>,
    /// Damage earlier checks found: damaged copies (blob, pack) and damaged packs. What this
    /// run does not read again is still reported, so a check that reads less never
    /// forgets it.
    pub earlier_copies: Vec<(BlobId, PackId)>,
    pub earlier_packs: Vec<PackId>,
}

pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    obs: &dyn CheckObserver,
) -> Result<CheckReport> {
    check_with_index(repo, opts, obs).map(|(r, _)| r)
}

/// [`check`], also returning the index as the check read it (damaged and unreadable index
/// files left out).
pub fn check_with_index(
    repo: &Repository,
    opts: &CheckOptions,
    obs: &dyn CheckObserver,
) -> Result<(CheckReport, Index)> {
    let be = repo.backend();
    let crypto = repo.crypto();
    let mut r = CheckReport::default();

    for (level, object, message, remedy) in crate::repository::open::audit(repo)? {
        match level {
            Level::Error => r.push(Severity::Error, object, message, remedy),
            Level::Notice => r.push(Severity::Notice, object, message, remedy),
            Level::NotRead => r.unread(object, message),
        }
    }
    for t in be.leftover_temp_files()? {
        r.notice(
            format!("file {}", t.name),
            format!("leftover temporary file of an interrupted write ({} bytes); the next snapshot removes it", t.size),
        );
    }

    // Index files, one by one, so one damaged file doesn't hide the others. Each is opened
    // in place and checked whole before anything of it is merged (a damaged file adds
    // nothing), then decoded straight into the index, built at its final size: no decoded
    // copy of a file, no table regrown ([`Bulk`], as `load_index`).
    let mut bulk = Bulk::default();
    let (index_files, stray) = crate::repository::index::list_files(be.as_ref())?;
    for f in stray {
        r.notice(
            format!("file {}", crate::format::text::short_name(&f.name)),
            "in index/ is not an index file (its name is not one): ignored; delete it \
             yourself if you do not need it",
        );
    }
    let max = crate::format::index_file::MAX_INDEX_FILE as u64;
    bulk.reserve_for_files(index_files.iter().map(|f| f.size.min(max)).sum());
    let start = crypto.headroom();
    for f in index_files {
        let what = format!("index {}", f.name);
        let loaded = be.read(FileKind::Index, &f.name).and_then(|mut b| {
            if Id::hash_of(&b).to_hex() != f.name {
                return Err(RepoError::corrupt(&what, "content does not match its name"));
            }
            let n = index_file::open_in_place(crypto, &mut b, &what)?;
            index_file::decode_named(
                b.get(start..start + n).unwrap_or_default(),
                &what,
                &mut Checked,
            )?;
            Ok((b, n))
        });
        let merged = loaded.and_then(|(b, n)| {
            index_file::decode_named(
                b.get(start..start + n).unwrap_or_default(),
                &what,
                &mut bulk,
            )
        });
        match merged {
            Ok(()) => {}
            Err(e) if e.is_unavailable() => {
                r.index_incomplete = true;
                r.unread(what, format!("could not be read: {e}"));
            }
            Err(e) => {
                r.index_damaged = true;
                r.push(
                    Severity::Error,
                    what,
                    e.to_string(),
                    Some(Remedy::RebuildIndex),
                )
            }
        }
    }
    let index = bulk.finish();
    for (id, loc) in index.duplicates() {
        r.notice(
            format!("blob {}", id.to_hex()),
            format!(
                "stored twice (also in pack {}); harmless, prune removes the copy",
                index.pack_of(loc).to_hex()
            ),
        );
    }

    // Packs: present, right size, header agrees with the index.
    let listed: HashMap<String, u64> = be
        .list(FileKind::Pack)?
        .into_iter()
        .map(|f| (f.name, f.size))
        .collect();
    let per_pack = index.by_pack();
    r.packs = index.packs().len();
    let mut missing_packs: HashSet<PackId> = HashSet::new();
    // Packs read whole below: their headers come from that read.
    let read_whole =
        |id: &PackId| opts.read_data.reads_every_selected() && opts.read_data.selects(id);
    let numbered: Vec<(usize, &(PackId, u64))> = index.packs().iter().enumerate().collect();
    let header_results = parallel_map(&numbered, |&(pos, (id, size))| {
        let name = id.to_hex();
        match listed.get(&name) {
            None => Err(Err(format!(
                "is missing (its {} blobs are lost unless stored elsewhere)",
                "indexed"
            ))),
            Some(&actual) if actual != *size => Err(Err(format!(
                "has {actual} bytes but the index says {size} (truncated or damaged)"
            ))),
            Some(_) if read_whole(id) => Ok(None),
            // Compared as it is read: the headers of every pack are not held at once (48
            // bytes a blob).
            Some(_) => read_header(repo, id, *size)
                .map(|h| Some(disagreement(h, &per_pack, pos)))
                .map_err(|e| {
                    if e.is_unavailable() {
                        Ok(format!("could not be read: {e}"))
                    } else {
                        Err(e.to_string())
                    }
                }),
        }
    });
    let unread_headers: HashSet<PackId> = index
        .packs()
        .iter()
        .zip(&header_results)
        .filter(|(_, res)| matches!(res, Err(Ok(_))))
        .map(|((id, _), _)| *id)
        .collect();
    // Files in data/ that no index names, and the snapshots: read before the packs' data
    // (as always), so a server lost while data is read leaves them known.
    let mut names: Vec<(&String, &u64)> = listed.iter().collect();
    names.sort();
    let unindexed: Vec<(&String, bool)> = names
        .into_iter()
        .filter(|(name, _)| {
            !name
                .parse::<PackId>()
                .map(|p| index.has_pack(&p))
                .unwrap_or(false)
        })
        .map(|(name, size)| (name, is_own_pack(repo, name, *size)))
        .collect();
    let (snaps, bad_snaps) = repo.snapshots()?;
    let mut data = (opts.read_data != ReadData::None)
        .then(|| data::read_packs(repo, &index, &per_pack, &listed, opts, obs, &unread_headers));
    for (pos, ((id, _), res)) in index.packs().iter().zip(header_results).enumerate() {
        let object = format!("pack {}", id.to_hex());
        let res = match res {
            Ok(Some(verdict)) => Ok(verdict),
            // Read whole: the header as that read decoded it; not read, nothing to say
            // here (the read-data part reports it).
            Ok(None) => match data.as_mut().and_then(|d| d.take_header(pos)) {
                Some(Ok(header)) => Ok(disagreement(header, &per_pack, pos)),
                Some(Err(msg)) => Err(Err(msg)),
                None => continue,
            },
            Err(e) => Err(e),
        };
        match res {
            // Not read: nothing is known about its bytes.
            Err(Ok(msg)) => {
                r.unread_packs.insert(*id);
                r.unread(object, msg);
            }
            Err(Err(msg)) => {
                if !listed.contains_key(&id.to_hex()) {
                    missing_packs.insert(*id);
                } else {
                    r.damaged_packs.insert(*id);
                }
                for (b, _) in &per_pack.of(pos) {
                    r.bad_blobs.insert(*b);
                }
                r.error(object, msg);
            }
            Ok(None) => {}
            Ok(Some(bad)) => {
                r.damaged_packs.insert(*id);
                r.bad_blobs.extend(bad);
                r.push(
                    Severity::Error,
                    object,
                    "the index disagrees with the pack header".into(),
                    Some(Remedy::RebuildIndex),
                );
            }
        }
    }
    for (name, own) in unindexed {
        // What prune does with it decides what is said: it removes only our own packs.
        // With an index file damaged or unread, the pack is most likely one that file
        // names, not an interrupted run's: prune refuses to run then, and removing it
        // could lose the photos in it.
        match name.parse::<PackId>() {
            Ok(p) if own && r.index_damaged => {
                r.unindexed_packs.push(p);
                r.push(
                    Severity::Notice,
                    format!("pack {name}"),
                    "is in no index file that could be read: the damaged index file may \
                     name it, and its data is kept; rebuilding the index from the packs \
                     adopts it"
                        .into(),
                    Some(Remedy::RebuildIndex),
                );
            }
            Ok(p) if own && r.index_incomplete => {
                r.unindexed_packs.push(p);
                r.notice(
                    format!("pack {name}"),
                    "is in no index file that could be read: the index file that could not \
                     be read may name it, and its data is kept; check again when the \
                     storage answers",
                );
            }
            Ok(p) if own => {
                r.unindexed_packs.push(p);
                r.push(
                    Severity::Notice,
                    format!("pack {name}"),
                    "is not in any index (left by an interrupted run)".into(),
                    Some(Remedy::PruneOrAdopt),
                );
            }
            _ => r.notice(
                format!("file {name}"),
                "in data/ is not a pack of this repository: left alone (prune never removes \
                 it); delete it yourself if you do not need it",
            ),
        }
    }
    r.blobs = index.blob_count();
    r.missing_packs = missing_packs;

    // Snapshots and their trees.
    r.snapshots = snaps.len();
    for (name, e) in bad_snaps {
        if e.is_unavailable() {
            r.unread(
                format!("snapshot {name}"),
                format!("could not be read: {e}"),
            );
        } else {
            r.error(format!("snapshot {name}"), format!("cannot be read: {e}"));
        }
    }

    if let Some(d) = data {
        data::apply(d, &index, &mut r);
    }
    data::earlier_damage(&mut r, &index, opts);
    drop(per_pack);
    trees::walk_snapshots(repo, &index, &snaps, &mut r);
    Ok((r, index))
}

/// Where a pack's header and the index disagree about it: `None` when they agree, else
/// the indexed blobs the header does not hold where the index says. Compared in place
/// (the header sorted by offset, the index's entries as they come): a pack of a hundred
/// thousand tiny blobs made three more lists of them per pack being checked.
fn disagreement(
    mut header: Vec<PackEntry>,
    by_pack: &ByPack<'_>,
    pos: usize,
) -> Option<Vec<BlobId>> {
    header.sort_by_key(|e| e.offset);
    let key = |(id, l): (BlobId, BlobLocation)| (id, l.offset, l.length);
    let indexed = by_pack.iter(pos);
    if header.len() == indexed.len()
        && header
            .iter()
            .zip(indexed)
            .all(|(h, i)| (h.id, h.offset, h.length) == key(i))
    {
        return None;
    }
    let header_ids: HashSet<(BlobId, u32, u32)> =
        header.iter().map(|e| (e.id, e.offset, e.length)).collect();
    Some(
        by_pack
            .iter(pos)
            .map(key)
            .filter(|e| !header_ids.contains(e))
            .map(|e| e.0)
            .collect(),
    )
}

/// A receiver of an index file's contents that keeps nothing: the file is checked whole
/// before it is merged.
struct Checked;

impl index_file::IndexSink for Checked {
    fn pack(&mut self, _: PackId, _: u64, _: usize) {}
    fn entry(&mut self, _: PackEntry) {}
}

/// Is the file `name` (of `size` bytes) in `data/` a pack of this repository — left by an
/// interrupted run — rather than a file someone else put there? Its name must be a pack id
/// and its header must open under this repository's key (in an unencrypted repository:
/// decode as a pack header). `prune` removes nothing else, and `check` says so.
pub(crate) fn is_own_pack(repo: &Repository, name: &str, size: u64) -> bool {
    match name.parse::<PackId>() {
        Ok(id) if id.to_hex() == name => read_header(repo, &id, size).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod tests;
