//! The photo catalog: a local SQLite database, one per repository, that answers "which
//! photos were taken in July 2023, in any snapshot, and where are they now?" in
//! milliseconds instead of walking every tree of every snapshot.
//!
//! It is a **cache**. The repository is the truth; the catalog holds nothing that cannot be
//! rebuilt from it. [`Catalog::sync`] brings it in line with the repository (indexes the
//! snapshots it lacks, drops the ones that were forgotten, and empties itself if it belongs
//! to another repository). The file lives at [`default_path`]:
//! `$XDG_CACHE_HOME/snapvault/catalog-<repo id>.sqlite` (or `~/.cache/snapvault/…`), owner-only
//! (it holds file names and dates of a possibly encrypted repository).
//!
//! # Schema, and why it is shaped this way
//!
//! The naive table, one row per (photo, snapshot), is 20 million rows for 200,000 photos in
//! 100 snapshots, and every new snapshot would add 200,000 rows although almost nothing
//! changed. But the repository already deduplicates what does not change: a directory whose
//! entries are unchanged is the *same tree blob* in every snapshot. So the catalog mirrors
//! that structure and indexes each distinct directory once:
//!
//! ```text
//! trees          (id, blob UNIQUE, media)            one row per distinct tree blob
//! tree_dirs      (tree, name, subtree)  PK(tree,name) its sub-directories (edges)
//! files          (content, tree, name, pair, live, mode, mtime)  PK(content,tree,name)
//!                                                     its media files (photo/video/sidecar)
//! contents       (id, key UNIQUE, kind, taken, day, date_source, content_id, size, blobs)
//!                                                     one row per distinct photo (content)
//! snapshots      (id, sid UNIQUE, time, source_key, root)
//! snapshot_dirs  (snapshot, path, tree) PK(snapshot,path)
//!                                                     where each media-holding tree sits
//!                                                     in each snapshot
//! meta           (key, value)                         repo id
//! ```
//! and, for phone snapshots, what the phone's own library said (`library.rs`:
//! `library_dbs`, `library_assets`, `snapshot_library`).
//! Indexes: `contents(day)` for date queries; `files` is a `WITHOUT ROWID` table clustered
//! by content, so a photo's occurrences are one seek away and a full listing is a merge of
//! two sequential scans; `files(tree)` serves companions and garbage collection.
//!
//! * **Identity of a photo** is its content: `key` = BLAKE3 of the concatenated blob ids of
//!   its chunks (so the same bytes under two names, or in two folders, are one photo).
//!   `kind`, `taken`, `content_id` and `size` live on the content (the first snapshot that
//!   brought it decides); `pair`, `live` (a still with a video of the same pairing key in
//!   the same directory), `mode` and `mtime` live on the occurrence (`files`), because they
//!   depend on where the file is. `blobs` (the chunk ids) is what restore needs.
//! * **Size**: rows grow with *distinct directories* and distinct photos, not with
//!   photos × snapshots. An iPhone's DCIM folders fill up to 1,000 photos and then never
//!   change, so a year of daily snapshots costs a few new versions of the one active folder
//!   per snapshot plus ~100 `snapshot_dirs` rows. Only directories that directly hold media
//!   get `snapshot_dirs` rows; `tree_dirs` keeps the rest walkable.
//! * **Sync cost is proportional to new trees.** A new snapshot is walked from its root:
//!   a tree blob already in `trees` is not read from the repository again (its sub-trees
//!   come from `tree_dirs`), so only changed directories are fetched, decrypted and
//!   inserted; the rest costs one `tree_dirs` lookup per directory to write the snapshot's
//!   `snapshot_dirs`. Each snapshot is indexed in one transaction, so an interrupted sync
//!   leaves a consistent catalog that the next sync completes. Dropping a forgotten
//!   snapshot deletes its `snapshot_dirs`, then trees no longer reachable from any snapshot
//!   root, their files, and contents no file refers to any more.
//! * **Queries** resolve the snapshot selection first (all, `--snapshot`, one source):
//!   `snapshot_dirs` of the selected snapshots is small (snapshots × media folders), and is
//!   turned in memory into, per tree, a bitset of the snapshots holding it and its most
//!   recent path. Then one SQL pass — `contents` by `day` joined with `files` (date
//!   queries), or a merge of both tables in key order (everything, a kind) — yields each
//!   photo's occurrences, content by content; grouping them gives
//!   `snapshot_count` (popcount of the union of its trees' bitsets), and `latest_path` /
//!   `latest_snapshot` (the occurrence in the most recent selected snapshot). Work is
//!   proportional to the matching photos' occurrences (≈ distinct (tree, photo) rows), never
//!   to photos × snapshots.
//!
//! Measured by `benches/catalog.rs` (200,000 photos in 100 snapshots of an iPhone-like
//! library, 2 shared cores): 385,000 `files` rows and 7,800 `snapshot_dirs` rows instead
//! of 20 million, 94 MiB on disk (≈ 470 bytes per photo, a third of it the chunk ids
//! restore needs); indexing costs ≈ 31 ms of CPU per snapshot; a month query ≈ 5 ms, a
//! year ≈ 36 ms, listing all 185,000 photos and videos ≈ 0.35 s of CPU.
//!
//! # Damage
//!
//! [`Catalog::open`] deletes and recreates a file that is not SQLite, not a snapvault
//! catalog, of another schema version, shorter than its header says (truncated), or whose
//! small tables (snapshots, trees, directories) fail `quick_check` — a check whose cost
//! does not grow with the number of photos. Damage inside the two large tables shows up as
//! `SQLITE_CORRUPT` when they are read: [`Catalog::sync`] then rebuilds by itself, and
//! [`Catalog::retry_on_damage`] wraps a query so that it is answered from a rebuilt catalog
//! ([`CatalogError::is_corruption`] tells such errors apart). [`Catalog::verify`] runs the
//! full `quick_check` (whole file) for `snapvault check`.
//!
//! A typical command:
//! ```no_run
//! # fn demo(repo: &snapvault_repo::Repository, index: &snapvault_repo::index::Index)
//! #     -> Result<(), snapvault_catalog::CatalogError> {
//! use snapvault_catalog::{Catalog, PhotoQuery};
//! let mut cat = Catalog::open_default(&repo.config().id)?;
//! cat.sync(repo, index)?;
//! let q = PhotoQuery { dates: Some("2023-07".parse()?), ..PhotoQuery::default() };
//! let (rows, extra) = cat.retry_on_damage(repo, index, |c| {
//!     let rows = c.photos(&q)?;
//!     let extra = c.companions(&q, &rows)?;
//!     Ok((rows, extra))
//! })?;
//! # let _ = (rows, extra); Ok(()) }
//! ```
//!
//! Dates: see [`DateRange`]. The catalog compares the *local* capture date as the camera
//! recorded it (the `YYYY-MM-DD` of `taken`), stored as the integer `day` = `YYYYMMDD`.
//!
//! Paths in [`PhotoRow`] are `/`-joined snapshot paths (the top-level component is the
//! backed-up folder's name, as in `snapvault ls`); a non-UTF-8 name shows lossily there.

