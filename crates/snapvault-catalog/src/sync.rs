//! Bringing the catalog in line with the repository.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use snapvault_repo::backend::FileKind;
use snapvault_repo::index::Index;
use snapvault_repo::snapshot::Snapshot;
use snapvault_repo::tree::{Node, NodeKind, Tree};
use snapvault_repo::walk::{RepoTrees, Sharing, TreeSource, TreeWalker, Visitor};
use snapvault_repo::{BlobId, Id, Interruption, RepoError, Repository, SnapshotEntry, SnapshotId};

use crate::date::day_number;
use crate::{Catalog, CatalogError, Result};

/// What indexing one snapshot added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddStats {
    /// Tree blobs read from the repository (directories not seen before).
    pub trees: u64,
    /// Media file entries in those trees.
    pub files: u64,
    /// Photos (contents) new to the catalog.
    pub photos: u64,
}

/// What a [`Catalog::sync`] changed.
#[derive(Clone, Debug, Default)]
pub struct SyncStats {
    pub snapshots_added: u64,
    pub snapshots_removed: u64,
    pub added: AddStats,
    /// The catalog belonged to another repository (or none) and was emptied first.
    pub reset: bool,
    /// The file was found damaged during the sync, deleted and rebuilt.
    pub rebuilt: bool,
    /// Snapshots that could not be indexed (a tree could not be read), and why. They are
    /// left out and tried again by the next sync.
    pub failed: Vec<(SnapshotId, String)>,
    /// Snapshot files the repository could not read; what the catalog knew of them is kept.
    pub unreadable: u64,
}

impl SyncStats {
    pub fn changed(&self) -> bool {
        self.snapshots_added > 0 || self.snapshots_removed > 0 || self.reset || self.rebuilt
    }
}

// Writes take the write lock up front (`BEGIN IMMEDIATE`), so two processes syncing the
// same catalog wait for each other (busy timeout) instead of failing on a stale read.
impl Catalog {
    /// Bring the catalog in line with the repository: index the snapshots it lacks (only
    /// their new trees are read), drop the snapshots that no longer exist. A catalog found
    /// damaged on the way is deleted and rebuilt.
    pub fn sync(&mut self, repo: &Repository, index: &Index) -> Result<SyncStats> {
        let (snaps, unreadable) = repo.snapshots()?;
        let keep: Vec<SnapshotId> = unreadable
            .iter()
            .filter_map(|(name, _)| name.parse().ok())
            .collect();
        let loader = RepoTrees { repo, index };
        let repo_id = &repo.config().id;
        // A snapshot missing from the listing may be one saved since (another process may
        // have indexed it already): drop only what is really gone.
        let still_there = |id: &SnapshotId| {
            repo.backend()
                .exists(FileKind::Snapshot, &id.to_hex())
                .unwrap_or(true)
        };
        let mut stats = match self.sync_with(repo_id, &loader, &snaps, &keep, &still_there) {
            Err(e) if e.is_corruption() => {
                self.recreate(&format!("damaged: {e}"))?;
                let mut s = self.sync_with(repo_id, &loader, &snaps, &keep, &still_there)?;
                s.rebuilt = true;
                s
            }
            other => other?,
        };
        stats.unreadable = unreadable.len() as u64;
        Ok(stats)
    }

