//! One photo by its identity: its stored content, and every snapshot that holds it (for
//! `snapvault browse`'s photo page and its "download original").

use rusqlite::OptionalExtension;
use rusqlite::types::ValueRef;
use snapvault_repo::{BlobId, Id, SnapshotId};

use crate::{Catalog, Result};

/// A content's own columns: what reading it back needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredContent {
    /// `photo`, `video`, `sidecar`.
    pub kind: String,
    /// Local capture time as recorded (`YYYY-MM-DDTHH:MM:SS[±HH:MM]`).
    pub taken: Option<String>,
    pub size: u64,
    /// Its chunks, in order.
    pub blobs: Vec<BlobId>,
}

/// One snapshot holding a content, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub snapshot: SnapshotId,
    /// The snapshot's time, ns since the Unix epoch.
    pub time: i64,
    /// `/`-joined path in that snapshot (lossy when a name is not UTF-8).
    pub path: String,
}

impl Catalog {
    /// The content whose identity (hex BLAKE3 of its chunk ids) is `key`.
    pub fn content(&self, key: &Id) -> Result<Option<StoredContent>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, taken, size, blobs FROM contents WHERE key = ?1")?;
        Ok(stmt
            .query_row([&key.0[..]], |r| {
                let blobs = match r.get_ref(3)? {
                    ValueRef::Blob(b) => b
                        .chunks_exact(32)
                        .filter_map(|c| Id::from_slice(c).map(BlobId))
                        .collect(),
                    _ => Vec::new(),
                };
                Ok(StoredContent {
                    kind: r.get(0)?,
                    taken: r.get(1)?,
                    size: r.get::<_, i64>(2)?.max(0) as u64,
                    blobs,
                })
            })
            .optional()?)
    }

    /// Every snapshot holding the content `key`, oldest first (one entry per snapshot and
    /// path: the same bytes under two names in one snapshot are two entries).
    pub fn holders(&self, key: &Id) -> Result<Vec<Holder>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.sid, s.time, sd.path, f.name FROM contents c
             CROSS JOIN files f ON f.content = c.id
             CROSS JOIN snapshot_dirs sd ON sd.tree = f.tree
             CROSS JOIN snapshots s ON s.id = sd.snapshot
             WHERE c.key = ?1
             ORDER BY s.time, s.sid, sd.path, f.name",
        )?;
        let mut rows = stmt.query([&key.0[..]])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let sid: Vec<u8> = r.get(0)?;
            let Some(snapshot) = Id::from_slice(&sid).map(SnapshotId) else {
                continue;
            };
            let bytes = |v: ValueRef<'_>| match v {
                ValueRef::Blob(b) | ValueRef::Text(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            let dir = bytes(r.get_ref(2)?);
            let name = bytes(r.get_ref(3)?);
            out.push(Holder {
                snapshot,
                time: r.get(1)?,
                path: if dir.is_empty() {
                    name
                } else {
                    format!("{dir}/{name}")
                },
            });
        }
        Ok(out)
    }
}
