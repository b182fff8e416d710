//! The local photo catalog (SQLite, in the cache folder), opened and brought up to date
//! with the repository. It is a cache: if it is missing or damaged it is rebuilt.

use anyhow::{Context, Result};
use snapvault_catalog::Catalog;
use snapvault_repo::Repository;
use snapvault_repo::index::Index;

pub fn open_synced(repo: &Repository, index: &Index, verbose: bool) -> Result<Catalog> {
    // Without a usable cache folder the catalog lives in memory for this run.
    let mut cat = match crate::cache::dir(&repo.config().id) {
        Some(dir) => {
            let path = dir.join("catalog.sqlite");
            Catalog::open(&path)
                .with_context(|| format!("opening the photo catalog {}", path.display()))?
        }
        None => Catalog::in_memory().context("creating the photo catalog in memory")?,
    };
    if let Some(why) = cat.recreated() {
        eprintln!("note: the photo catalog was rebuilt ({why})");
    }
    let stats = cat
        .sync(repo, index)
        .context("updating the photo catalog")?;
    for (id, why) in &stats.failed {
        eprintln!(
            "warning: snapshot {} could not be added to the photo catalog: {why}",
            id.short()
        );
    }
    if verbose && stats.changed() {
        eprintln!(
            "photo catalog: {} snapshot(s) added, {} removed",
            stats.snapshots_added, stats.snapshots_removed
        );
    }
    Ok(cat)
}
