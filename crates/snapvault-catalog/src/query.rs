//! Photo queries: by capture date, kind, snapshot and source.

use std::collections::{HashMap, HashSet};

use rusqlite::types::ValueRef;
use rusqlite::{ToSql, params_from_iter};
use snapvault_repo::{BlobId, Id, SnapshotId};

use crate::date::{DateRange, KindFilter};
use crate::{Catalog, CatalogError, Result};

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
    /// Where `taken` came from: `exif`, `quicktime`, `birth_time`, `mtime`.
    pub date_source: Option<String>,
    pub size: u64,
    /// Live Photo / sidecar pairing key at its latest path.
    pub pair: Option<String>,
    /// Apple's content identifier.
    pub content_id: Option<String>,
    /// A still with a Live Photo video beside it (in some selected snapshot).
    pub live: bool,
    /// Its path in the most recent selected snapshot holding it (`/`-separated).
    pub latest_path: String,
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
    trees: HashMap<i64, TreeOcc>,
}

/// The best occurrence so far of one content, and everything needed for its row.
struct Acc {
    key: Id,
    kind: String,
    taken: Option<String>,
    date_source: Option<String>,
    content_id: Option<String>,
    size: u64,
    blobs: Vec<BlobId>,
    trees: Vec<i64>,
    live: bool,
    rank: u32,
    path: Vec<u8>,
    pair: Option<String>,
    mode: u32,
    mtime: i64,
}

const SELECT: &str = "SELECT c.id, c.key, c.kind, c.taken, c.date_source, c.content_id, c.size,
    c.blobs, f.tree, f.name, f.pair, f.live, f.mode, f.mtime
    FROM contents c JOIN files f ON f.content = c.id";

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    if !dir.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Catalog {
    /// Every distinct photo matching `q`, once each, ordered by capture time (undated
    /// last), then path.
    pub fn photos(&self, q: &PhotoQuery) -> Result<Vec<PhotoRow>> {
        let sel = self.select(q)?;
        let mut filter = Vec::new();
        let mut args: Vec<i64> = Vec::new();
        if let Some(d) = &q.dates {
            let (lo, hi) = d.day_bounds();
            filter.push("c.day BETWEEN ?1 AND ?2");
            args.extend([lo as i64, hi as i64]);
        }
        filter.push(match q.kind {
            None => "c.kind IN ('photo', 'video')",
            Some(KindFilter::Photo | KindFilter::Live) => "c.kind = 'photo'",
            Some(KindFilter::Video) => "c.kind = 'video'",
        });
        self.collect(
            &sel,
            &filter.join(" AND "),
            &args,
            q.kind == Some(KindFilter::Live),
        )
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
        let mut given = HashSet::new();
        let mut found = HashSet::new();
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT c.id, f1.tree, f2.content FROM temp.want_keys w
                 JOIN contents c ON c.key = w.key
                 JOIN files f1 ON f1.content = c.id
                 JOIN files f2 ON f2.tree = f1.tree AND f2.pair = f1.pair
                 WHERE f1.pair IS NOT NULL AND f2.content <> c.id",
            )?;
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                let (id, tree, other): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                given.insert(id);
                if sel.trees.contains_key(&tree) {
                    found.insert(other);
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
        let out = self.collect(&sel, "c.id IN (SELECT id FROM temp.want_ids)", &[], false);
        self.conn
            .execute_batch("DELETE FROM temp.want_keys; DELETE FROM temp.want_ids;")?;
        out
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
        let mut trees: HashMap<i64, TreeOcc> = HashMap::new();
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

    /// Run the content × file scan with `filter`, keep occurrences in selected trees,
    /// group by content.
    fn collect(
        &self,
        sel: &Selection,
        filter: &str,
        args: &[i64],
        live_only: bool,
    ) -> Result<Vec<PhotoRow>> {
        if sel.trees.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{SELECT} WHERE {filter}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(args.iter().map(|a| a as &dyn ToSql)))?;
        let mut accs: HashMap<i64, Acc> = HashMap::new();
        while let Some(r) = rows.next()? {
            let tree: i64 = r.get(8)?;
            let Some(occ) = sel.trees.get(&tree) else {
                continue;
            };
            let id: i64 = r.get(0)?;
            let name = match r.get_ref(9)? {
                ValueRef::Blob(b) | ValueRef::Text(b) => b,
                _ => &[],
            };
            let live = r.get::<_, bool>(11)?;
            let acc = match accs.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    let acc = e.into_mut();
                    if !acc.trees.contains(&tree) {
                        acc.trees.push(tree);
                    }
                    acc.live |= live;
                    if occ.latest < acc.rank {
                        continue;
                    }
                    let path = join(&occ.path, name);
                    if occ.latest == acc.rank && path >= acc.path {
                        continue;
                    }
                    acc.rank = occ.latest;
                    acc.path = path;
                    acc
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    let key = match r.get_ref(1)? {
                        ValueRef::Blob(b) => Id::from_slice(b).unwrap_or_default(),
                        _ => Id::default(),
                    };
                    let blobs = match r.get_ref(7)? {
                        ValueRef::Blob(b) => b
                            .chunks_exact(32)
                            .filter_map(|c| Id::from_slice(c).map(BlobId))
                            .collect(),
                        _ => Vec::new(),
                    };
                    e.insert(Acc {
                        key,
                        kind: r.get(2)?,
                        taken: text(r.get_ref(3)?),
                        date_source: text(r.get_ref(4)?),
                        content_id: text(r.get_ref(5)?),
                        size: r.get::<_, i64>(6)?.max(0) as u64,
                        blobs,
                        trees: vec![tree],
                        live,
                        rank: occ.latest,
                        path: join(&occ.path, name),
                        pair: None,
                        mode: 0,
                        mtime: 0,
                    })
                }
            };
            acc.pair = text(r.get_ref(10)?);
            acc.mode = r.get::<_, i64>(12)? as u32;
            acc.mtime = r.get(13)?;
        }
        let mut out = Vec::with_capacity(accs.len());
        let mut union = Vec::new();
        for (_, a) in accs {
            if live_only && !a.live {
                continue;
            }
            let snapshot_count = match a.trees.as_slice() {
                [one] => sel.trees[one].count,
                many => {
                    union.clear();
                    union.resize(sel.trees[&many[0]].bits.len(), 0u64);
                    for t in many {
                        for (u, b) in union.iter_mut().zip(&sel.trees[t].bits) {
                            *u |= b;
                        }
                    }
                    union.iter().map(|w| w.count_ones()).sum()
                }
            };
            let (latest_snapshot, latest_time) = sel.snaps[a.rank as usize];
            out.push(PhotoRow {
                content_key: a.key.to_hex(),
                kind: a.kind,
                taken: a.taken,
                date_source: a.date_source,
                size: a.size,
                pair: a.pair,
                content_id: a.content_id,
                live: a.live,
                latest_path: String::from_utf8_lossy(&a.path).into_owned(),
                latest_snapshot,
                latest_time,
                snapshot_count,
                content: a.blobs,
                mode: a.mode,
                mtime: a.mtime,
            });
        }
        out.sort_unstable_by(|a, b| {
            (a.taken.is_none(), &a.taken, &a.latest_path, &a.content_key).cmp(&(
                b.taken.is_none(),
                &b.taken,
                &b.latest_path,
                &b.content_key,
            ))
        });
        Ok(out)
    }
}
