//! Photo queries: by capture date, kind, snapshot and source.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use rusqlite::types::ValueRef;
use rusqlite::{Row, ToSql, params_from_iter};
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

/// A content's own columns.
struct Content {
    key: Id,
    kind: String,
    taken: Option<String>,
    date_source: Option<String>,
    content_id: Option<String>,
    size: u64,
    blobs: Vec<BlobId>,
}

/// Content columns, in this order, as `c`.
const CONTENT_COLS: &str =
    "c.id, c.key, c.kind, c.taken, c.date_source, c.content_id, c.size, c.blobs";
/// Occurrence columns, in this order, as `f`.
const FILE_COLS: &str = "f.content, f.tree, f.name, f.pair, f.live, f.mode, f.mtime";

impl Content {
    /// From a row whose columns `at..` are [`CONTENT_COLS`] after the id.
    fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<Content> {
        let key = match r.get_ref(at)? {
            ValueRef::Blob(b) => Id::from_slice(b).unwrap_or_default(),
            _ => Id::default(),
        };
        let blobs = match r.get_ref(at + 6)? {
            ValueRef::Blob(b) => {
                let mut v = Vec::with_capacity(b.len() / 32);
                v.extend(
                    b.chunks_exact(32)
                        .filter_map(|c| Id::from_slice(c).map(BlobId)),
                );
                v
            }
            _ => Vec::new(),
        };
        Ok(Content {
            key,
            kind: r.get(at + 1)?,
            taken: text(r.get_ref(at + 2)?),
            date_source: text(r.get_ref(at + 3)?),
            content_id: text(r.get_ref(at + 4)?),
            size: r.get::<_, i64>(at + 5)?.max(0) as u64,
            blobs,
        })
    }
}

/// The best occurrence so far of one content, and everything needed for its row.
struct Acc {
    content: Content,
    trees: Vec<i64>,
    live: bool,
    rank: u32,
    path: Vec<u8>,
    pair: Option<String>,
    mode: u32,
    mtime: i64,
}

/// Groups a stream of occurrences, arriving content by content, into rows.
struct Grouper<'s> {
    sel: &'s Selection,
    live_only: bool,
    cur: Option<(i64, Acc)>,
    out: Vec<PhotoRow>,
    union: Vec<u64>,
}

impl<'s> Grouper<'s> {
    fn new(sel: &'s Selection, live_only: bool) -> Self {
        Grouper {
            sel,
            live_only,
            cur: None,
            out: Vec::new(),
            union: Vec::new(),
        }
    }

    /// Is this tree in the selection at all?
    fn wants(&self, tree: i64) -> bool {
        self.sel.trees.contains_key(&tree)
    }

    /// One occurrence, from a row whose columns `at..` are [`FILE_COLS`]; `content`
    /// reads the content's own columns when it is first seen.
    fn occurrence(
        &mut self,
        f: &Row<'_>,
        at: usize,
        content: impl FnOnce() -> rusqlite::Result<Content>,
    ) -> rusqlite::Result<()> {
        let tree: i64 = f.get(at + 1)?;
        let Some(occ) = self.sel.trees.get(&tree) else {
            return Ok(());
        };
        let id: i64 = f.get(at)?;
        let name = match f.get_ref(at + 2)? {
            ValueRef::Blob(b) | ValueRef::Text(b) => b,
            _ => &[],
        };
        let live = f.get::<_, bool>(at + 4)?;
        let acc = match &mut self.cur {
            Some((cid, acc)) if *cid == id => {
                if !acc.trees.contains(&tree) {
                    acc.trees.push(tree);
                }
                acc.live |= live;
                if occ.latest < acc.rank {
                    return Ok(());
                }
                if occ.latest == acc.rank && !joined_less(&occ.path, name, &acc.path) {
                    return Ok(());
                }
                acc.rank = occ.latest;
                acc.path.clear();
                join_into(&mut acc.path, &occ.path, name);
                acc
            }
            _ => {
                self.flush();
                let acc = Acc {
                    content: content()?,
                    trees: vec![tree],
                    live,
                    rank: occ.latest,
                    path: join(&occ.path, name),
                    pair: None,
                    mode: 0,
                    mtime: 0,
                };
                &mut self.cur.insert((id, acc)).1
            }
        };
        match f.get_ref(at + 3)? {
            ValueRef::Text(t) => {
                let p = acc.pair.get_or_insert_with(String::new);
                p.clear();
                p.push_str(&String::from_utf8_lossy(t));
            }
            _ => acc.pair = None,
        }
        acc.mode = f.get::<_, i64>(at + 5)? as u32;
        acc.mtime = f.get(at + 6)?;
        Ok(())
    }

    /// Turn the current content's occurrences into its row.
    fn flush(&mut self) {
        let Some((_, a)) = self.cur.take() else {
            return;
        };
        if self.live_only && !a.live {
            return;
        }
        let trees = &self.sel.trees;
        let snapshot_count = match a.trees.as_slice() {
            [one] => trees[one].count,
            many => {
                self.union.clear();
                self.union.resize(trees[&many[0]].bits.len(), 0u64);
                for t in many {
                    for (u, b) in self.union.iter_mut().zip(&trees[t].bits) {
                        *u |= b;
                    }
                }
                self.union.iter().map(|w| w.count_ones()).sum()
            }
        };
        let (latest_snapshot, latest_time) = self.sel.snaps[a.rank as usize];
        let c = a.content;
        self.out.push(PhotoRow {
            content_key: hex32(&c.key.0),
            kind: c.kind,
            taken: c.taken,
            date_source: c.date_source,
            size: c.size,
            pair: a.pair,
            content_id: c.content_id,
            live: a.live,
            latest_path: String::from_utf8_lossy(&a.path).into_owned(),
            latest_path_bytes: a.path,
            latest_snapshot,
            latest_time,
            snapshot_count,
            content: c.blobs,
            mode: a.mode,
            mtime: a.mtime,
        });
    }

