//! Step 5 of [`plan`](super::plan): packs that no index names (left by interrupted
//! snapshots or prunes) are removed once older than a safety margin. Only this
//! repository's own packs: a file someone else put in `data/` is never deleted.

use std::collections::HashMap;

use super::{PruneOptions, PruneStats};
use crate::format::id::PackId;
use crate::repository::Repository;
use crate::repository::index::Index;
use crate::storage::FileKind;

/// The unindexed packs old enough to delete (name, size), sorted by name.
pub(super) fn old_unindexed(
    repo: &Repository,
    index: &Index,
    listed: &HashMap<String, u64>,
    opts: &PruneOptions,
    st: &mut PruneStats,
) -> Vec<(String, u64)> {
    let be = repo.backend();
    let mut remove = Vec::new();
    for (name, size) in listed {
        let Ok(id) = name.parse::<PackId>() else {
            st.foreign_files += 1;
            continue;
        };
        if index.has_pack(&id) {
            continue;
        }
        if !crate::ops::checker::is_own_pack(repo, name, *size) {
            st.foreign_files += 1;
            continue;
        }
        st.unindexed_packs += 1;
        st.unindexed_bytes += size;
        let old_enough = match be.age_secs(FileKind::Pack, name) {
            Ok(Some(age)) => age >= opts.unindexed_min_age,
            Ok(None) => opts.unindexed_min_age == 0,
            Err(_) => false,
        };
        if old_enough {
            st.unindexed_remove_packs += 1;
            st.unindexed_remove_bytes += size;
            remove.push((name.clone(), *size));
        }
    }
    remove.sort();
    remove
}