    /// [`Catalog::sync`] against an explicit snapshot list: `snaps` are indexed if missing,
    /// catalog snapshots in neither `snaps` nor `keep` are dropped unless `still_there`
    /// says they exist after all.
    #[doc(hidden)]
    pub fn sync_with(
        &mut self,
        repo_id: &str,
        loader: &dyn TreeSource,
        snaps: &[SnapshotEntry],
        keep: &[SnapshotId],
        still_there: &dyn Fn(&SnapshotId) -> bool,
    ) -> Result<SyncStats> {
        let mut stats = SyncStats {
            reset: self.claim(repo_id)?,
            ..SyncStats::default()
        };
        let known = self.known_snapshots()?;
        let wanted: HashSet<SnapshotId> = snaps
            .iter()
            .map(|(id, _)| *id)
            .chain(keep.iter().copied())
            .collect();
        let gone: Vec<i64> = known
            .iter()
            .filter(|(sid, _)| !wanted.contains(sid) && !still_there(sid))
            .map(|(_, row)| *row)
            .collect();
        if !gone.is_empty() {
            self.remove_snapshots(&gone)?;
            stats.snapshots_removed = gone.len() as u64;
        }
        for (id, snap) in snaps {
            if known.contains_key(id) {
                continue;
            }
            match self.add_snapshot(loader, id, snap) {
                Ok(None) => {}
                Ok(Some(a)) => {
                    stats.snapshots_added += 1;
                    stats.added.trees += a.trees;
                    stats.added.files += a.files;
                    stats.added.photos += a.photos;
                }
                Err(CatalogError::Repo(e)) => stats.failed.push((*id, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        if stats.snapshots_added > 0 || stats.snapshots_removed > 0 {
            self.conn.execute_batch("PRAGMA optimize")?;
        }
        Ok(stats)
    }

    /// Record which repository the catalog describes; empty it if it described another.
    fn claim(&mut self, repo_id: &str) -> Result<bool> {
        let read = |c: &Connection| -> Result<Option<String>> {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = 'repo_id'", [], |r| {
                    r.get(0)
                })
                .optional()?,
            )
        };
        if read(&self.conn)?.as_deref() == Some(repo_id) {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Again under the write lock: another process may have claimed it meanwhile.
        let current = read(&tx)?;
        if current.as_deref() == Some(repo_id) {
            return Ok(false);
        }
        let had_data: bool =
            tx.query_row("SELECT EXISTS(SELECT 1 FROM trees)", [], |r| r.get(0))?;
        tx.execute_batch(
            "DELETE FROM snapshot_dirs; DELETE FROM snapshots; DELETE FROM files;
             DELETE FROM tree_dirs; DELETE FROM trees; DELETE FROM contents;
             DELETE FROM snapshot_library; DELETE FROM library_assets; DELETE FROM library_dbs;",
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('repo_id', ?1)",
            [repo_id],
        )?;
        tx.commit()?;
        Ok(current.is_some() || had_data)
    }

    fn known_snapshots(&self) -> Result<HashMap<SnapshotId, i64>> {
        let mut stmt = self.conn.prepare("SELECT sid, id FROM snapshots")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (sid, id) = row?;
            if let Some(i) = Id::from_slice(&sid) {
                out.insert(SnapshotId(i), id);
            }
        }
        Ok(out)
    }

    /// Index one snapshot (in one transaction). Only trees not yet in the catalog are
    /// loaded. Already indexed: nothing happens (`None`).
    #[doc(hidden)]
    pub fn add_snapshot(
        &mut self,
        loader: &dyn TreeSource,
        id: &SnapshotId,
        snap: &Snapshot,
    ) -> Result<Option<AddStats>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM snapshots WHERE sid = ?1)",
            [&id.as_bytes()[..]],
            |r| r.get(0),
        )?;
        let mut stats = AddStats::default();
        if exists {
            return Ok(None);
        }
        let root = ensure_trees(&tx, loader, snap.tree, &mut stats)?;
        tx.execute(
            "INSERT INTO snapshots(sid, time, source_key, root) VALUES (?1, ?2, ?3, ?4)",
            params![
                &id.as_bytes()[..],
                snap.time,
                snap.source.group_key(&snap.hostname),
                root
            ],
        )?;
        let row = tx.last_insert_rowid();
        record_dirs(&tx, row, root)?;
        tx.commit()?;
        Ok(Some(stats))
    }

    /// Drop snapshots, then whatever only they referenced.
    fn remove_snapshots(&mut self, rows: &[i64]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for r in rows {
            tx.execute("DELETE FROM snapshot_dirs WHERE snapshot = ?1", [r])?;
            tx.execute("DELETE FROM snapshots WHERE id = ?1", [r])?;
        }
        collect_garbage(&tx)?;
        crate::library::collect_garbage(&tx)?;
        tx.commit()?;
        Ok(())
    }
}

fn tree_row(conn: &Connection, id: &BlobId) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM trees WHERE blob = ?1")?;
    Ok(stmt
        .query_row([&id.as_bytes()[..]], |r| r.get(0))
        .optional()?)
}

