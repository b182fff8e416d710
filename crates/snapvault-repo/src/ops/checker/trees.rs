//! `check`'s walk over the snapshots' trees. Each tree blob is read once however many
//! folders and snapshots share it, since a crafted snapshot can make a few blobs expand
//! into millions of paths (see [`crate::repository::expansion`]); each distinct tree's entries are
//! checked once: a file's data is listed as stored, its size is what that data holds, its
//! content is file data and a folder's listing is a folder listing. The files hurt by
//! damage, and those that could not be checked, are then named by walking again only into
//! the trees that hold some.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{CheckReport, DamagedFile};
use crate::error::{RepoError, Result};
use crate::format::blob::BlobType;
use crate::format::id::{BlobId, SnapshotId};
use crate::format::tree::{Node, NodeKind, Tree};
use crate::repository::expansion;
use crate::repository::index::Index;
use crate::repository::walk::{self, Sharing, TreeWalker, Visitor, join};
use crate::repository::{Repository, SnapshotEntry};

/// One distinct tree: its entries, the listings its folders name (as often as named), how
/// many paths it expands to, and whether damage, or something not checked, lies below it.
struct Shape {
    entries: u64,
    children: Vec<BlobId>,
    paths: u64,
    bad: bool,
    unchecked: bool,
}

impl Shape {
    fn leaf(bad: bool, unchecked: bool) -> Shape {
        Shape {
            entries: 0,
            children: Vec::new(),
            paths: 0,
            bad,
            unchecked,
        }
    }
}

/// What is wrong with a file entry, or why it was not checked.
enum Fault {
    /// Some of its data is not listed as stored.
    Missing(Vec<BlobId>),
    /// Some of its data is damaged.
    Damaged,
    /// Its recorded size is not what its stored data holds.
    Size { holds: u64 },
    /// Its content names a folder listing: restorable, but not what `snapshot` writes.
    NotFileData,
    /// Its data could not be read, or may be named by an index file that could not be.
    NotChecked,
}

impl Fault {
    /// Does it hurt the file (rather than only look odd, or be unknown)?
    fn hurts(&self) -> bool {
        matches!(
            self,
            Fault::Missing(_) | Fault::Damaged | Fault::Size { .. }
        )
    }
}

/// What the walk knows besides the index.
struct Known<'a> {
    index: &'a Index,
    /// Blobs whose every copy is in a pack that could not be read.
    unread_blobs: HashSet<BlobId>,
    index_incomplete: bool,
    index_damaged: bool,
}

impl Known<'_> {
    fn fault(&self, bad_blobs: &HashSet<BlobId>, n: &Node) -> Option<Fault> {
        let missing: Vec<BlobId> = n
            .content
            .iter()
            .filter(|b| !self.index.contains(b))
            .copied()
            .collect();
        if !missing.is_empty() {
            // Perhaps named by the index file that could not be read.
            return Some(match self.index_incomplete {
                true => Fault::NotChecked,
                false => Fault::Missing(missing),
            });
        }
        if n.content.iter().any(|b| bad_blobs.contains(b)) {
            return Some(Fault::Damaged);
        }
        let mut holds = 0u64;
        let mut listing = false;
        for l in n.content.iter().filter_map(|b| self.index.get(b)) {
            holds += l.raw_len as u64;
            listing |= l.typ() != BlobType::Data;
        }
        if holds != n.size {
            return Some(Fault::Size { holds });
        }
        if listing {
            return Some(Fault::NotFileData);
        }
        n.content
            .iter()
            .any(|b| self.unread_blobs.contains(b))
            .then_some(Fault::NotChecked)
    }
}

fn shown(path: &[u8]) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        walk::shown(path)
    }
}

/// The first walk: each distinct tree once, its entries checked, its [`Shape`] made on the
/// way back up.
struct FirstWalk<'a, 'r> {
    known: &'a Known<'a>,
    r: &'r mut CheckReport,
    snapshot: SnapshotId,
    shapes: HashMap<BlobId, Shape>,
    /// Trees that are damaged (with why) or could not be read.
    damaged: HashMap<BlobId, String>,
    unread: HashSet<BlobId>,
    /// Entered, not yet left: (entries, children, damage / not checked among its own files).
    open: HashMap<BlobId, (u64, Vec<BlobId>, bool, bool)>,
}

impl FirstWalk<'_, '_> {
    fn object(&self) -> String {
        format!("snapshot {}", self.snapshot.to_hex())
    }
}

