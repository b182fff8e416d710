//! Folding a stream of file occurrences, arriving content by content, into one
//! [`PhotoRow`] per content: its latest path, the snapshots holding it, Live Photo flag.

use rusqlite::Row;
use rusqlite::types::ValueRef;
use snapvault_repo::{BlobId, Id};

use super::order::sort_rows;
use super::{PhotoRow, Selection};

/// A content's own columns.
pub(super) struct Content {
    key: Id,
    kind: String,
    taken: Option<String>,
    date_source: Option<String>,
    content_id: Option<String>,
    size: u64,
    blobs: Vec<BlobId>,
}

/// Content columns, in this order, as `c`.
pub(super) const CONTENT_COLS: &str =
    "c.id, c.key, c.kind, c.taken, c.date_source, c.content_id, c.size, c.blobs";
/// Occurrence columns, in this order, as `f`.
pub(super) const FILE_COLS: &str = "f.content, f.tree, f.name, f.pair, f.live, f.mode, f.mtime";

impl Content {
    /// From a row whose columns `at..` are [`CONTENT_COLS`] after the id.
    pub(super) fn read(r: &Row<'_>, at: usize) -> rusqlite::Result<Content> {
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
pub(super) struct Grouper<'s> {
    sel: &'s Selection,
    live_only: bool,
    cur: Option<(i64, Acc)>,
    out: Vec<PhotoRow>,
    union: Vec<u64>,
}

impl<'s> Grouper<'s> {
    pub(super) fn new(sel: &'s Selection, live_only: bool) -> Self {
        Grouper {
            sel,
            live_only,
            cur: None,
            out: Vec::new(),
            union: Vec::new(),
        }
    }

    /// Is this tree in the selection at all?
    pub(super) fn wants(&self, tree: i64) -> bool {
        self.sel.trees.contains_key(&tree)
    }

    /// One occurrence, from a row whose columns `at..` are [`FILE_COLS`]; `content`
    /// reads the content's own columns when it is first seen.
    pub(super) fn occurrence(
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
    pub(super) fn finish(mut self) -> Vec<PhotoRow> {
        self.flush();
        sort_rows(self.out)
    }

    /// The rows in the order found.
    pub(super) fn finish_unordered(mut self) -> Vec<PhotoRow> {
        self.flush();
        self.out
    }
}

pub(super) fn hex32(b: &[u8; 32]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = Vec::with_capacity(64);
    for &x in b {
        s.push(HEX[(x >> 4) as usize]);
        s.push(HEX[(x & 15) as usize]);
    }
    String::from_utf8(s).unwrap_or_default()
}

pub(super) fn text(v: ValueRef<'_>) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
