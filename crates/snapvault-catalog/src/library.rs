//! What a phone's own photo library said at each snapshot: the account (stored in the
//! snapshot too) and, per asset, the facts `photos` filters on (favourite, hidden, in
//! Recently Deleted, edited, only in iCloud, burst, albums).
//!
//! ```text
//! library_dbs      (id, key UNIQUE, schema)        one row per distinct database content
//! library_assets   (db, path, kind, taken, day, flags, burst, albums)  PK(db, path)
//! snapshot_library (snapshot PK, db NULL, account)  one row per indexed snapshot
//! ```
//!
//! A database is stored once per distinct content (`key`: the caller's hash of the database
//! files' chunks), so snapshots taken while the library did not change share its rows. The
//! catalog does not read databases itself: the binary parses them and hands the facts in.
//! Like everything here it is a cache, rebuilt from the snapshots when lost.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use snapvault_repo::SnapshotId;

use crate::date::day_number;
use crate::{Catalog, Result};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS library_dbs(
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    schema TEXT
);
CREATE TABLE IF NOT EXISTS library_assets(
    db INTEGER NOT NULL,
    path BLOB NOT NULL,
    kind TEXT NOT NULL,
    taken TEXT,
    day INTEGER,
    flags INTEGER NOT NULL,
    burst TEXT,
    albums TEXT,
    PRIMARY KEY(db, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshot_library(
    snapshot INTEGER PRIMARY KEY,
    db INTEGER,
    account TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshot_library_db ON snapshot_library(db);
";

const TRASHED: i64 = 1;
const HIDDEN: i64 = 2;
const FAVORITE: i64 = 4;
const EDITED: i64 = 8;
const CLOUD_ONLY: i64 = 16;

/// One asset of a phone's library, as the catalog keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LibraryAsset {
    /// The original's path under the media root (= in the snapshot).
    pub path: String,
    /// `photo`, `video` or `unknown`.
    pub kind: String,
    /// Capture time as the database says it (`YYYY-MM-DDTHH:MM:SS±HH:MM`).
    pub taken: Option<String>,
    pub trashed: bool,
    pub hidden: bool,
    pub favorite: bool,
    pub edited: bool,
    pub cloud_only: bool,
    pub burst: Option<String>,
    pub albums: Vec<String>,
}

/// The library as recorded for one snapshot.
#[derive(Clone, Debug, Default)]
pub struct SnapshotLibrary {
    /// The account as the snapshot stored it (JSON), `null` for none.
    pub account: String,
    pub assets: Vec<LibraryAsset>,
}

impl Catalog {
    /// Snapshots whose library has not been recorded yet, with their source keys.
    pub fn snapshots_without_library(&self) -> Result<Vec<(SnapshotId, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT s.sid, s.source_key FROM snapshots s
             WHERE NOT EXISTS (SELECT 1 FROM snapshot_library l WHERE l.snapshot = s.id)
             ORDER BY s.time",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (sid, key) = r?;
            if let Some(id) = snapvault_repo::Id::from_slice(&sid) {
                out.push((SnapshotId(id), key));
            }
        }
        Ok(out)
    }

    /// Whether a database with this content key is recorded already.
    pub fn has_library_db(&self, key: &[u8]) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM library_dbs WHERE key = ?1",
                [key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Record a snapshot's library: its account (JSON) and, when it held a database, that
    /// database's key and (when the key is new) its assets. One transaction.
    pub fn set_library(
        &mut self,
        snapshot: &SnapshotId,
        account: &str,
        db: Option<(&[u8], &str, &[LibraryAsset])>,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(row): Option<i64> = tx
            .query_row(
                "SELECT id FROM snapshots WHERE sid = ?1",
                [&snapshot.as_bytes()[..]],
                |r| r.get(0),
            )
            .optional()?
        else {
            return Ok(()); // forgotten meanwhile
        };
        let db_row = match db {
            None => None,
            Some((key, schema, assets)) => {
                let known: Option<i64> = tx
                    .query_row("SELECT id FROM library_dbs WHERE key = ?1", [key], |r| {
                        r.get(0)
                    })
                    .optional()?;
                Some(match known {
                    Some(id) => id,
                    None => {
                        tx.execute(
                            "INSERT INTO library_dbs(key, schema) VALUES (?1, ?2)",
                            params![key, schema],
                        )?;
                        let id = tx.last_insert_rowid();
                        let mut ins = tx.prepare_cached(
                            "INSERT OR IGNORE INTO library_assets(db, path, kind, taken, day, flags, burst, albums)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?;
                        for a in assets {
                            let flags = [
                                (a.trashed, TRASHED),
                                (a.hidden, HIDDEN),
                                (a.favorite, FAVORITE),
                                (a.edited, EDITED),
                                (a.cloud_only, CLOUD_ONLY),
                            ]
                            .iter()
                            .filter(|(on, _)| *on)
                            .fold(0, |f, (_, b)| f | b);
                            ins.execute(params![
                                id,
                                a.path.as_bytes(),
                                a.kind,
                                a.taken,
                                a.taken.as_deref().and_then(day_number),
                                flags,
                                a.burst,
                                (!a.albums.is_empty()).then(|| a.albums.join("\n")),
                            ])?;
                        }
                        id
                    }
                })
            }
        };
        tx.execute(
            "INSERT OR REPLACE INTO snapshot_library(snapshot, db, account) VALUES (?1, ?2, ?3)",
            params![row, db_row, account],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The library recorded for a snapshot (`None`: not recorded, or no such snapshot).
    pub fn library_of(&self, snapshot: &SnapshotId) -> Result<Option<SnapshotLibrary>> {
        let found: Option<(Option<i64>, String)> = self
            .conn
            .query_row(
                "SELECT l.db, l.account FROM snapshot_library l JOIN snapshots s ON s.id = l.snapshot
                 WHERE s.sid = ?1",
                [&snapshot.as_bytes()[..]],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((db, account)) = found else {
            return Ok(None);
        };
        let mut assets = Vec::new();
        if let Some(db) = db {
            let mut stmt = self.conn.prepare_cached(
                "SELECT path, kind, taken, flags, burst, albums FROM library_assets WHERE db = ?1",
            )?;
            let rows = stmt.query_map([db], |r| {
                let path: Vec<u8> = r.get(0)?;
                let flags: i64 = r.get(3)?;
                let albums: Option<String> = r.get(5)?;
                Ok(LibraryAsset {
                    path: String::from_utf8_lossy(&path).into_owned(),
                    kind: r.get(1)?,
                    taken: r.get(2)?,
                    trashed: flags & TRASHED != 0,
                    hidden: flags & HIDDEN != 0,
                    favorite: flags & FAVORITE != 0,
                    edited: flags & EDITED != 0,
                    cloud_only: flags & CLOUD_ONLY != 0,
                    burst: r.get(4)?,
                    albums: albums
                        .map(|a| a.split('\n').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?;
            for r in rows {
                assets.push(r?);
            }
        }
        Ok(Some(SnapshotLibrary { account, assets }))
    }
}

/// Drop what only forgotten snapshots referred to (inside the caller's transaction).
pub(crate) fn collect_garbage(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM snapshot_library WHERE snapshot NOT IN (SELECT id FROM snapshots);
         DELETE FROM library_assets WHERE db NOT IN
             (SELECT db FROM snapshot_library WHERE db IS NOT NULL);
         DELETE FROM library_dbs WHERE id NOT IN
             (SELECT db FROM snapshot_library WHERE db IS NOT NULL);",
    )?;
    Ok(())
}