    /// The rows, by capture time (undated last), then path.
    fn finish(mut self) -> Vec<PhotoRow> {
        self.flush();
        sort_rows(self.out)
    }

    /// The rows in the order found.
    fn finish_unordered(mut self) -> Vec<PhotoRow> {
        self.flush();
        self.out
    }
}

/// `YYYY-MM-DDTHH:MM:SS` as the number `YYYYMMDDHHMMSS` (a cheap first sort key);
/// `u64::MAX` when absent or malformed.
fn time_key(taken: Option<&str>) -> u64 {
    let Some(t) = taken else {
        return u64::MAX;
    };
    let b = t.as_bytes();
    if b.len() < 19 {
        return u64::MAX - 1;
    }
    let mut k = 0u64;
    for (i, &c) in b[..19].iter().enumerate() {
        match (i, c) {
            (4 | 7, b'-') | (10, b'T' | b' ') | (13 | 16, b':') => {}
            (_, b'0'..=b'9') => k = k * 10 + (c - b'0') as u64,
            _ => return u64::MAX - 1,
        }
    }
    k
}

fn sort_rows(rows: Vec<PhotoRow>) -> Vec<PhotoRow> {
    if rows.len() < 2 {
        return rows;
    }
    let mut order: Vec<(u64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (time_key(r.taken.as_deref()), i as u32))
        .collect();
    let full = |a: &PhotoRow, b: &PhotoRow| -> Ordering {
        (a.taken.is_none(), &a.taken, &a.latest_path, &a.content_key).cmp(&(
            b.taken.is_none(),
            &b.taken,
            &b.latest_path,
            &b.content_key,
        ))
    };
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| full(&rows[a.1 as usize], &rows[b.1 as usize]))
    });
    // Apply the permutation in place, cycle by cycle: rows are large, move each once.
    let mut rows = rows;
    let mut perm: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..perm.len() {
        let mut cur = start;
        loop {
            let next = perm[cur] as usize;
            perm[cur] = cur as u32;
            if next == start {
                break;
            }
            rows.swap(cur, next);
            cur = next;
        }
    }
    rows
}

fn hex32(b: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(64);
    for &x in b {
        s.push(HEX[(x >> 4) as usize]);
        s.push(HEX[(x & 15) as usize]);
    }
    String::from_utf8(s).unwrap_or_default()
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(t) => Some(match std::str::from_utf8(t) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(t).into_owned(),
        }),
        _ => None,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    join_into(&mut p, dir, name);
    p
}

fn join_into(p: &mut Vec<u8>, dir: &[u8], name: &[u8]) {
    p.extend_from_slice(dir);
    if !dir.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
}

/// Is `join(dir, name) < other`, without building it?
fn joined_less(dir: &[u8], name: &[u8], other: &[u8]) -> bool {
    let sep: &[u8] = if dir.is_empty() { b"" } else { b"/" };
    dir.iter().chain(sep).chain(name).cmp(other.iter()).is_lt()
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(taken: Option<&str>, path: &str) -> PhotoRow {
        PhotoRow {
            content_key: hex32(&Id::hash_of(path.as_bytes()).0),
            kind: "photo".into(),
            taken: taken.map(str::to_string),
            date_source: None,
            size: 1,
            pair: None,
            content_id: None,
            live: false,
            latest_path: path.into(),
            latest_path_bytes: path.as_bytes().to_vec(),
            latest_snapshot: SnapshotId::default(),
            latest_time: 0,
            snapshot_count: 1,
            content: vec![],
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn rows_sort_by_time_then_path_undated_last() {
        let mut rows = Vec::new();
        let mut x = 12345u64;
        for i in 0..500 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let taken = match x >> 61 {
                0 => None,
                1 => Some("garbage".to_string()),
                n => Some(format!(
                    "20{:02}-0{}-1{}T1{}:00:00+0{}:00",
                    x % 30,
                    n,
                    x % 10,
                    i % 10,
                    x % 3
                )),
            };
            rows.push(row(taken.as_deref(), &format!("p/{}", x % 97)));
        }
        let sorted = sort_rows(rows.clone());
        let mut want = rows;
        want.sort_by(|a, b| {
            let k = |r: &PhotoRow| {
                (
                    time_key(r.taken.as_deref()),
                    r.taken.is_none(),
                    r.taken.clone(),
                    r.latest_path.clone(),
                    r.content_key.clone(),
                )
            };
            k(a).cmp(&k(b))
        });
        assert_eq!(sorted, want);
        assert!(sorted.last().unwrap().taken.is_none());
        assert_eq!(time_key(Some("2023-07-14T18:03:11+02:00")), 20230714180311);
        assert_eq!(time_key(Some("2023-07-14 18:03:11")), 20230714180311);
        assert!(time_key(Some("2023-07-14")) > 99991231235959);
        assert_eq!(hex32(&[0xab; 32]), "ab".repeat(32));
    }

    #[test]
    fn joined_comparison() {
        for (dir, name, other) in [
            ("a", "b", "a/b"),
            ("", "b", "b"),
            ("a", "b", "a/c"),
            ("a/b", "c", "a/b/c"),
            ("ab", "c", "a/c"),
            ("", "x", "a"),
        ] {
            let joined = join(dir.as_bytes(), name.as_bytes());
            assert_eq!(
                joined_less(dir.as_bytes(), name.as_bytes(), other.as_bytes()),
                joined.as_slice() < other.as_bytes(),
                "{dir} {name} {other}"
            );
        }
    }
}
