//! What `photos` filters on from the phone's library: per photo, the facts the Photos
//! database of the snapshot holding it gave (favourite, burst, album, Recently Deleted,
//! edited), found by the original's folder and name (a Live Photo's video and the files of
//! an edit belong to their still).

use std::collections::HashMap;

use anyhow::Result;
use snapvault_catalog::{Catalog, LibraryAsset};
use snapvault_repo::SnapshotId;

use super::stem_key;

/// The library filters of `photos`.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub edited: bool,
    pub burst: bool,
    pub favorite: bool,
    pub album: Option<String>,
    pub deleted: bool,
}

impl Filters {
    /// Does any filter need the library's facts (beyond "has an edit")?
    pub fn needs_facts(&self) -> bool {
        self.burst || self.favorite || self.album.is_some() || self.deleted
    }

    /// Does a photo with these facts pass? `has_edit`: its edit is in the backup.
    pub fn pass(&self, facts: Option<&LibraryAsset>, has_edit: bool) -> bool {
        if self.edited && !(has_edit || facts.is_some_and(|f| f.edited)) {
            return false;
        }
        if !self.needs_facts() {
            return true;
        }
        let Some(f) = facts else { return false };
        (!self.burst || f.burst.is_some())
            && (!self.favorite || f.favorite)
            && (!self.deleted || f.trashed)
            && self
                .album
                .as_ref()
                .is_none_or(|a| f.albums.iter().any(|x| x.eq_ignore_ascii_case(a)))
    }
}

/// The libraries of some snapshots, by asset key.
#[derive(Default)]
pub struct Facts {
    of: HashMap<SnapshotId, HashMap<String, LibraryAsset>>,
}

impl Facts {
    /// Load the libraries the catalog holds for `snapshots` (snapshots without one are
    /// absent: their photos have no facts).
    pub fn load(cat: &Catalog, snapshots: impl Iterator<Item = SnapshotId>) -> Result<Facts> {
        let mut out = Facts::default();
        for id in snapshots {
            if out.of.contains_key(&id) {
                continue;
            }
            let map = match cat.library_of(&id)? {
                Some(l) => l
                    .assets
                    .into_iter()
                    .map(|a| (stem_key(&a.path), a))
                    .collect(),
                None => HashMap::new(),
            };
            out.of.insert(id, map);
        }
        Ok(out)
    }

    /// The facts of the photo at `path` in `snapshot`.
    pub fn get(&self, snapshot: &SnapshotId, path: &str) -> Option<&LibraryAsset> {
        self.of.get(snapshot)?.get(&stem_key(path))
    }
}
