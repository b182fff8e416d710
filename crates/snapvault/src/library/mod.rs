//! The phone's Photos library at snapshot time: a consistent private copy of
//! `PhotoData/Photos.sqlite` with its `-wal` and `-shm` (pulled together, and taken from the
//! previous snapshot instead of the phone when none of them changed), the account of the
//! library against the snapshot's files, and the line that says it.
//!
//! Nothing here may fail a snapshot: a database that cannot be pulled or read is a warning,
//! and the account then counts files only (`source: files`).

pub mod catalog;
pub mod filter;
pub mod gone;

use std::collections::HashSet;
use std::io::Write;

use anyhow::{Context, Result, anyhow};
use snapvault_photolib::{Library, account};
use snapvault_repo::index::Index;
use snapvault_repo::snapshot::{LibraryAccount, Snapshot};
use snapvault_repo::tree::{Node, NodeKind};
use snapvault_repo::{BlobId, Repository};
use snapvault_source::DeviceEntry;

use crate::fmt;
use crate::iphone::{DatabaseCopy, IphoneSource};

/// Copies of the database taken before giving up on a database that keeps changing.
const PULL_ATTEMPTS: usize = 3;

/// The library as read for this snapshot, or why it could not be.
pub struct Prepared {
    pub library: std::result::Result<Library, String>,
    /// Whether the database files were transferred from the phone (else: reused).
    pub pulled: bool,
}

/// Make the database copy the snapshot will store, and read the library from it. `parents`
/// are the snapshots the run compares with (newest first).
pub fn prepare(
    phone: &IphoneSource,
    repo: &Repository,
    index: &Index,
    parents: &[&Snapshot],
    quiet_json: bool,
) -> Prepared {
    if phone.database.is_empty() {
        return Prepared {
            library: Err("the phone has no PhotoData/Photos.sqlite".into()),
            pulled: false,
        };
    }
    let reused = parents.iter().find_map(|p| {
        from_snapshot(repo, index, p, &phone.database)
            .ok()
            .flatten()
    });
    let (copy, pulled) = match reused {
        Some(c) => (Ok(c), false),
        None => (pull(phone, quiet_json), true),
    };
    let copy = match copy {
        Ok(c) => c,
        Err(e) => {
            return Prepared {
                library: Err(format!("it could not be copied from the phone: {e:#}")),
                pulled,
            };
        }
    };
    let library = snapvault_photolib::read_copy_of(&copy.dir.path().join("Photos.sqlite"))
        .map_err(|e| e.to_string());
    phone.use_database_copy(copy);
    Prepared { library, pulled }
}

/// The phone's library as it is now (for `verify-device`): the database copied from the
/// phone and read; why not when it could not be.
pub fn read_phone(phone: &IphoneSource) -> std::result::Result<Library, String> {
    if phone.database.is_empty() {
        return Err("the phone has no PhotoData/Photos.sqlite".into());
    }
    let copy =
        pull(phone, true).map_err(|e| format!("it could not be copied from the phone: {e:#}"))?;
    snapvault_photolib::read_copy_of(&copy.dir.path().join("Photos.sqlite"))
        .map_err(|e| e.to_string())
}

fn same_files(a: &[DeviceEntry], b: &[DeviceEntry]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter()
                .any(|y| y.path == x.path && y.size == x.size && y.mtime_ns == x.mtime_ns)
        })
}

/// Copy the database files from the phone, again until two listings around a copy agree
/// (photolibraryd may write while they are read).
fn pull(phone: &IphoneSource, quiet: bool) -> Result<DatabaseCopy> {
    let mut before = phone.database.clone();
    for attempt in 1..=PULL_ATTEMPTS {
        let dir = tempfile::Builder::new()
            .prefix("snapvault-phone-db-")
            .tempdir()
            .context("creating a temporary folder")?;
        let mut entries = Vec::new();
        for e in &before {
            let name = e
                .path
                .rsplit_once('/')
                .map(|(_, n)| n)
                .ok_or_else(|| anyhow!("bad database path {}", e.path))?;
            let local = dir.path().join(name);
            let mut out = std::fs::File::create(&local)
                .with_context(|| format!("creating {}", local.display()))?;
            let mut r = phone
                .device
                .open(&e.path)
                .with_context(|| format!("opening {}", e.path))?;
            let n =
                std::io::copy(&mut r, &mut out).with_context(|| format!("reading {}", e.path))?;
            out.flush()?;
            entries.push(DeviceEntry {
                size: n,
                ..e.clone()
            });
        }
        let mut after = Vec::new();
        for f in snapvault_photolib::DATABASE_FILES {
            if let Some(e) = phone.device.stat(f)? {
                after.push(e);
            }
        }
        if same_files(&before, &after) && same_files(&entries, &after) {
            return Ok(DatabaseCopy { dir, entries });
        }
        if attempt == PULL_ATTEMPTS {
            if !quiet {
                eprintln!(
                    "warning: the Photos library database kept changing while it was copied ({PULL_ATTEMPTS} tries); the copy stored may be inconsistent"
                );
            }
            return Ok(DatabaseCopy { dir, entries });
        }
        before = after;
    }
    Err(anyhow!("the database could not be copied"))
}

