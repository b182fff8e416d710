//! How far a snapshot's folder listings may expand. Identical folders share one tree blob,
//! so a listing of N entries can be reached many times: a snapshot crafted from 22 tree
//! blobs, each naming the next twice, expands to 4 million paths. Walks that hold every
//! path (ls, restore, diff, find) count the paths they list against the distinct entries the listings
//! they read hold, and stop with an error naming the snapshot once the repetition is out of
//! all proportion; `check` applies the same rule to each whole snapshot.

use std::collections::HashSet;

use crate::error::{RepoError, Result};
use crate::format::id::BlobId;

/// Up to this many paths a snapshot is always listed, however much its folders repeat.
pub(crate) const PATHS_ALWAYS_LISTED: u64 = 100_000;
/// Beyond [`PATHS_ALWAYS_LISTED`], the paths may be at most this many times the distinct
/// entries: a backup holding a few copies of a library repeats it a few times, not 16.
pub(crate) const MAX_REPETITION: u64 = 16;

/// Is `paths` reached from `entries` distinct folder entries out of all proportion?
pub(crate) fn too_expanded(paths: u64, entries: u64) -> bool {
    paths > PATHS_ALWAYS_LISTED && paths > MAX_REPETITION.saturating_mul(entries)
}

/// Explain `too_expanded`: `paths` is the whole count, or with `so_far` where a walk stopped.
pub fn describe(paths: u64, entries: u64, so_far: bool) -> String {
    let at_least = if so_far { "more than " } else { "" };
    format!(
        "its folders expand to {at_least}{} paths from {entries} distinct entries: the same \
         folder listings are repeated over and over ({MAX_REPETITION}× is the most snapvault \
         accepts beyond {PATHS_ALWAYS_LISTED} paths), which a crafted snapshot does to exhaust \
         memory and time",
        paths - so_far as u64
    )
}

/// A walk's running count of paths and of the distinct entries behind them.
pub struct Expansion {
    /// For messages: the snapshot or tree walked.
    what: String,
    paths: u64,
    entries: u64,
    seen: HashSet<BlobId>,
}

impl Expansion {
    pub fn new(what: impl Into<String>) -> Expansion {
        Expansion {
            what: what.into(),
            paths: 0,
            entries: 0,
            seen: HashSet::new(),
        }
    }

    /// The walk read the tree `id` with `n` entries (counted once however often read).
    pub fn enter(&mut self, id: &BlobId, n: usize) {
        if self.seen.insert(*id) {
            self.entries += n as u64;
        }
    }

    /// The walk lists one more path.
    pub fn path(&mut self) -> Result<()> {
        self.paths += 1;
        if too_expanded(self.paths, self.entries) {
            return Err(RepoError::corrupt(
                &self.what,
                format!(
                    "{}; refusing to list it",
                    describe(self.paths, self.entries, true)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_is_bounded_beyond_the_floor() {
        assert!(!too_expanded(PATHS_ALWAYS_LISTED, 1));
        assert!(too_expanded(PATHS_ALWAYS_LISTED + 1, 1));
        // A million distinct files, each listed once; or listed 16 times: fine.
        assert!(!too_expanded(1_000_000, 1_000_000));
        assert!(!too_expanded(16_000_000, 1_000_000));
        assert!(too_expanded(16_000_001, 1_000_000));
        let mut e = Expansion::new("snapshot x");
        let id = BlobId::default();
        e.enter(&id, 34);
        e.enter(&id, 34);
        let n = (0..200_000).take_while(|_| e.path().is_ok()).count() as u64;
        assert_eq!(n, PATHS_ALWAYS_LISTED);
    }
}
