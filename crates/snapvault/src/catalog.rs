//! The local photo catalog (SQLite, in the cache folder), opened and brought up to date
//! with the repository. It is a cache: if it is missing or damaged it is rebuilt.

use anyhow::{Context, Result};
use snapvault_catalog::Catalog;
use snapvault_repo::Repository;
use snapvault_repo::index::Index;

pub fn open_synced(repo: &Repository, index: &Index, verbose: bool) -> Result<Catalog> {
    open_synced_then(repo, index, verbose, |_| Ok(()))
}

/// [`open_synced`], running `first` on the synced catalog before the phone libraries are
/// filled in (a snapshot records the library it has just read).
pub fn open_synced_then(
    repo: &Repository,
    index: &Index,
    verbose: bool,
    first: impl FnOnce(&mut Catalog) -> Result<()>,
) -> Result<Catalog> {
    // Without a usable cache folder the catalog lives in memory for this run; so it does
    // when the cache's catalog cannot be opened or updated (a full disk): the catalog is a
    // cache, rebuilt from the repository, and must not stand between a user and the photos.
    let on_disk = crate::cache::dir(&repo.config().id).map(|dir| {
        let path = dir.join("catalog.sqlite");
        let synced = Catalog::open(&path)
            .with_context(|| format!("opening the photo catalog {}", path.display()))
            .and_then(|mut cat| {
                if let Some(why) = cat.recreated() {
                    eprintln!("note: the photo catalog was rebuilt ({why})");
                }
                let stats = cat
                    .sync(repo, index)
                    .with_context(|| format!("updating the photo catalog {}", path.display()))?;
                Ok((cat, stats))
            });
        synced.inspect_err(|e| {
            eprintln!(
                "warning: {}; using a photo catalog built in memory for this run instead",
                crate::exit::message(e)
            )
        })
    });
    let (mut cat, stats) = match on_disk {
        Some(Ok(synced)) => synced,
        _ => {
            let mut cat = Catalog::in_memory().context("creating the photo catalog in memory")?;
            let stats = cat
                .sync(repo, index)
                .context("updating the photo catalog")?;
            (cat, stats)
        }
    };
    for (id, why) in &stats.failed {
        eprintln!(
            "warning: snapshot {} could not be added to the photo catalog: {why}",
            id.short()
        );
    }
    if let Err(e) = first(&mut cat) {
        eprintln!(
            "warning: the photo catalog's record of the phone library was not updated ({})",
            crate::exit::message(&e)
        );
    }
    // What each phone snapshot's own library said (read back once per database content).
    if let Err(e) = crate::library::catalog::fill(&mut cat, repo, index) {
        eprintln!(
            "warning: the photo catalog's record of the phone libraries is incomplete ({})",
            crate::exit::message(&e)
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
