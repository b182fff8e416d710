//! Photo queries: by capture date, kind, snapshot and source. This file resolves what a
//! query selects and scans the catalog; group.rs folds the occurrences the scans yield into
//! one row per content, order.rs sorts those rows.

mod group;
mod order;

use std::collections::{HashMap, HashSet};

use rusqlite::types::ValueRef;
use rusqlite::{ToSql, params_from_iter};
use snapvault_repo::{BlobId, Id, SnapshotId};

use crate::date::{DateRange, KindFilter};
use crate::{Catalog, CatalogError, Result};
use group::{CONTENT_COLS, Content, FILE_COLS, Grouper, text};

/// What to look for. The default finds every photo and video in every snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhotoQuery {
    /// Local capture date (photos without a capture date never match a date filter).
    pub dates: Option<DateRange>,
    /// Without a filter: photos and videos (sidecars come only as companions).
    pub kind: Option<KindFilter>,
    /// Only look in these snapshots (an id the catalog lacks is an error).
    pub snapshots: Option<Vec<SnapshotId>>,
    /// Only look in snapshots of this source (`Source::group_key`).
    pub source_key: Option<String>,
}

/// One distinct photo (one content), as found in the selected snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoRow {
    /// Identity: hex BLAKE3 of the file's chunk ids (same bytes = same photo).
    pub content_key: String,
    /// `photo`, `video`, `sidecar` (as the snapshot recorded it).
    pub kind: String,
    /// Local capture time as recorded: `YYYY-MM-DDTHH:MM:SS[±HH:MM]`.
    pub taken: Option<String>,
    /// Where `taken` came from: `exif`, `quicktime`, `xmp`, `birth_time`, `mtime`.
    pub date_source: Option<String>,
    pub size: u64,
    /// Live Photo / sidecar pairing key at its latest path.
    pub pair: Option<String>,
    /// Apple's content identifier.
    pub content_id: Option<String>,
    /// A still with a Live Photo video beside it (in some selected snapshot).
    pub live: bool,
    /// Its path in the most recent selected snapshot holding it (`/`-separated), for
    /// showing (a name that is not UTF-8 is shown lossily).
    pub latest_path: String,
    /// The same path exactly, as bytes.
    pub latest_path_bytes: Vec<u8>,
    pub latest_snapshot: SnapshotId,
    /// That snapshot's time, ns since the Unix epoch.
    pub latest_time: i64,
    /// How many selected snapshots hold it (under any path).
    pub snapshot_count: u32,
    /// Its chunks, in order: what restore reads.
    pub content: Vec<BlobId>,
    /// Permission bits and mtime (ns) at its latest path.
    pub mode: u32,
    pub mtime: i64,
}

/// Per tree of the selected snapshots: which of them hold it, and its latest place.
struct TreeOcc {
    bits: Vec<u64>,
    count: u32,
    latest: u32,
    path: Vec<u8>,
}

/// The snapshots a query looks at, ranked oldest (0) to newest.
struct Selection {
    snaps: Vec<(SnapshotId, i64)>,
    trees: RowMap<TreeOcc>,
}

/// Row ids are small dense integers: a multiplicative hash is enough and much cheaper
/// than SipHash on the hot path (two lookups per occurrence).
#[derive(Default)]
struct RowHasher(u64);

impl std::hash::Hasher for RowHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type RowMap<V> = HashMap<i64, V, std::hash::BuildHasherDefault<RowHasher>>;

impl Catalog {
    /// Every distinct photo matching `q`, once each, ordered by capture time (undated
    /// last), then path.
    pub fn photos(&self, q: &PhotoQuery) -> Result<Vec<PhotoRow>> {
        let sel = self.select(q)?;
        let kind = match q.kind {
            None => "c.kind IN ('photo', 'video')",
            Some(KindFilter::Photo | KindFilter::Live) => "c.kind = 'photo'",
            Some(KindFilter::Video) => "c.kind = 'video'",
        };
        let live_only = q.kind == Some(KindFilter::Live);
        match &q.dates {
            Some(d) => {
                let (lo, hi) = d.day_bounds();
                self.join_scan(
                    &sel,
                    &format!("contents c WHERE c.day BETWEEN ?1 AND ?2 AND {kind}"),
                    &[lo as i64, hi as i64],
                    live_only,
                )
            }
            None => self.merge_scan(&sel, kind, live_only, true),
        }
    }