/// Make sure the tree `root` and everything under it is in the catalog; return its row.
/// Trees already present are not read again, nor is anything under them.
///
/// A level walk of the one walker (`snapvault_repo::walk`): a first sync of a remote
/// repository reads a whole level of new trees at once on several threads. Its error
/// policy is the strict one: any tree that cannot be read stops the sync.
fn ensure_trees(
    conn: &Connection,
    loader: &dyn TreeSource,
    root: BlobId,
    stats: &mut AddStats,
) -> Result<i64> {
    if let Some(r) = tree_row(conn, &root)? {
        return Ok(r);
    }
    let mut v = Indexer {
        conn,
        stats,
        rows: HashMap::new(),
        edges: Vec::new(),
        current: 0,
        failed: None,
    };
    let walked = TreeWalker::over(loader, Sharing::Once).walk_levels(root, &mut v);
    if let Some(e) = v.failed.take() {
        return Err(e);
    }
    walked?;
    let Indexer { rows, edges, .. } = v;
    let mut ins =
        conn.prepare_cached("INSERT INTO tree_dirs(tree, name, subtree) VALUES (?1, ?2, ?3)")?;
    for (parent, name, sub) in edges {
        let sub_row = match rows.get(&sub) {
            Some(r) => *r,
            None => tree_row(conn, &sub)?.ok_or_else(|| CatalogError::Unusable {
                path: Default::default(),
                reason: format!("tree {} vanished during sync", sub.to_hex()),
            })?,
        };
        ins.execute(params![parent, name, sub_row])?;
    }
    rows.get(&root)
        .copied()
        .ok_or_else(|| CatalogError::Repo(RepoError::MissingBlob(root.to_hex())))
}

/// Writes each tree the walk reads into the catalog, and goes into the folders the catalog
/// does not hold yet.
struct Indexer<'c, 's> {
    conn: &'c Connection,
    stats: &'s mut AddStats,
    /// Trees written by this walk, and their rows.
    rows: HashMap<BlobId, i64>,
    /// (folder's row, name, subtree) for every folder entry of the trees written.
    edges: Vec<(i64, Vec<u8>, BlobId)>,
    /// The row of the tree whose entries the walk is giving.
    current: i64,
    /// The catalog's own failure, which stopped the walk (a walk stops on repository
    /// errors only, so this one travels beside it).
    failed: Option<CatalogError>,
}

impl Indexer<'_, '_> {
    fn keep<T>(&mut self, r: Result<T>) -> snapvault_repo::Result<T> {
        r.map_err(|e| {
            self.failed = Some(e);
            RepoError::Interrupted(Interruption::Stopped {
                why: "the catalog could not be written".into(),
            })
        })
    }
}

impl Visitor for Indexer<'_, '_> {
    fn tree(&mut self, id: &BlobId, _: &[u8], tree: &Tree) -> snapvault_repo::Result<bool> {
        let row = insert_tree(self.conn, id, tree, self.stats);
        self.current = self.keep(row)?;
        self.rows.insert(*id, self.current);
        Ok(true)
    }

    fn entry(&mut self, _: &[u8], n: &Node) -> snapvault_repo::Result<bool> {
        let (NodeKind::Dir, Some(sub)) = (n.kind, n.subtree) else {
            return Ok(false);
        };
        self.edges.push((self.current, n.name.0.clone(), sub));
        if self.rows.contains_key(&sub) {
            return Ok(false);
        }
        let known = tree_row(self.conn, &sub);
        Ok(self.keep(known)?.is_none())
    }

    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> snapvault_repo::Result<()> {
        Err(e)
    }
}

