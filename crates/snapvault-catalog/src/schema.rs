//! Creating, checking and recreating the database file.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};

use crate::library::SCHEMA as LIBRARY;
use crate::{CatalogError, Result};

/// `PRAGMA application_id`: "SVCT".
pub(crate) const APPLICATION_ID: i32 = 0x5356_4354;
/// `PRAGMA user_version`: bump on any schema change (old catalogs are then rebuilt).
pub(crate) const SCHEMA_VERSION: i32 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots(
    id INTEGER PRIMARY KEY,
    sid BLOB NOT NULL UNIQUE,
    time INTEGER NOT NULL,
    source_key TEXT NOT NULL,
    root INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS trees(
    id INTEGER PRIMARY KEY,
    blob BLOB NOT NULL UNIQUE,
    media INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tree_dirs(
    tree INTEGER NOT NULL,
    name BLOB NOT NULL,
    subtree INTEGER NOT NULL,
    PRIMARY KEY(tree, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contents(
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    taken TEXT,
    day INTEGER,
    date_source TEXT,
    content_id TEXT,
    size INTEGER NOT NULL,
    blobs BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS contents_day ON contents(day);
CREATE TABLE IF NOT EXISTS files(
    content INTEGER NOT NULL,
    tree INTEGER NOT NULL,
    name BLOB NOT NULL,
    pair TEXT,
    live INTEGER NOT NULL,
    mode INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    PRIMARY KEY(content, tree, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_tree ON files(tree);
CREATE TABLE IF NOT EXISTS snapshot_dirs(
    snapshot INTEGER NOT NULL,
    path BLOB NOT NULL,
    tree INTEGER NOT NULL,
    PRIMARY KEY(snapshot, path)
) WITHOUT ROWID;
";

/// Errors that mean the file is damaged or not a database at all.
pub(crate) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

enum Failure {
    /// The file is unusable as a catalog and may be deleted: why.
    Broken(String),
    Other(CatalogError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        if is_corruption(&e) {
            Failure::Broken(e.to_string())
        } else {
            Failure::Other(e.into())
        }
    }
}

fn sidecars(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm"), with("-journal")]
}

/// Remove the database file and its WAL / shared-memory / journal files.
pub(crate) fn remove_files(path: &Path) -> Result<()> {
    for p in std::iter::once(path.to_path_buf()).chain(sidecars(path)) {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CatalogError::Io { path: p, source: e }),
        }
    }
    Ok(())
}

/// Open (creating if needed), validate, and on a broken file delete it and start afresh.
pub(crate) fn open(path: &Path) -> Result<(Connection, Option<String>)> {
    let io = |p: &Path, e| CatalogError::Io {
        path: p.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io(dir, e))?;
    }
    match try_open(path) {
        Ok(c) => Ok((c, None)),
        Err(Failure::Other(e)) => Err(e),
        Err(Failure::Broken(reason)) => {
            remove_files(path)?;
            match try_open(path) {
                Ok(c) => Ok((c, Some(reason))),
                Err(Failure::Other(e)) => Err(e),
                Err(Failure::Broken(reason)) => Err(CatalogError::Unusable {
                    path: path.to_path_buf(),
                    reason,
                }),
            }
        }
    }
}

/// A fresh, empty catalog in memory (no cache folder to keep it in).
pub(crate) fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(&format!(
        "{SCHEMA}
         {LIBRARY}
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};
         PRAGMA temp_store = MEMORY;"
    ))?;
    Ok(conn)
}

/// A file shorter than its header says was truncated (SQLite would only notice when it
/// reads a missing page). The header's page count is trusted only when its
/// version-valid-for number matches the change counter, as SQLite does.
fn check_size(path: &Path) -> Result<(), Failure> {
    let Ok(mut f) = fs::File::open(path) else {
        return Ok(());
    };
    let mut h = [0u8; 100];
    if std::io::Read::read_exact(&mut f, &mut h).is_err() {
        return Ok(());
    }
    let be32 = |at: usize| u32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]) as u64;
    let page = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65_536,
        n => n as u64,
    };
    let (pages, counter, valid_for) = (be32(28), be32(24), be32(92));
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if counter == valid_for && pages > 0 && len < pages * page {
        return Err(Failure::Broken(format!(
            "truncated: {len} bytes, the header says {pages} pages of {page}"
        )));
    }
    Ok(())
}

