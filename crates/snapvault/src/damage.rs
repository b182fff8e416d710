//! The damage list: which stored copies of which blobs `check` found damaged, and which
//! packs. It lives in the cache folder (`damaged.json`) and is merged across runs: a later
//! check that reads less (a subset, or no data at all) never forgets what an earlier one
//! found. An entry goes away only when its copy is read again and verifies, or when the copy
//! is no longer in the index (`repair` dropped it, prune removed it). A blob with a good copy
//! elsewhere (stored again by a snapshot: healed) is no longer read again from the source,
//! but its damaged copy stays listed until `repair` drops it.
//!
//! `snapshot` stores unhealed blobs again from the source; `prune` refuses while the list
//! names copies still in the index (a repair is pending).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use snapvault_repo::checker::CheckReport;
use snapvault_repo::index::Index;
use snapvault_repo::{BlobId, PackId, Repository};

const FILE: &str = "damaged.json";
const VERSION: u32 = 2;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DamageList {
    version: u32,
    /// Blob → the packs holding a damaged copy of it.
    blobs: BTreeMap<BlobId, BTreeSet<PackId>>,
    /// Packs found damaged as a whole (wrong size or hash, damaged header, missing).
    packs: BTreeSet<PackId>,
    /// Blobs snapshots use that no index names (a pack lost, or dropped by `repair` while a
    /// snapshot still needs it): what `copy` from a repository that has them does not
    /// replace (`repair --from` does). Set by every check that could read the whole index.
    #[serde(default)]
    lost: BTreeSet<BlobId>,
}

fn path(repo_id: &str) -> Option<PathBuf> {
    crate::cache::dir(repo_id).map(|d| d.join(FILE))
}

/// When the damage list was last written, and its length (`None`: there is none): a
/// running `browse` compares it before each page to notice a `check` that ran meanwhile.
pub fn stamp(repo_id: &str) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path(repo_id)?).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl DamageList {
    /// The list for a repository; empty when there is none (or no usable cache).
    pub fn load(repo_id: &str) -> DamageList {
        let Some(bytes) = path(repo_id).and_then(|p| std::fs::read(p).ok()) else {
            return DamageList::default();
        };
        match serde_json::from_slice::<DamageList>(&bytes) {
            Ok(l) if l.version == VERSION => l,
            // An older format named blobs without their packs: nothing to merge with.
            _ => DamageList::default(),
        }
    }

    pub fn save(&mut self, repo_id: &str) -> anyhow::Result<()> {
        self.version = VERSION;
        match path(repo_id) {
            Some(p) => crate::cache::write(&p, &serde_json::to_vec(self)?),
            None => Ok(()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty() && self.packs.is_empty()
    }

    /// Is anything known damaged or lost (`is_empty` leaves lost blobs out: they block no
    /// prune)?
    pub fn knows_damage(&self) -> bool {
        !self.is_empty() || !self.lost.is_empty()
    }

    /// Fold in one check's findings. `index` is the index that check used. Objects the
    /// check could not read change nothing: what was not read is not known either way.
    pub fn merge(&mut self, report: &CheckReport, index: &Index) {
        let bad: HashSet<(BlobId, PackId)> = report.bad_copies.iter().copied().collect();
        let read: HashSet<PackId> = report.verified.iter().copied().collect();
        // Copies read again in full that verified: no longer damaged.
        for p in &read {
            if !report.damaged_packs.contains(p) {
                self.packs.remove(p);
            }
        }
        for (b, loc) in index
            .blobs()
            .chain(index.duplicates().iter().map(|(b, l)| (b, l)))
        {
            let p = index.pack_of(loc);
            if read.contains(&p)
                && !bad.contains(&(*b, p))
                && let Some(packs) = self.blobs.get_mut(b)
            {
                packs.remove(&p);
            }
        }
        self.packs.extend(report.damaged_packs.iter().copied());
        self.packs.extend(report.missing_packs.iter().copied());
        for (b, p) in &bad {
            self.blobs.entry(*b).or_default().insert(*p);
        }
        // An index file that could not be read may name copies this index lacks: forget
        // nothing on its word.
        if !report.index_incomplete {
            self.lost = report.missing_blobs.iter().copied().collect();
            self.normalize(index);
        }
    }

    /// Forget copies the index no longer names (dropped by repair, removed by prune).
    pub fn normalize(&mut self, index: &Index) {
        self.lost.retain(|b| !index.contains(b));
        self.packs.retain(|p| index.has_pack(p));
        self.blobs.retain(|b, packs| {
            let held: HashSet<PackId> = index
                .locations(b)
                .iter()
                .map(|l| index.pack_of(l))
                .collect();
            packs.retain(|p| held.contains(p));
            !packs.is_empty()
        });
    }

    /// Blobs with no good copy: files holding them are read again and stored anew.
    pub fn unhealed(&self, index: &Index) -> HashSet<BlobId> {
        self.blobs
            .iter()
            .filter(|(b, bad)| {
                index
                    .locations(b)
                    .iter()
                    .all(|l| bad.contains(&index.pack_of(l)))
            })
            .map(|(b, _)| *b)
            .collect()
    }

    /// Damaged copies, as (blob, pack).
    pub fn copies(&self) -> Vec<(BlobId, PackId)> {
        self.blobs
            .iter()
            .flat_map(|(b, packs)| packs.iter().map(move |p| (*b, *p)))
            .collect()
    }

    /// Blobs snapshots use that no index names.
    pub fn lost_count(&self) -> usize {
        self.lost.len()
    }

    /// After `repair`: the blobs the snapshots kept still lack.
    pub fn set_lost(&mut self, lost: impl IntoIterator<Item = BlobId>) {
        self.lost = lost.into_iter().collect();
    }

    /// Packs found damaged as a whole.
    pub fn packs(&self) -> Vec<PackId> {
        self.packs.iter().copied().collect()
    }

    /// What a pending repair is about, for messages: (damaged copies, damaged packs).
    pub fn counts(&self) -> (usize, usize) {
        (self.blobs.values().map(|p| p.len()).sum(), self.packs.len())
    }

    /// Packs known damaged (they never count as verified).
    pub fn damaged_packs(&self) -> impl Iterator<Item = &PackId> {
        self.packs
            .iter()
            .chain(self.blobs.values().flat_map(|p| p.iter()))
    }
}

/// Refuse to go on while `check` found damage that no repair has dealt with: prune would
/// throw away copies `repair` needs to judge. Normalizes (and saves) the list first.
pub fn refuse_if_repair_pending(repo: &Repository, what: &str) -> anyhow::Result<()> {
    let repo_id = &repo.config().id;
    let mut list = DamageList::load(repo_id);
    if list.is_empty() {
        return Ok(());
    }
    // A damaged index file stops prune by itself (it must know every blob).
    let Ok(loaded) = repo.load_index() else {
        return Ok(());
    };
    list.normalize(&loaded.index);
    let _ = list.save(repo_id);
    if list.is_empty() {
        return Ok(());
    }
    let (copies, packs) = list.counts();
    anyhow::bail!(
        "`check` found damage that is not repaired yet ({copies} damaged blob copies, {packs} damaged \
         pack(s)); {what} changed nothing, so that `repair` can still use every intact byte. Run \
         `snapvault repair` to see the plan and `snapvault repair --apply` to carry it out, then \
         {what} again"
    )
}
