//! Carrying out a [`PrunePlan`] in the order that keeps every instant safe (invariant 2):
//! new packs (then [`crate::storage::Backend::packs_done`]) → new index files (the last superseding the old ones) → old index files →
//! removed and repacked packs → old unindexed packs and leftover temporary files.

use std::collections::HashSet;

use serde::Serialize;

use super::{Action, MAX_INDEX_BLOBS, PruneObserver, PrunePlan, PruneWarning};
use crate::error::{PruneError, RepoError, Result};
use crate::format::blob::{self, BlobType, EncodedBlob};
use crate::format::id::{Id, IndexId, PackId};
use crate::format::pack::PackWriter;
use crate::repository::Repository;
use crate::repository::index::{IdMap, IndexFile, IndexedPack};
use crate::storage::FileKind;

/// What [`execute`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub packs_written: u64,
    pub bytes_written: u64,
    pub blobs_repacked: u64,
    pub index_files_written: usize,
    pub index_files_removed: usize,
    pub packs_removed: u64,
    pub bytes_removed: u64,
    pub temp_files_removed: usize,
    /// Packs that were to be repacked but hold a damaged blob: left as they are.
    pub damaged_packs_kept: Vec<PackId>,
    /// bytes_removed − bytes_written.
    pub bytes_freed: i64,
}

/// Write a content-named file once; an existing file with the same name and content (an
/// earlier, interrupted run in an unencrypted repository writes identical bytes) is fine.
fn write_named(repo: &Repository, kind: FileKind, name: &str, bytes: &[u8]) -> Result<()> {
    let be = repo.backend();
    if be.exists(kind, name)? {
        let existing = be.read(kind, name)?;
        if Id::hash_of(&existing).to_hex() == name {
            return Ok(());
        }
        return Err(RepoError::corrupt(
            format!("{} {name}", kind.name()),
            "exists but its content does not match its name",
        ));
    }
    be.write(kind, name, bytes)
}

struct Writers<'a> {
    repo: &'a Repository,
    pack_size: usize,
    data: PackWriter,
    tree: PackWriter,
    written: Vec<IndexedPack>,
    report: &'a mut PruneReport,
}

impl Writers<'_> {
    /// Room for a full pack and its sealed header.
    fn capacity(&self) -> usize {
        self.pack_size + (64 << 10)
    }

    fn add(&mut self, blob: &EncodedBlob) -> Result<()> {
        let data_capacity = self.capacity();
        let full = {
            let w = if blob.typ == BlobType::Tree {
                &mut self.tree
            } else {
                &mut self.data
            };
            if !w.is_empty() && w.len() + blob.sealed.len() > self.pack_size {
                Some(std::mem::take(w))
            } else {
                None
            }
        };
        if let Some(w) = full {
            self.flush(w)?;
            // Data packs get their full size up front (no doubling past it), allocated once
            // the previous one is freed; tree packs are usually small and grow as needed.
            if blob.typ == BlobType::Data {
                self.data = PackWriter::new(data_capacity);
            }
        }
        let w = if blob.typ == BlobType::Tree {
            &mut self.tree
        } else {
            &mut self.data
        };
        w.add(blob);
        Ok(())
    }

    fn flush(&mut self, w: PackWriter) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let (id, bytes, blobs) = w.finish(self.repo.crypto());
        write_named(self.repo, FileKind::Pack, &id.to_hex(), &bytes)?;
        self.report.packs_written += 1;
        self.report.bytes_written += bytes.len() as u64;
        self.written.push(IndexedPack {
            id,
            size: bytes.len() as u64,
            blobs,
        });
        Ok(())
    }
}