mod date;
mod holders;
mod library;
mod query;
mod schema;
mod sync;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use snapvault_repo::RepoError;

pub use date::{DatePoint, DateRange, KindFilter, day_number};
pub use holders::{Holder, StoredContent};
pub use library::{LibraryAsset, SnapshotLibrary};
pub use query::{PhotoQuery, PhotoRow};
pub use sync::{AddStats, SyncStats};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("photo catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("photo catalog {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cache folder: neither XDG_CACHE_HOME nor HOME is set")]
    NoCacheDir,
    #[error("invalid repository id {0:?}")]
    BadRepoId(String),
    #[error("invalid date {input:?}: {reason}")]
    BadDate { input: String, reason: String },
    #[error("invalid kind {0:?}: use photo, video or live")]
    BadKind(String),
    #[error("snapshot {0} is not in the photo catalog (sync it first)")]
    UnknownSnapshot(String),
    #[error("photo catalog {path} is unusable: {reason}")]
    Unusable { path: PathBuf, reason: String },
}

impl CatalogError {
    /// Is this the database reporting damage (the file should be deleted and rebuilt)?
    pub fn is_corruption(&self) -> bool {
        match self {
            CatalogError::Sqlite(e) => schema::is_corruption(e),
            _ => false,
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// `$XDG_CACHE_HOME/snapvault/catalog-<repo id>.sqlite`, or `~/.cache/snapvault/…` when
/// `XDG_CACHE_HOME` is unset or not absolute.
pub fn default_path(repo_id: &str) -> Result<PathBuf> {
    cache_path(
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
        repo_id,
    )
}

fn cache_path(xdg: Option<OsString>, home: Option<OsString>, repo_id: &str) -> Result<PathBuf> {
    if repo_id.is_empty()
        || repo_id.len() > 128
        || !repo_id.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(CatalogError::BadRepoId(repo_id.to_string()));
    }
    let base = match xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(p) => p,
        None => match home.filter(|h| !h.is_empty()) {
            Some(h) => PathBuf::from(h).join(".cache"),
            None => return Err(CatalogError::NoCacheDir),
        },
    };
    Ok(base
        .join("snapvault")
        .join(format!("catalog-{repo_id}.sqlite")))
}

/// An open photo catalog. Not `Sync`: one per thread.
pub struct Catalog {
    conn: Connection,
    path: PathBuf,
    recreated: Option<String>,
}

impl Catalog {
    /// Open the catalog at `path`, creating it (and its folder) if missing. A file that is
    /// not SQLite, not a snapvault catalog, of another schema version, truncated, or whose
    /// small tables fail `quick_check` is deleted and recreated empty
    /// ([`Catalog::recreated`] says why); the next [`Catalog::sync`] refills it.
    pub fn open(path: &Path) -> Result<Catalog> {
        let (conn, recreated) = schema::open(path)?;
        Ok(Catalog {
            conn,
            path: path.to_path_buf(),
            recreated,
        })
    }

    /// A catalog in memory only, for a run without a usable cache folder: built from the
    /// repository each time, gone at exit.
    pub fn in_memory() -> Result<Catalog> {
        Ok(Catalog {
            conn: schema::open_in_memory()?,
            path: PathBuf::new(),
            recreated: None,
        })
    }

    /// Open the catalog for a repository at its [`default_path`].
    pub fn open_default(repo_id: &str) -> Result<Catalog> {
        Catalog::open(&default_path(repo_id)?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file was deleted and recreated when it was opened, if it was.
    pub fn recreated(&self) -> Option<&str> {
        self.recreated.as_deref()
    }

    /// Delete the file and start again empty (after a corruption error, say).
    pub fn recreate(&mut self, reason: &str) -> Result<()> {
        // Close the file before removing it.
        self.conn = Connection::open_in_memory()?;
        if self.path.as_os_str().is_empty() {
            // An in-memory catalog: the fresh connection is all there is to recreate.
            self.conn = schema::open_in_memory()?;
            self.recreated = Some(reason.to_string());
            return Ok(());
        }
        schema::remove_files(&self.path)?;
        let (conn, _) = schema::open(&self.path)?;
        self.conn = conn;
        self.recreated = Some(reason.to_string());
        Ok(())
    }

    /// Run `f`; if it meets a damaged catalog, delete the file, rebuild it from the
    /// repository and run `f` again.
    pub fn retry_on_damage<T>(
        &mut self,
        repo: &snapvault_repo::Repository,
        index: &snapvault_repo::index::Index,
        f: impl Fn(&Catalog) -> Result<T>,
    ) -> Result<T> {
        match f(self) {
            Err(e) if e.is_corruption() => {
                self.recreate(&format!("damaged: {e}"))?;
                self.sync(repo, index)?;
                f(self)
            }
            other => other,
        }
    }

    /// Run SQLite's full `quick_check` (reads the whole file; [`Catalog::open`] checks
    /// only the header and the small tables). A damaged catalog is deleted and recreated
    /// empty: returns what was wrong, and the next [`Catalog::sync`] refills it.
    pub fn verify(&mut self) -> Result<Option<String>> {
        let problem = match schema::quick_check(&self.conn) {
            Ok(p) => p,
            Err(e) if e.is_corruption() => Some(e.to_string()),
            Err(e) => return Err(e),
        };
        if let Some(p) = &problem {
            self.recreate(&format!("integrity check failed: {p}"))?;
        }
        Ok(problem)
    }

    /// Numbers of rows, for reports and tests.
    pub fn counts(&self) -> Result<Counts> {
        let n = |t: &str| -> Result<u64> {
            let v: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
            Ok(v as u64)
        };
        Ok(Counts {
            snapshots: n("snapshots")?,
            trees: n("trees")?,
            files: n("files")?,
            photos: n("contents")?,
            snapshot_dirs: n("snapshot_dirs")?,
        })
    }
}

/// Row counts of the main tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub snapshots: u64,
    pub trees: u64,
    /// Media files in distinct trees.
    pub files: u64,
    /// Distinct contents (photos, videos, sidecars).
    pub photos: u64,
    pub snapshot_dirs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_path_rules() {
        let p = cache_path(Some("/xdg".into()), Some("/home/u".into()), "ab12").unwrap();
        assert_eq!(p, PathBuf::from("/xdg/snapvault/catalog-ab12.sqlite"));
        let p = cache_path(Some("rel".into()), Some("/home/u".into()), "ab12").unwrap();
        assert_eq!(
            p,
            PathBuf::from("/home/u/.cache/snapvault/catalog-ab12.sqlite")
        );
        let p = cache_path(None, Some("/home/u".into()), "ab12").unwrap();
        assert_eq!(
            p,
            PathBuf::from("/home/u/.cache/snapvault/catalog-ab12.sqlite")
        );
        assert!(matches!(
            cache_path(None, None, "ab"),
            Err(CatalogError::NoCacheDir)
        ));
        for bad in ["", "../x", "a/b", "a.b"] {
            assert!(matches!(
                cache_path(None, Some("/h".into()), bad),
                Err(CatalogError::BadRepoId(_))
            ));
        }
    }
}
