//! Which photos their source no longer holds, and why: deleted (or moved away) on the phone
//! or in the folder, or sent to iCloud by "Optimize iPhone Storage" (the phone's library
//! still lists the asset, its original is only in iCloud). Used by `photos`, `diff` and
//! `browse`, so all three say the same of the same photo.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use snapvault_catalog::{Catalog, PhotoRow};
use snapvault_repo::{Repository, SnapshotId};

use super::stem_key;

/// Why a photo is no longer on its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// Not on the phone any more, and its library does not keep it in iCloud either.
    Phone,
    /// Not in the source folder any more.
    Folder,
    /// Its original is only in iCloud now: not deleted, only no longer on the phone.
    ICloud,
}

impl Left {
    /// Is this a photo the source lost (deleted, moved away), not one kept in iCloud?
    pub fn vanished(self) -> bool {
        self != Left::ICloud
    }
}

/// The newest complete snapshot of each source, to tell photos still on the phone (or in
/// the folder) from photos only the backups hold. A partial or incomplete snapshot does
/// not count: a photo it lacks may simply not have been read.
pub struct Gone {
    /// Snapshot → (its source's key, its time, phone or folder).
    of: HashMap<SnapshotId, (String, i64, bool)>,
    /// Source key → time of its newest complete snapshot.
    newest: HashMap<String, (i64, SnapshotId)>,
    /// Source key → the assets the newest complete snapshot's Photos library keeps only in
    /// iCloud ([`stem_key`]s; empty for folders and snapshots without a library).
    cloud: HashMap<String, HashSet<String>>,
}

impl Gone {
    /// From the repository's snapshot list and the libraries the catalog recorded.
    pub fn new(repo: &Repository, cat: &Catalog) -> Result<Gone> {
        let (all, _) = repo.snapshots()?;
        let mut of = HashMap::new();
        let mut newest: HashMap<String, (i64, SnapshotId)> = HashMap::new();
        for (id, s) in &all {
            let key = s.source.group_key(&s.hostname);
            of.insert(*id, (key.clone(), s.time, s.source.device.is_some()));
            if !s.incomplete {
                let n = newest.entry(key).or_insert((s.time, *id));
                if s.time > n.0 {
                    *n = (s.time, *id);
                }
            }
        }
        let mut cloud = HashMap::new();
        for (key, (_, id)) in &newest {
            let phone = of.get(id).is_some_and(|o| o.2);
            if !phone {
                continue;
            }
            let stems: HashSet<String> = match cat.library_of(id)? {
                Some(lib) => lib
                    .assets
                    .iter()
                    .filter(|a| a.cloud_only)
                    .map(|a| stem_key(&a.path))
                    .collect(),
                None => HashSet::new(),
            };
            cloud.insert(key.clone(), stems);
        }
        Ok(Gone { of, newest, cloud })
    }

    /// For a photo its source no longer holds: why, the last snapshot holding it, and that
    /// snapshot's time.
    pub fn last_in(&self, r: &PhotoRow) -> Option<(Left, SnapshotId, i64)> {
        let (key, time, phone) = self.of.get(&r.latest_snapshot)?;
        let (newest, _) = self.newest.get(key)?;
        if newest <= time {
            return None;
        }
        let why = if !phone {
            Left::Folder
        } else if self.in_icloud(key, &r.latest_path) {
            Left::ICloud
        } else {
            Left::Phone
        };
        Some((why, r.latest_snapshot, *time))
    }

    /// Is the photo at `path` (as a snapshot of source `key` held it) only in iCloud now?
    pub fn in_icloud(&self, key: &str, path: &str) -> bool {
        self.cloud
            .get(key)
            .is_some_and(|c| c.contains(&stem_key(path)))
    }

    /// Was the photo the source no longer holds deleted or moved away (not sent to iCloud)?
    pub fn vanished(&self, r: &PhotoRow) -> bool {
        self.last_in(r).is_some_and(|(why, _, _)| why.vanished())
    }
}