/// Carry out a plan (the caller holds the exclusive lock).
pub fn execute(
    repo: &Repository,
    mut plan: PrunePlan,
    obs: &dyn PruneObserver,
) -> Result<PruneReport> {
    let be = repo.backend();
    let crypto = repo.crypto();
    let mut report = PruneReport::default();

    // 1. New packs with the used blobs of the packs to repack.
    let mut new_packs = Vec::new();
    if !plan.repack.is_empty() {
        obs.step("repacking");
        let mut w = Writers {
            repo,
            pack_size: repo.config().pack_size as usize,
            data: PackWriter::default(),
            tree: PackWriter::default(),
            written: Vec::new(),
            report: &mut report,
        };
        w.data = PackWriter::new(w.capacity());
        for (pos, entries) in &plan.repack {
            let info = &plan.packs[*pos as usize];
            let name = info.id.to_hex();
            let bytes = be.read(FileKind::Pack, &name)?;
            let damaged = entries.iter().find(|e| {
                let end = e.offset as usize + e.length as usize;
                end > bytes.len()
                    || blob::decode(
                        crypto,
                        &e.id,
                        e.compressed,
                        e.raw_len,
                        &bytes[e.offset as usize..end],
                    )
                    .is_err()
            });
            if let Some(e) = damaged {
                obs.warning(&PruneWarning::DamagedPackKept {
                    pack: info.id,
                    blob: e.id,
                });
                w.report.damaged_packs_kept.push(info.id);
                continue;
            }
            for e in entries {
                let start = e.offset as usize;
                w.add(&EncodedBlob {
                    id: e.id,
                    typ: e.typ,
                    raw_len: e.raw_len,
                    compressed: e.compressed,
                    sealed: bytes[start..start + e.length as usize].to_vec(),
                })?;
                w.report.blobs_repacked += 1;
            }
            obs.pack_done(bytes.len() as u64);
        }
        let (data, tree) = (std::mem::take(&mut w.data), std::mem::take(&mut w.tree));
        w.flush(data)?;
        w.flush(tree)?;
        new_packs = w.written;
    }
    // Every pack prune writes is durable: the parity of the last of them is written now,
    // on the parity thread beside the index files below and under prune's lock, not after
    // the command (format.md §15.5).
    be.packs_done();
    let new_pack_names: HashSet<String> = new_packs.iter().map(|p| p.id.to_hex()).collect();
    for id in &report.damaged_packs_kept {
        if let Some(&pos) = plan.pos_of.get(id) {
            plan.packs[pos as usize].action = Action::Keep;
        }
    }

    // 2. New index files: every kept pack (all its entries, as in its header) and every
    //    new pack. The last file lists the old index files it supersedes.
    let mut written_index: HashSet<IndexId> = HashSet::new();
    if plan.rewrites_index() {
        obs.step("writing the new index");
        let mut batch: Vec<IndexedPack> = Vec::new();
        let mut batch_blobs = 0usize;
        let mut emitted: IdMap<PackId, ()> = IdMap::default();
        let mut save = |packs: Vec<IndexedPack>, supersedes: Vec<IndexId>| -> Result<()> {
            let f = IndexFile { supersedes, packs };
            let bytes = f.seal(crypto);
            let id = IndexId(Id::hash_of(&bytes));
            write_named(repo, FileKind::Index, &id.to_hex(), &bytes)?;
            written_index.insert(id);
            Ok(())
        };
        for old in &plan.old_index {
            let name = old.to_hex();
            let bytes = be.read(FileKind::Index, &name)?;
            let file = IndexFile::open(crypto, &bytes, &format!("index {name}"))?;
            for p in file.packs {
                let keep = plan
                    .pos_of
                    .get(&p.id)
                    .is_some_and(|&pos| plan.packs[pos as usize].action == Action::Keep);
                if !keep || emitted.insert(p.id, ()).is_some() {
                    continue;
                }
                batch_blobs += p.blobs.len();
                batch.push(p);
                if batch_blobs >= MAX_INDEX_BLOBS {
                    save(std::mem::take(&mut batch), Vec::new())?;
                    batch_blobs = 0;
                }
            }
        }
        let kept = plan
            .packs
            .iter()
            .filter(|p| p.action == Action::Keep)
            .count();
        if emitted.len() != kept {
            return Err(PruneError::IndexChanged {
                found: emitted.len(),
                kept,
            }
            .into());
        }
        for p in new_packs {
            batch_blobs += p.blobs.len();
            batch.push(p);
            if batch_blobs >= MAX_INDEX_BLOBS {
                save(std::mem::take(&mut batch), Vec::new())?;
                batch_blobs = 0;
            }
        }
        save(batch, plan.old_index.clone())?;
        report.index_files_written = written_index.len();

        // 3. Old index files.
        obs.step("removing old index files");
        for old in &plan.old_index {
            if !written_index.contains(old) {
                be.remove(FileKind::Index, &old.to_hex())?;
                report.index_files_removed += 1;
            }
        }

        // 4. Removed and repacked packs.
        obs.step("removing unused packs");
        for p in plan.packs.iter().filter(|p| p.action != Action::Keep) {
            let name = p.id.to_hex();
            // Rewritten with the same bytes by this run (unencrypted repository): keep it.
            if new_pack_names.contains(&name) {
                continue;
            }
            if be.exists(FileKind::Pack, &name)? {
                be.remove(FileKind::Pack, &name)?;
                report.packs_removed += 1;
                report.bytes_removed += p.size;
            }
        }
    }

    // 5. Old packs no index names, and leftovers of interrupted writes.
    if !plan.unindexed_remove.is_empty() {
        obs.step("removing packs no index names");
    }
    for (name, size) in &plan.unindexed_remove {
        // An unencrypted repository's repack can rewrite the very pack an interrupted run
        // left behind (same bytes, same name): it is indexed now.
        if new_pack_names.contains(name) {
            continue;
        }
        be.remove(FileKind::Pack, name)?;
        report.packs_removed += 1;
        report.bytes_removed += size;
    }
    report.temp_files_removed = be.remove_leftover_temp_files(plan.min_age)?;
    report.bytes_freed = report.bytes_removed as i64 - report.bytes_written as i64;
    Ok(report)
}