/// The full `quick_check` (reads the whole file).
pub(crate) fn quick_check(conn: &Connection) -> Result<Option<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((lines != ["ok"]).then(|| lines.join("; ")))
}

fn try_open(path: &Path) -> Result<Connection, Failure> {
    if !path.exists() {
        // Leftovers of a deleted database must not be replayed into the new one.
        for p in sidecars(path) {
            let _ = fs::remove_file(p);
        }
        // Owner-only from the start: SQLite's WAL and shm files copy these permissions.
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Failure::Other(CatalogError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })
            })?;
    }
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app == 0 && version == 0 {
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables != 0 {
            return Err(Failure::Broken("not a snapvault catalog".into()));
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             {SCHEMA}
             {LIBRARY}
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;"
        ))?;
    } else if app != APPLICATION_ID {
        return Err(Failure::Broken(format!(
            "not a snapvault catalog (application id {app:#x})"
        )));
    } else if version != SCHEMA_VERSION {
        return Err(Failure::Broken(format!(
            "catalog schema version {version}, this snapvault uses {SCHEMA_VERSION}"
        )));
    } else {
        check_size(path)?;
        // The small tables, fully (cost ∝ snapshots and directories, not photos). Damage in
        // the large ones surfaces as SQLITE_CORRUPT when read: `sync` then rebuilds, and
        // `verify` runs the full check.
        for table in [
            "meta",
            "snapshots",
            "trees",
            "tree_dirs",
            "snapshot_dirs",
            "snapshot_library",
        ] {
            let check: String =
                conn.query_row(&format!("PRAGMA quick_check({table})"), [], |r| r.get(0))?;
            if check != "ok" {
                return Err(Failure::Broken(format!("integrity check failed: {check}")));
            }
        }
    }
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    // No memory map of the file: every mapped page a sync or a scan touches stays
    // resident, so a command's memory grew with the catalog (≈ 300 bytes a photo, 130 MiB
    // at 500,000 photos). Through SQLite's own cache it stays within 32 MiB.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA cache_size = -32768;
         PRAGMA temp_store = MEMORY;
         PRAGMA mmap_size = 0;",
    )?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_foreign_files_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("c.sqlite");
        let (c, why) = open(&p).unwrap();
        assert!(why.is_none());
        drop(c);
        let (c, why) = open(&p).unwrap();
        assert!(why.is_none(), "a good catalog is kept");
        drop(c);

        fs::write(&p, vec![0x5au8; 10_000]).unwrap();
        let (_, why) = open(&p).unwrap();
        assert!(why.is_some());

        // Another application's SQLite database.
        fs::remove_file(&p).unwrap();
        let c = Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(c);
        let (c, why) = open(&p).unwrap();
        assert!(why.unwrap().contains("not a snapvault catalog"));
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        drop(c);

        // An older schema version.
        let c = Connection::open(&p).unwrap();
        c.execute_batch("PRAGMA user_version = 999").unwrap();
        drop(c);
        let (_, why) = open(&p).unwrap();
        assert!(why.unwrap().contains("schema version 999"));
    }

    /// A catalog of 500,000 photos is ≈ 150 MB: mapped into the process, every page a
    /// sync or a scan touched stayed in its resident memory (130 MiB of a 243 MiB peak).
    /// Read through SQLite's own cache instead, a command's share of the catalog is that
    /// cache's bound whatever the number of photos.
    #[test]
    fn resident_memory_is_bounded_by_the_page_cache_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = open(&dir.path().join("c.sqlite")).unwrap();
        let mmap: i64 = c.query_row("PRAGMA mmap_size", [], |r| r.get(0)).unwrap();
        assert_eq!(mmap, 0, "the catalog file is memory-mapped ({mmap} bytes)");
        let cache: i64 = c.query_row("PRAGMA cache_size", [], |r| r.get(0)).unwrap();
        // Negative: KiB. At most 32 MiB.
        assert!((-32 * 1024..0).contains(&cache), "cache_size {cache}");
    }

    #[test]
    fn file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.sqlite");
        let _c = open(&p).unwrap();
        let mode = fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
}