/// The database files from a snapshot that holds exactly the phone's (same names, sizes
/// and times): read from the repository, nothing transferred. `None` when it holds others.
fn from_snapshot(
    repo: &Repository,
    index: &Index,
    snap: &Snapshot,
    phone: &[DeviceEntry],
) -> Result<Option<DatabaseCopy>> {
    let mut held = Vec::new();
    for e in phone {
        let Some(node) = tree_file(repo, index, &snap.tree, &e.path)? else {
            return Ok(None);
        };
        if node.size != e.size || node.mtime != e.mtime_ns {
            return Ok(None);
        }
        held.push((e.clone(), node));
    }
    // The snapshot must not hold a companion the phone no longer has (a stale -wal).
    for f in snapvault_photolib::DATABASE_FILES {
        if !phone.iter().any(|e| e.path == f) && tree_file(repo, index, &snap.tree, f)?.is_some() {
            return Ok(None);
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("snapvault-phone-db-")
        .tempdir()?;
    for (e, node) in &held {
        let name = e.path.rsplit_once('/').map_or(e.path.as_str(), |(_, n)| n);
        let mut out = std::fs::File::create(dir.path().join(name))?;
        write_node(repo, index, node, &mut out)?;
    }
    Ok(Some(DatabaseCopy {
        dir,
        entries: phone.to_vec(),
    }))
}

/// Write a stored file's content, chunk by chunk.
pub fn write_node(
    repo: &Repository,
    index: &Index,
    node: &Node,
    out: &mut impl Write,
) -> Result<u64> {
    let mut n = 0;
    for id in &node.content {
        let b = repo.read_blob(index, id)?;
        out.write_all(&b)?;
        n += b.len() as u64;
    }
    out.flush()?;
    Ok(n)
}

/// The file node at `path` (`/`-separated) under the tree `root`.
pub fn tree_file(
    repo: &Repository,
    index: &Index,
    root: &BlobId,
    path: &str,
) -> Result<Option<Node>> {
    let mut tree_id = *root;
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let tree = repo.load_tree(index, &tree_id)?;
        let Some(node) = tree.nodes.into_iter().find(|n| n.name.0 == part.as_bytes()) else {
            return Ok(None);
        };
        match (parts.peek().is_none(), node.kind, node.subtree) {
            (true, NodeKind::File, _) => return Ok(Some(node)),
            (false, NodeKind::Dir, Some(sub)) => tree_id = sub,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// The key that ties a file to its asset: the original's folder and name stem for DCIM
/// and CPLAssets files (a Live Photo's video and sidecars fold to the still's, see
/// `snapvault_media::pair_stem`) and for the files of an edit in `PhotoData/Mutations`.
pub fn stem_key(path: &str) -> String {
    if let Some((key, _)) = edit_in(path) {
        return key;
    }
    match snapvault_media::pair_stem(path.as_bytes()) {
        Some(k) => String::from_utf8_lossy(&k).into_owned(),
        None => path.to_string(),
    }
}

/// A file of an edit made in Photos (`PhotoData/Mutations/<folder>/<name>/Adjustments/…`)
/// wherever the media root sits in the snapshot: at its root for a phone, under the
/// folder's name (`iPhone/PhotoData/…`) for a folder snapshot of a copied media root. The
/// [`stem_key`] of its original (`iPhone/DCIM/100APPLE/IMG_0002`), and whether it is the
/// rendered edit (`FullSizeRender.*`).
pub fn edit_in(path: &str) -> Option<(String, bool)> {
    const M: &str = "/PhotoData/Mutations/";
    let at = match path.strip_prefix(&M[1..]) {
        Some(_) => 0,
        None => path.find(M)? + 1,
    };
    let (prefix, rest) = path.split_at(at);
    let (dir, stem, render) = snapvault_photolib::edit_of(rest)?;
    Some((format!("{prefix}{dir}/{stem}"), render))
}

/// Where the edit of the original at `path` may be kept, as [`edit_in`] recognises it:
/// `PhotoData/Mutations/<folder>/<name>/Adjustments` with the media root at the snapshot's
/// root first (a phone), then at each folder above the original (`iPhone/PhotoData/…` for
/// a folder snapshot of a copied media root). The caller takes the first that exists.
pub fn adjustments_dirs(path: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(0)
        .chain(path.match_indices('/').map(|(i, _)| i + 1))
        .map(move |at| {
            let (prefix, rest) = path.split_at(at);
            format!("{prefix}{}", snapvault_photolib::adjustments_dir(rest))
        })
}

/// [`stem_key`]s of the assets whose original is only in iCloud.
pub fn cloud_only_stems(lib: &Library) -> HashSet<String> {
    lib.assets
        .iter()
        .filter(|a| a.original == snapvault_photolib::Availability::CloudOnly)
        .map(|a| stem_key(&a.path()))
        .collect()
}

/// Is this a photo or video original on the phone (for the file-based account)?
fn is_original(path: &str) -> bool {
    let name = path.rsplit_once('/').map_or(path, |(_, n)| n);
    let kind = snapvault_media::kind_of(name.as_bytes(), &[]);
    (path.starts_with("DCIM/") || path.starts_with("PhotoData/CPLAssets/"))
        && matches!(
            kind,
            snapvault_media::MediaKind::Photo | snapvault_media::MediaKind::Video
        )
}

/// The account of the library (or, without it, of the files) against the paths the
/// snapshot holds; `skipped` are the files that could not be read.
pub fn account_of(
    library: &std::result::Result<Library, String>,
    stored: &HashSet<String>,
    skipped: &HashSet<String>,
) -> LibraryAccount {
    match library {
        Ok(lib) => {
            let a = account(lib, stored);
            LibraryAccount {
                source: "photos.sqlite".into(),
                schema: Some(lib.generation.table().into()),
                assets: a.assets,
                backed_up: a.backed_up,
                icloud_only: a.availability_known.then_some(a.icloud_only),
                not_read: Some(a.not_read),
                recently_deleted: a.recently_deleted,
                edited: a.edited,
                edits_backed_up: Some(a.edits_backed_up),
                note: None,
            }
        }
        Err(why) => {
            let backed_up = stored.iter().filter(|p| is_original(p)).count() as u64;
            let not_read = skipped.iter().filter(|p| is_original(p)).count() as u64;
            let renders = snapvault_photolib::edited_stems(stored.iter().map(String::as_str));
            LibraryAccount {
                source: "files".into(),
                schema: None,
                assets: backed_up + not_read,
                backed_up,
                icloud_only: None,
                not_read: Some(not_read),
                recently_deleted: None,
                edited: None,
                edits_backed_up: Some(renders.len() as u64),
                note: Some(why.clone()),
            }
        }
    }
}

/// `48,213`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The lines that tell a user what the snapshot holds of the library.
pub fn lines(a: &LibraryAccount) -> Vec<String> {
    let mut out = Vec::new();
    if a.source == "files" {
        out.push(format!(
            "library: {} photo and video files backed up{} (Photos.sqlite could not be used: {}; which photos are only in iCloud or in Recently Deleted is unknown)",
            count(a.backed_up),
            match a.not_read {
                Some(n) if n > 0 => format!(", {} could not be read", count(n)),
                _ => String::new(),
            },
            a.note.as_deref().unwrap_or("unknown reason")
        ));
        return out;
    }
    let icloud = match a.icloud_only {
        Some(n) => format!("{} only in iCloud (not on this phone)", count(n)),
        None => "only in iCloud: unknown (this database does not say)".to_string(),
    };
    let deleted = match a.recently_deleted {
        Some(n) => format!("{} in Recently Deleted", count(n)),
        None => "Recently Deleted: unknown".to_string(),
    };
    let mut line = format!(
        "library: {} assets — {} backed up, {icloud}, {deleted}",
        count(a.assets),
        count(a.backed_up)
    );
    if let Some(n) = a.not_read.filter(|n| *n > 0) {
        line.push_str(&format!(
            "; {} listed but not backed up (not read from the phone)",
            count(n)
        ));
    }
    out.push(line);
    if let (Some(e), Some(b)) = (a.edited, a.edits_backed_up)
        && e > 0
    {
        out.push(format!(
            "edits: {} of {} edited photos have their edit backed up",
            count(b.min(e)),
            count(e)
        ));
    }
    out
}

/// Summary of what `/PhotoData` added to a phone snapshot, for the first line.
pub fn photodata_words(phone: &IphoneSource) -> String {
    if phone.photodata_files == 0 {
        format!(
            "{} files, {} under /DCIM",
            phone.files,
            fmt::size(phone.bytes)
        )
    } else {
        format!(
            "{} files, {} (/DCIM, and {} edits, iCloud downloads and library files in /PhotoData)",
            phone.files,
            fmt::size(phone.bytes),
            phone.photodata_files
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every place [`adjustments_dirs`] offers is one [`edit_in`] takes for an edit of
    /// that original; the root comes first.
    #[test]
    fn adjustments_dirs_are_where_edit_in_finds_edits() {
        let path = "iPhone/DCIM/100APPLE/IMG_0002.JPG";
        let dirs: Vec<String> = adjustments_dirs(path).collect();
        assert_eq!(
            dirs[..2],
            [
                "PhotoData/Mutations/iPhone/DCIM/100APPLE/IMG_0002/Adjustments",
                "iPhone/PhotoData/Mutations/DCIM/100APPLE/IMG_0002/Adjustments",
            ]
        );
        assert_eq!(dirs.len(), 4, "{dirs:?}");
        let at_root: Vec<String> = adjustments_dirs("IMG_0002.JPG").collect();
        assert_eq!(at_root, ["PhotoData/Mutations/IMG_0002/Adjustments"]);
        // The one that sits where the media root is maps back to the original's stem.
        let render = format!("{}/FullSizeRender.jpg", dirs[1]);
        assert_eq!(edit_in(&render), Some((stem_key(path), true)), "{render}");
    }
}