impl Visitor for FirstWalk<'_, '_> {
    fn unreadable(&mut self, id: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        let index = self.known.index;
        if e.is_unavailable() {
            self.r.unread(
                self.object(),
                format!("folder {} could not be read: {e}", shown(path)),
            );
            self.unread.insert(*id);
            self.shapes.insert(*id, Shape::leaf(false, true));
        } else if self.known.index_incomplete && !index.contains(id) {
            self.r.unread(
                self.object(),
                format!(
                    "folder {} is in no index file that could be read ({e})",
                    shown(path)
                ),
            );
            self.unread.insert(*id);
            self.shapes.insert(*id, Shape::leaf(false, true));
        } else {
            let why = if self.known.index_damaged && !index.contains(id) {
                // Not "missing from the repository": most likely in a pack that only the
                // damaged index file names.
                "it is in no index file that could be read (an index file is damaged; \
                 rebuilding the index from the packs finds it if a pack holds it)"
                    .to_string()
            } else {
                e.to_string()
            };
            self.damaged.insert(*id, why);
            self.r.bad_blobs.insert(*id);
            if !index.contains(id) {
                self.r.missing_blobs.insert(*id);
            }
            self.shapes.insert(*id, Shape::leaf(true, false));
        }
        Ok(())
    }

    fn tree(&mut self, id: &BlobId, path: &[u8], tree: &Tree) -> Result<bool> {
        let (index, r) = (self.known.index, &mut *self.r);
        let object = || format!("snapshot {}", self.snapshot.to_hex());
        let mut children = Vec::new();
        let (mut bad, mut unchecked) = (false, false);
        for n in &tree.nodes {
            let p = join(path, n);
            match (n.kind, n.subtree) {
                (NodeKind::Dir, Some(sub)) => {
                    if index.get(&sub).is_some_and(|l| l.typ() != BlobType::Tree) {
                        r.error(
                            object(),
                            format!(
                                "{p}: its folder listing is stored as file data, not as a \
                                 folder listing (a crafted snapshot, or a listing whose \
                                 bytes are exactly some stored file's)"
                            ),
                        );
                    }
                    children.push(sub);
                }
                (NodeKind::File, _) => {
                    let Some(f) = self.known.fault(&r.bad_blobs, n) else {
                        continue;
                    };
                    bad |= f.hurts();
                    unchecked |= matches!(f, Fault::NotChecked);
                    let msg = match f {
                        Fault::Missing(missing) => {
                            r.missing_blobs.extend(missing);
                            format!("{p}: data blob missing from the index")
                        }
                        Fault::Size { holds } => format!(
                            "{p}: the snapshot says it has {} bytes, but its stored \
                             content holds {holds} (damaged or crafted; restore refuses it)",
                            n.size
                        ),
                        Fault::NotFileData => format!(
                            "{p}: its content is stored as a folder listing, not as file \
                             data (a crafted snapshot, or a file whose bytes are exactly \
                             one of this repository's folder listings)"
                        ),
                        Fault::Damaged | Fault::NotChecked => continue,
                    };
                    r.error(object(), msg);
                }
                // Symlinks, FIFOs, sockets, devices: no data.
                _ => {}
            }
        }
        self.open
            .insert(*id, (tree.nodes.len() as u64, children, bad, unchecked));
        Ok(true)
    }

    fn leave(&mut self, id: &BlobId, _: &[u8], _: Option<&Node>) -> Result<()> {
        let Some((entries, children, bad, unchecked)) = self.open.remove(id) else {
            return Ok(());
        };
        let mut s = Shape {
            entries,
            children,
            paths: entries,
            bad,
            unchecked,
        };
        for c in s.children.iter().filter_map(|c| self.shapes.get(c)) {
            s.paths = s.paths.saturating_add(c.paths);
            s.bad |= c.bad;
            s.unchecked |= c.unchecked;
        }
        self.shapes.insert(*id, s);
        Ok(())
    }
}

/// Walk every snapshot's trees: problems, damaged files and files not checked go to `r`.
pub(super) fn walk_snapshots(
    repo: &Repository,
    index: &Index,
    snaps: &[SnapshotEntry],
    r: &mut CheckReport,
) {
    let known = Known {
        index,
        unread_blobs: index
            .blobs()
            .filter(|(b, _)| {
                index
                    .locations(b)
                    .iter()
                    .all(|l| r.unread_packs.contains(&index.pack_of(l)))
            })
            .map(|(b, _)| *b)
            .collect(),
        index_incomplete: r.index_incomplete,
        index_damaged: r.index_damaged,
    };
    let mut walker = TreeWalker::new(repo, index);
    let mut first = FirstWalk {
        known: &known,
        r,
        snapshot: SnapshotId::default(),
        shapes: HashMap::new(),
        damaged: HashMap::new(),
        unread: HashSet::new(),
        open: HashMap::new(),
    };
    for (sid, snap) in snaps {
        first.snapshot = *sid;
        // The visitor never fails and every unreadable tree is skipped.
        let _ = walker.walk(snap.tree, &mut first);
    }
    let FirstWalk {
        shapes,
        damaged: damaged_trees,
        unread: unread_trees,
        r,
        ..
    } = first;

    for (sid, snap) in snaps {
        let paths = shapes.get(&snap.tree).map_or(0, |s| s.paths);
        if paths <= expansion::PATHS_ALWAYS_LISTED {
            continue;
        }
        let entries = distinct_entries(&shapes, &snap.tree);
        if expansion::too_expanded(paths, entries) {
            r.error(
                format!("snapshot {}", sid.to_hex()),
                format!(
                    "{}; ls, restore, diff and find refuse it",
                    expansion::describe(paths, entries, false)
                ),
            );
        }
    }

    let trees = Trees {
        repo,
        known: &known,
        shapes: &shapes,
        damaged: &damaged_trees,
        unread: &unread_trees,
    };
    trees.name_files(snaps, r);
    let missing: Vec<BlobId> = r.missing_blobs.iter().copied().collect();
    r.bad_blobs.extend(missing);
}