    /// Every photo and video of the snapshots `q` selects (its date and kind filters are
    /// ignored), once each, in no particular order: for counting by month, where sorting
    /// 50,000 rows would be a fifth of the work.
    pub fn photos_unordered(&self, q: &PhotoQuery) -> Result<Vec<PhotoRow>> {
        let sel = self.select(q)?;
        self.merge_scan(&sel, "c.kind IN ('photo', 'video')", false, false)
    }

    /// The companions of `rows` that are not among them: Live Photo videos, edited
    /// renditions and sidecars sharing a row's pairing key in a directory that holds the
    /// row, within the snapshots `q` selects (its date and kind filters are ignored: a
    /// video a second off, or a sidecar, still comes along).
    pub fn companions(&self, q: &PhotoQuery, rows: &[PhotoRow]) -> Result<Vec<PhotoRow>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sel = self.select(q)?;
        self.conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS want_keys(key BLOB PRIMARY KEY) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS want_ids(id INTEGER PRIMARY KEY);
             DELETE FROM temp.want_keys; DELETE FROM temp.want_ids;",
        )?;
        let out = self.companions_of(&sel, rows);
        self.conn
            .execute_batch("DELETE FROM temp.want_keys; DELETE FROM temp.want_ids;")?;
        out
    }

    fn companions_of(&self, sel: &Selection, rows: &[PhotoRow]) -> Result<Vec<PhotoRow>> {
        {
            let mut ins = self
                .conn
                .prepare_cached("INSERT OR IGNORE INTO temp.want_keys(key) VALUES (?1)")?;
            for r in rows {
                if let Ok(k) = r.content_key.parse::<Id>() {
                    ins.execute([&k.0[..]])?;
                }
            }
        }
        // Where the given photos sit (in selected trees), with their pairing keys.
        let mut given = HashSet::new();
        let mut wanted: HashMap<i64, HashSet<String>> = HashMap::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.id, f.tree, f.pair FROM temp.want_keys w
                 CROSS JOIN contents c ON c.key = w.key
                 CROSS JOIN files f ON f.content = c.id",
            )?;
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                given.insert(r.get::<_, i64>(0)?);
                let tree: i64 = r.get(1)?;
                if let (true, Some(pair)) = (sel.trees.contains_key(&tree), text(r.get_ref(2)?)) {
                    wanted.entry(tree).or_default().insert(pair);
                }
            }
        }
        // Their directories' other files with the same keys.
        let mut found = HashSet::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT content, pair FROM files WHERE tree = ?1 AND pair IS NOT NULL",
            )?;
            for (tree, pairs) in &wanted {
                let mut q = stmt.query([tree])?;
                while let Some(r) = q.next()? {
                    let content: i64 = r.get(0)?;
                    if let ValueRef::Text(p) = r.get_ref(1)?
                        && std::str::from_utf8(p).is_ok_and(|p| pairs.contains(p))
                    {
                        found.insert(content);
                    }
                }
            }
        }
        {
            let mut ins = self
                .conn
                .prepare_cached("INSERT OR IGNORE INTO temp.want_ids(id) VALUES (?1)")?;
            for id in found.difference(&given) {
                ins.execute([id])?;
            }
        }
        self.join_scan(
            sel,
            "temp.want_ids w CROSS JOIN contents c ON c.id = w.id",
            &[],
            false,
        )
    }

    /// Contents chosen by `from_where` (a FROM … WHERE fragment binding `c`), joined with
    /// their occurrences. `CROSS JOIN` keeps SQLite from reordering: contents stay the
    /// outer loop, so each content's occurrences arrive together, and `files` is clustered
    /// by content, so each content costs one seek.
    fn join_scan(
        &self,
        sel: &Selection,
        from_where: &str,
        args: &[i64],
        live_only: bool,
    ) -> Result<Vec<PhotoRow>> {
        if sel.trees.is_empty() {
            return Ok(Vec::new());
        }
        let (from, filter) = match from_where.split_once(" WHERE ") {
            Some((f, w)) => (f, format!("WHERE {w}")),
            None => (from_where, String::new()),
        };
        let sql = format!(
            "SELECT {FILE_COLS}, {CONTENT_COLS} FROM {from} CROSS JOIN files f ON f.content = c.id {filter}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter().map(|a| a as &dyn ToSql)))?;
        let mut g = Grouper::new(sel, live_only);
        while let Some(r) = rows.next()? {
            g.occurrence(r, 0, || Content::read(r, 8))?;
        }
        Ok(g.finish())
    }

    /// Every content passing `filter` with its occurrences, as a merge of two sequential
    /// scans (contents by id, files by content): no seeks, for queries that touch most of
    /// the catalog.
    fn merge_scan(
        &self,
        sel: &Selection,
        filter: &str,
        live_only: bool,
        sorted: bool,
    ) -> Result<Vec<PhotoRow>> {
        if sel.trees.is_empty() {
            return Ok(Vec::new());
        }
        let mut cstmt = self.conn.prepare_cached(&format!(
            "SELECT {CONTENT_COLS} FROM contents c WHERE {filter} ORDER BY c.id"
        ))?;
        let mut fstmt = self.conn.prepare_cached(&format!(
            "SELECT {FILE_COLS} FROM files f ORDER BY f.content"
        ))?;
        let mut crows = cstmt.query([])?;
        let mut frows = fstmt.query([])?;
        let mut g = Grouper::new(sel, live_only);
        // The contents row at or after the current occurrence's content, read ahead.
        let mut ahead: Option<(i64, Option<Content>)> = None;
        let mut contents_done = false;
        while let Some(f) = frows.next()? {
            if !g.wants(f.get(1)?) {
                continue;
            }
            let content: i64 = f.get(0)?;
            while !contents_done && ahead.as_ref().is_none_or(|(id, _)| *id < content) {
                match crows.next()? {
                    Some(c) => ahead = Some((c.get(0)?, Some(Content::read(c, 1)?))),
                    None => contents_done = true,
                }
            }
            match &mut ahead {
                Some((id, c)) if *id == content => g.occurrence(f, 0, || {
                    c.take().ok_or(rusqlite::Error::QueryReturnedNoRows)
                })?,
                _ => continue,
            }
        }
        Ok(if sorted {
            g.finish()
        } else {
            g.finish_unordered()
        })
    }

    /// Resolve the snapshots a query looks at, and where each of their media trees sits.
    fn select(&self, q: &PhotoQuery) -> Result<Selection> {
        let mut all = Vec::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, sid, time, source_key FROM snapshots ORDER BY time, sid",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let sid: Vec<u8> = r.get(1)?;
                let Some(sid) = Id::from_slice(&sid).map(SnapshotId) else {
                    continue;
                };
                all.push((
                    r.get::<_, i64>(0)?,
                    sid,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ));
            }
        }
        let wanted: Option<HashSet<SnapshotId>> =
            q.snapshots.as_ref().map(|v| v.iter().copied().collect());
        if let Some(w) = &wanted
            && let Some(missing) = w.iter().find(|id| !all.iter().any(|(_, s, _, _)| s == *id))
        {
            return Err(CatalogError::UnknownSnapshot(missing.to_hex()));
        }
        let chosen: Vec<_> = all
            .into_iter()
            .filter(|(_, sid, _, _)| wanted.as_ref().is_none_or(|w| w.contains(sid)))
            .filter(|(_, _, _, src)| q.source_key.as_ref().is_none_or(|k| k == src))
            .collect();
        let words = chosen.len().div_ceil(64).max(1);
        let mut trees: RowMap<TreeOcc> = RowMap::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, tree FROM snapshot_dirs WHERE snapshot = ?1")?;
        for (rank, (row, _, _, _)) in chosen.iter().enumerate() {
            let rank = rank as u32;
            let mut rows = stmt.query([row])?;
            while let Some(r) = rows.next()? {
                let tree: i64 = r.get(1)?;
                let path = match r.get_ref(0)? {
                    ValueRef::Blob(b) | ValueRef::Text(b) => b,
                    _ => &[],
                };
                let occ = trees.entry(tree).or_insert_with(|| TreeOcc {
                    bits: vec![0; words],
                    count: 0,
                    latest: rank,
                    path: path.to_vec(),
                });
                let (w, b) = ((rank / 64) as usize, rank % 64);
                if occ.bits[w] & (1 << b) == 0 {
                    occ.bits[w] |= 1 << b;
                    occ.count += 1;
                }
                // Ranks ascend, so a later rank is newer; same rank: the smaller path.
                if rank > occ.latest || (rank == occ.latest && path < occ.path.as_slice()) {
                    occ.latest = rank;
                    occ.path = path.to_vec();
                }
            }
        }
        Ok(Selection {
            snaps: chosen.into_iter().map(|(_, sid, t, _)| (sid, t)).collect(),
            trees,
        })
    }
}
