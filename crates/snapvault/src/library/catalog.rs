//! Filling the catalog's library tables from the snapshots: for each phone snapshot not yet
//! recorded, the Photos database it stores is read back from the repository (once per
//! distinct database content) and its facts handed to the catalog. The repository stays the
//! truth: a lost catalog is refilled the same way.

use std::collections::HashSet;

use anyhow::Result;
use snapvault_catalog::{Catalog, LibraryAsset};
use snapvault_photolib::{Availability, DATABASE_FILES, Library};
use snapvault_repo::index::Index;
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::tree::NodeKind;
use snapvault_repo::{BlobId, Repository, SnapshotId};

use super::{tree_file, write_node};

/// Record the library of every snapshot the catalog has not recorded yet. A database that
/// cannot be read is a warning; the snapshot is recorded without per-asset facts.
pub fn fill(cat: &mut Catalog, repo: &Repository, index: &Index) -> Result<()> {
    for (id, key) in cat.snapshots_without_library()? {
        let snap = match repo.load_snapshot(&id) {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "warning: snapshot {} could not be read for its photo library: {e}",
                    id.short()
                );
                continue;
            }
        };
        let account = serde_json::to_string(&snap.library)?;
        if !key.starts_with("device:") {
            cat.set_library(&id, &account, None)?;
            continue;
        }
        match database_of(repo, index, &snap)? {
            None => cat.set_library(&id, &account, None)?,
            Some(key) if cat.has_library_db(&key)? => {
                cat.set_library(&id, &account, Some((&key, "", &[])))?
            }
            Some(key) => match read_stored(repo, index, &snap) {
                Ok((lib, renders)) => {
                    let assets = facts(&lib, &renders);
                    cat.set_library(&id, &account, Some((&key, lib.generation.table(), &assets)))?
                }
                Err(e) => {
                    eprintln!(
                        "warning: the Photos library database of snapshot {} could not be read ({e:#}); `photos` filters that need it see none of its photos",
                        id.short()
                    );
                    cat.set_library(&id, &account, None)?
                }
            },
        }
    }
    Ok(())
}

/// Record a snapshot just taken, from the library already read for it (nothing is read
/// back from the repository).
pub fn record_new(
    cat: &mut Catalog,
    repo: &Repository,
    index: &Index,
    id: &SnapshotId,
    snap: &Snapshot,
    lib: &Library,
    stored: &HashSet<String>,
) -> Result<()> {
    let account = serde_json::to_string(&snap.library)?;
    let Some(key) = database_of(repo, index, snap)? else {
        return Ok(());
    };
    let renders = snapvault_photolib::edited_stems(stored.iter().map(String::as_str));
    let assets = facts(lib, &renders);
    cat.set_library(id, &account, Some((&key, lib.generation.table(), &assets)))?;
    Ok(())
}

/// The content key of the database files a snapshot holds: BLAKE3 of their names and chunk
/// ids. `None` when it holds no `Photos.sqlite`.
fn database_of(repo: &Repository, index: &Index, snap: &Snapshot) -> Result<Option<Vec<u8>>> {
    let mut h = blake3::Hasher::new();
    let mut any = false;
    for f in DATABASE_FILES {
        if let Some(node) = tree_file(repo, index, &snap.tree, f)? {
            any |= f == snapvault_photolib::DATABASE;
            h.update(f.as_bytes());
            h.update(&[0]);
            for id in &node.content {
                h.update(id.as_bytes());
            }
        }
    }
    Ok(any.then(|| h.finalize().as_bytes().to_vec()))
}

/// Read a snapshot's database back (into a private folder) and the edits it holds.
pub fn read_stored(
    repo: &Repository,
    index: &Index,
    snap: &Snapshot,
) -> Result<(Library, HashSet<String>)> {
    let dir = tempfile::Builder::new()
        .prefix("snapvault-stored-db-")
        .tempdir()?;
    for f in DATABASE_FILES {
        if let Some(node) = tree_file(repo, index, &snap.tree, f)? {
            let name = f.rsplit_once('/').map_or(f, |(_, n)| n);
            let mut out = std::fs::File::create(dir.path().join(name))?;
            write_node(repo, index, &node, &mut out)?;
        }
    }
    let lib = snapvault_photolib::read(&dir.path().join("Photos.sqlite"))?;
    let mutations = match tree_dir(repo, index, &snap.tree, "PhotoData/Mutations")? {
        Some(t) => crate::photoset::files_of(repo, index, &t)?
            .into_iter()
            .map(|(p, _)| format!("PhotoData/Mutations/{p}"))
            .collect::<Vec<_>>(),
        None => Vec::new(),
    };
    let renders = snapvault_photolib::edited_stems(mutations.iter().map(String::as_str));
    Ok((lib, renders))
}

/// The tree id of the folder at `path` under `root`.
fn tree_dir(repo: &Repository, index: &Index, root: &BlobId, path: &str) -> Result<Option<BlobId>> {
    let mut id = *root;
    for part in path.split('/') {
        let tree = repo.load_tree(index, &id)?;
        match tree.nodes.into_iter().find(|n| n.name.0 == part.as_bytes()) {
            Some(n) if n.kind == NodeKind::Dir && n.subtree.is_some() => {
                id = n.subtree.unwrap_or(id);
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(id))
}

/// The catalog's per-asset facts. An asset counts as edited when the database says so or
/// its rendered edit is in the snapshot.
pub fn facts(lib: &Library, renders: &HashSet<String>) -> Vec<LibraryAsset> {
    lib.assets
        .iter()
        .map(|a| LibraryAsset {
            path: a.path(),
            kind: a.kind.as_str().to_string(),
            taken: a.taken().map(|t| t.to_string()),
            trashed: a.trashed == Some(true),
            hidden: a.hidden == Some(true),
            favorite: a.favorite == Some(true),
            edited: a.adjusted == Some(true) || renders.contains(&a.adjustments_dir()),
            cloud_only: a.original == Availability::CloudOnly,
            burst: a.burst.clone(),
            albums: a.albums.clone(),
        })
        .collect()
}