/// The distinct folder entries a tree is made of (each listing counted once).
fn distinct_entries(shapes: &HashMap<BlobId, Shape>, root: &BlobId) -> u64 {
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut n = 0u64;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(s) = shapes.get(&id) {
            n += s.entries;
            stack.extend(&s.children);
        }
    }
    n
}

/// What the second walk needs from the first.
struct Trees<'a> {
    repo: &'a Repository,
    known: &'a Known<'a>,
    shapes: &'a HashMap<BlobId, Shape>,
    damaged: &'a HashMap<BlobId, String>,
    unread: &'a HashSet<BlobId>,
}

impl Trees<'_> {
    fn wanted(&self, id: &BlobId) -> bool {
        self.shapes.get(id).is_some_and(|s| s.bad || s.unchecked)
    }

    /// Every path of a damaged file in each snapshot (and of what could not be checked),
    /// walking every path but only into trees with such files below them (the trees kept
    /// once read, for all snapshots); as many paths per snapshot as [`Expansion`] allows
    /// a listing.
    ///
    /// [`Expansion`]: crate::repository::expansion::Expansion
    fn name_files(&self, snaps: &[SnapshotEntry], r: &mut CheckReport) {
        let mut walker = TreeWalker::with(
            self.repo,
            self.known.index,
            Sharing::EveryPath { keep: true },
        );
        let mut v = Naming {
            trees: self,
            r,
            snapshot: SnapshotId::default(),
            object: String::new(),
            told: HashSet::new(),
            damaged: BTreeMap::new(),
            not_checked: HashSet::new(),
        };
        for (sid, snap) in snaps.iter().filter(|(_, s)| self.wanted(&s.tree)) {
            v.snapshot = *sid;
            v.object = format!("snapshot {}", sid.to_hex());
            v.told.clear();
            if !v.enter(&snap.tree, b"") {
                continue;
            }
            // The visitor never fails: an error is the expansion bound.
            if walker
                .walk_named(snap.tree, &v.object.clone(), &mut v)
                .is_err()
            {
                let m = "holds more damaged or unchecked files than can be listed; \
                         the list stops here";
                v.r.error(v.object.clone(), m);
            }
        }
        let Naming {
            r,
            damaged,
            not_checked,
            ..
        } = v;
        r.damaged_files = damaged.into_values().collect();
        r.files_not_checked = not_checked.len();
    }
}

/// The second walk: names the damaged files, and those not checked.
struct Naming<'a, 'r> {
    trees: &'a Trees<'a>,
    r: &'r mut CheckReport,
    snapshot: SnapshotId,
    /// "snapshot <id>", for messages.
    object: String,
    /// Damaged trees reported in this snapshot already.
    told: HashSet<BlobId>,
    damaged: BTreeMap<String, DamagedFile>,
    not_checked: HashSet<String>,
}

impl Naming<'_, '_> {
    /// Should the walk go into the tree `id` at `path`? Not when the first walk found it
    /// damaged (said once per snapshot) or unread (counted as not checked).
    fn enter(&mut self, id: &BlobId, path: &[u8]) -> bool {
        if let Some(e) = self.trees.damaged.get(id) {
            if self.told.insert(*id) {
                let m = format!("tree of {} cannot be read: {e}", shown(path));
                self.r.error(self.object.clone(), m);
            }
            return false;
        }
        if self.trees.unread.contains(id) {
            let at = walk::shown(path);
            self.not_checked
                .insert(format!("{}/{at}", self.snapshot.to_hex()));
            return false;
        }
        true
    }
}

impl Visitor for Naming<'_, '_> {
    fn entry(&mut self, path: &[u8], n: &Node) -> Result<bool> {
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) if self.trees.wanted(&sub) => Ok(self.enter(&sub, path)),
            (NodeKind::File, _) => {
                match self.trees.known.fault(&self.r.bad_blobs, n) {
                    Some(f) if f.hurts() => {
                        let p = walk::shown(path);
                        let d = self
                            .damaged
                            .entry(p.clone())
                            .or_insert_with(|| DamagedFile {
                                path: p,
                                snapshots: Vec::new(),
                                taken: n.media.as_ref().and_then(|m| m.taken.clone()),
                            });
                        if !d.snapshots.contains(&self.snapshot) {
                            d.snapshots.push(self.snapshot);
                        }
                    }
                    Some(Fault::NotChecked) => {
                        self.not_checked.insert(walk::shown(path));
                    }
                    _ => {}
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Read by the first walk, unreadable now: nothing to name below it.
    fn unreadable(&mut self, _: &BlobId, _: &[u8], _: RepoError) -> Result<()> {
        Ok(())
    }
}