/// Insert one tree and its media files; return its row.
fn insert_tree(conn: &Connection, id: &BlobId, tree: &Tree, stats: &mut AddStats) -> Result<i64> {
    let media: Vec<_> = tree
        .nodes
        .iter()
        .filter_map(|n| match (&n.kind, &n.media) {
            (NodeKind::File, Some(m)) => Some((n, m)),
            _ => None,
        })
        .collect();
    conn.prepare_cached("INSERT INTO trees(blob, media) VALUES (?1, ?2)")?
        .execute(params![&id.as_bytes()[..], media.len() as i64])?;
    let row = conn.last_insert_rowid();
    stats.trees += 1;
    let video_pairs: HashSet<&str> = media
        .iter()
        .filter(|(_, m)| m.kind == "video")
        .filter_map(|(_, m)| m.pair.as_deref())
        .collect();
    let mut find = conn.prepare_cached("SELECT id FROM contents WHERE key = ?1")?;
    let mut add_content = conn.prepare_cached(
        "INSERT INTO contents(key, kind, taken, day, date_source, content_id, size, blobs)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut add_file = conn.prepare_cached(
        "INSERT INTO files(tree, name, content, pair, live, mode, mtime)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut blobs = Vec::new();
    for (n, m) in media {
        blobs.clear();
        for b in &n.content {
            blobs.extend_from_slice(b.as_bytes());
        }
        let key = Id::hash_of(&blobs);
        let content: i64 = match find.query_row([&key.0[..]], |r| r.get(0)).optional()? {
            Some(c) => c,
            None => {
                add_content.execute(params![
                    &key.0[..],
                    m.kind,
                    m.taken,
                    m.taken.as_deref().and_then(day_number),
                    m.date_source,
                    m.content_id,
                    n.size as i64,
                    &blobs,
                ])?;
                stats.photos += 1;
                conn.last_insert_rowid()
            }
        };
        let live = m.kind == "photo" && m.pair.as_deref().is_some_and(|p| video_pairs.contains(p));
        add_file.execute(params![
            row,
            &n.name.0,
            content,
            m.pair,
            live,
            n.mode as i64,
            n.mtime
        ])?;
        stats.files += 1;
    }
    Ok(row)
}

/// Write where each media-holding directory of a snapshot sits (from `tree_dirs`, so
/// nothing is read from the repository here).
fn record_dirs(conn: &Connection, snapshot: i64, root: i64) -> Result<()> {
    let root_media: i64 = conn.query_row("SELECT media FROM trees WHERE id = ?1", [root], |r| {
        r.get(0)
    })?;
    let mut kids = conn.prepare_cached(
        "SELECT d.name, d.subtree, t.media FROM tree_dirs d JOIN trees t ON t.id = d.subtree
         WHERE d.tree = ?1",
    )?;
    let mut ins = conn.prepare_cached(
        "INSERT OR IGNORE INTO snapshot_dirs(snapshot, path, tree) VALUES (?1, ?2, ?3)",
    )?;
    // Trees are named by their content, so none can hold itself: a path down the tree
    // never meets one twice and is never longer than the number of trees. A longer one is
    // a loop in a damaged catalog, reported as damage so the catalog is rebuilt. (Real
    // folders may nest as deep as a file system allows: no fixed limit.)
    let trees: i64 = conn.query_row("SELECT count(*) FROM trees", [], |r| r.get(0))?;
    let mut stack: Vec<(Vec<u8>, i64, i64, i64)> = vec![(Vec::new(), root, root_media, 0)];
    while let Some((path, tree, media, depth)) = stack.pop() {
        if depth > trees {
            return Err(CatalogError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some("folders in the catalog form a loop".into()),
            )));
        }
        if media > 0 {
            ins.execute(params![snapshot, &path, tree])?;
        }
        let rows = kids.query_map([tree], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for r in rows {
            let (name, sub, sub_media) = r?;
            let mut p = path.clone();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(&name);
            stack.push((p, sub, sub_media, depth + 1));
        }
    }
    Ok(())
}

/// Delete trees no snapshot reaches any more, their files and edges, and contents that
/// no file refers to. Proportional to what dies (plus one pass over the edges).
fn collect_garbage(conn: &Connection) -> Result<()> {
    let mut edges: HashMap<i64, Vec<i64>> = HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT tree, subtree FROM tree_dirs")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for r in rows {
            let (t, s) = r?;
            edges.entry(t).or_default().push(s);
        }
    }
    let mut live: HashSet<i64> = HashSet::new();
    let mut stack: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT root FROM snapshots")?;
        stmt.query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    while let Some(t) = stack.pop() {
        if live.insert(t) {
            stack.extend(edges.get(&t).into_iter().flatten().copied());
        }
    }
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS dead_trees(id INTEGER PRIMARY KEY);
         CREATE TEMP TABLE IF NOT EXISTS dead_contents(id INTEGER PRIMARY KEY);
         DELETE FROM temp.dead_trees; DELETE FROM temp.dead_contents;",
    )?;
    {
        let mut all = conn.prepare("SELECT id FROM trees")?;
        let mut ins = conn.prepare("INSERT INTO temp.dead_trees(id) VALUES (?1)")?;
        let ids: Vec<i64> = all
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in ids.into_iter().filter(|id| !live.contains(id)) {
            ins.execute([id])?;
        }
    }
    conn.execute_batch(
        "INSERT OR IGNORE INTO temp.dead_contents(id)
             SELECT content FROM files WHERE tree IN (SELECT id FROM temp.dead_trees);
         DELETE FROM files WHERE tree IN (SELECT id FROM temp.dead_trees);
         DELETE FROM tree_dirs WHERE tree IN (SELECT id FROM temp.dead_trees);
         DELETE FROM trees WHERE id IN (SELECT id FROM temp.dead_trees);
         DELETE FROM contents WHERE id IN (SELECT id FROM temp.dead_contents)
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.content = contents.id);
         DELETE FROM temp.dead_trees; DELETE FROM temp.dead_contents;",
    )?;
    Ok(())
}
