//! A folder unchanged since the parent snapshot keeps the parent's tree (see `reuse`):
//! after each kind of change inside a folder, the snapshot taken against the parent is
//! the one taken reading everything anew (tree id for tree id), exactly the folders on the
//! way from the change up to the root are written again, and the rest are reused.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use proptest::prelude::*;

use super::reuse::{node_from, same_node};
use super::*;
use crate::format::tree::{MediaMeta, Name};
use crate::ops::fs_source::{FolderSource, SourceFile};
use crate::ops::test_support::{Photos, create_small_repo, files, open, photo, verify};
use crate::testing::write;

/// Notes the folders whose tree was reused.
#[derive(Default)]
struct Reused(Mutex<BTreeSet<String>>);

impl Observer for Reused {
    fn folder_reused(&self, dir: &[u8]) {
        let dir = String::from_utf8_lossy(dir).into_owned();
        self.0.lock().unwrap().insert(dir);
    }
}

/// A snapshot of `folder` against `parent` (and `also`), and the folders it reused.
fn take(
    repo: &Repository,
    folder: &dyn Source,
    paths: &FolderSource,
    parent: Option<(SnapshotId, Snapshot)>,
    also: Vec<Snapshot>,
    opts: impl FnOnce(ArchiveOptions) -> ArchiveOptions,
) -> ((SnapshotId, Snapshot), BTreeSet<String>) {
    let index = repo.load_index_for_snapshot().unwrap().index;
    let opts = opts(ArchiveOptions {
        parent,
        also,
        ..crate::testing::folder_options(paths)
    });
    let reused = Reused::default();
    let snap = run(repo, index, folder, opts, &reused, &Photos).unwrap();
    (snap, reused.0.into_inner().unwrap())
}

/// Every folder under `lib` as the snapshot names it (`lib/...`), with the root (`""`).
fn folders(lib: &Path) -> BTreeSet<String> {
    fn walk(d: &Path, at: &str, out: &mut BTreeSet<String>) {
        out.insert(at.to_string());
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                let name = e.file_name().to_string_lossy().into_owned();
                walk(&e.path(), &format!("{at}/{name}"), out);
            }
        }
    }
    let mut out = BTreeSet::from([String::new()]);
    walk(lib, "lib", &mut out);
    out
}

/// The modification time of every folder under `lib`, to put back after a change: the
/// folders' own nodes then match, and only what they list tells the change.
fn folder_times(lib: &Path) -> Vec<(std::path::PathBuf, SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![lib.to_path_buf()];
    while let Some(d) = todo.pop() {
        out.push((
            d.clone(),
            std::fs::metadata(&d).unwrap().modified().unwrap(),
        ));
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            }
        }
    }
    out
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

fn library(lib: &Path) {
    for i in 0..5 {
        write(
            &lib.join(format!("a/f{i:02}")),
            format!("a file {i}").as_bytes(),
        );
    }
    for i in 0..3 {
        write(
            &lib.join(format!("a/deep/er/g{i}")),
            format!("deep {i}").as_bytes(),
        );
        write(
            &lib.join(format!("b/h{i}")),
            format!("b file {i}").as_bytes(),
        );
    }
    std::os::unix::fs::symlink("h0", lib.join("b/link")).unwrap();
    std::fs::create_dir_all(lib.join("c")).unwrap();
    photo(&lib.join("c"), 1);
    write(&lib.join("top.txt"), b"top");
}

/// Each kind of change inside a folder, one after the other: the snapshot against the
/// previous one is the snapshot of everything read anew, and only the folders on the way
/// from the change to the root are written again.
#[test]
fn after_each_kind_of_change_the_reused_trees_are_the_trees_read_anew() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&lib);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let mut kept: Vec<(SnapshotId, BTreeMap<String, Vec<u8>>)> = Vec::new();
    let content = |lib: &Path| {
        files(lib)
            .into_iter()
            .map(|(k, v)| (format!("lib/{k}"), v))
            .collect::<BTreeMap<_, _>>()
    };
    let (first, none) = take(&repo, &folder, &folder, None, Vec::new(), |o| o);
    assert!(
        none.is_empty(),
        "nothing to reuse without a parent: {none:?}"
    );
    kept.push((first.0, content(&lib)));
    let mut parent = first;

    type Change = Box<dyn Fn(&Path)>;
    let at = |p: &'static str| move |lib: &Path| lib.join(p);
    let changes: Vec<(&str, Change, &[&str])> = vec![
        ("nothing", Box::new(|_| {}), &[]),
        (
            "a file edited in place, size and mtime kept (seen by its change time)",
            Box::new(move |lib| {
                let f = at("a/f01")(lib);
                let t = std::fs::metadata(&f).unwrap().modified().unwrap();
                std::fs::write(&f, b"A FILE 1").unwrap();
                set_mtime(&f, t);
            }),
            &["", "lib", "lib/a"],
        ),
        (
            "two files of one size and time swapped by name (seen by their inodes)",
            Box::new(move |lib| {
                let (x, y, t) = (at("b/h0")(lib), at("b/h1")(lib), at("b/tmp")(lib));
                let time = std::fs::metadata(&x).unwrap().modified().unwrap();
                set_mtime(&y, time);
                std::fs::rename(&x, &t).unwrap();
                std::fs::rename(&y, &x).unwrap();
                std::fs::rename(&t, &y).unwrap();
            }),
            &["", "lib", "lib/b"],
        ),
        (
            "a file edited",
            Box::new(move |lib| std::fs::write(at("a/f01")(lib), b"longer now").unwrap()),
            &["", "lib", "lib/a"],
        ),
        (
            "a file added",
            Box::new(move |lib| std::fs::write(at("b/new")(lib), b"new").unwrap()),
            &["", "lib", "lib/b"],
        ),
        (
            "a file removed",
            Box::new(move |lib| std::fs::remove_file(at("b/h1")(lib)).unwrap()),
            &["", "lib", "lib/b"],
        ),
        (
            "a file renamed deep below",
            Box::new(move |lib| {
                std::fs::rename(at("a/deep/er/g0")(lib), at("a/deep/er/g9")(lib)).unwrap()
            }),
            &["", "lib", "lib/a", "lib/a/deep", "lib/a/deep/er"],
        ),
        (
            "a file's mode",
            Box::new(move |lib| {
                let perm = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(at("c/IMG_0001.HEIC")(lib), perm).unwrap();
            }),
            &["", "lib", "lib/c"],
        ),
        (
            "a symlink retargeted",
            Box::new(move |lib| {
                std::fs::remove_file(at("b/link")(lib)).unwrap();
                std::os::unix::fs::symlink("h2", at("b/link")(lib)).unwrap();
            }),
            &["", "lib", "lib/b"],
        ),
        (
            "a file became a folder",
            Box::new(move |lib| {
                std::fs::remove_file(at("b/h2")(lib)).unwrap();
                write(&at("b/h2/inside")(lib), b"inside");
            }),
            &["", "lib", "lib/b", "lib/b/h2"],
        ),
        (
            "a second link to a file (its node gains dev and ino)",
            Box::new(move |lib| std::fs::hard_link(at("a/f02")(lib), at("b/f02")(lib)).unwrap()),
            &["", "lib", "lib/a", "lib/b"],
        ),
        (
            "an empty folder added deep below",
            Box::new(move |lib| std::fs::create_dir(at("a/deep/empty")(lib)).unwrap()),
            &["", "lib", "lib/a", "lib/a/deep", "lib/a/deep/empty"],
        ),
    ];
    for (what, change, written) in changes {
        let before = content(&lib);
        let times = folder_times(&lib);
        change(&lib);
        for (d, t) in &times {
            set_mtime(d, *t);
        }
        let (snap, reused) = take(&repo, &folder, &folder, Some(parent.clone()), vec![], |o| o);
        let written: BTreeSet<String> = written.iter().map(|s| s.to_string()).collect();
        let expected: BTreeSet<String> = folders(&lib).difference(&written).cloned().collect();
        assert_eq!(reused, expected, "{what}: folders reused");
        if written.is_empty() {
            assert_eq!(snap.1.tree, parent.1.tree, "{what}");
        } else {
            let (anew, _) = take(&repo, &folder, &folder, None, vec![], |o| o);
            assert_eq!(snap.1.tree, anew.1.tree, "{what}: not the tree read anew");
            assert_ne!(snap.1.tree, parent.1.tree, "{what}");
            kept.push((anew.0, content(&lib)));
        }
        // The file edited in place keeps its old content: what the snapshot holds.
        let holds = if written.is_empty() {
            before
        } else {
            content(&lib)
        };
        kept.push((snap.0, holds));
        parent = snap;
    }

    // A folder's own time changed: its node in the folder above does, its tree does not.
    let deep = lib.join("a/deep");
    set_mtime(
        &deep,
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30),
    );
    let (snap, reused) = take(&repo, &folder, &folder, Some(parent.clone()), vec![], |o| o);
    let written = BTreeSet::from(["".to_string(), "lib".into(), "lib/a".into()]);
    let expected: BTreeSet<String> = folders(&lib).difference(&written).cloned().collect();
    assert_eq!(reused, expected, "a folder's time");
    let (anew, _) = take(&repo, &folder, &folder, None, vec![], |o| o);
    assert_eq!(snap.1.tree, anew.1.tree, "a folder's time");
    kept.push((snap.0, content(&lib)));
    kept.push((anew.0, content(&lib)));
    verify(&root, &kept, "trees reused");
}

/// A tree marked damaged (to be stored again) is stored again even though its folder is
/// unchanged: the folders above keep their trees, since the ids are the same.
#[test]
fn a_damaged_tree_is_stored_again_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&lib);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let (first, _) = take(&repo, &folder, &folder, None, vec![], |o| o);
    let index = repo.load_index().unwrap().index;
    let top = repo.load_tree(&index, &first.1.tree).unwrap();
    let lib_tree = repo
        .load_tree(&index, &top.nodes[0].subtree.unwrap())
        .unwrap();
    let b = lib_tree.nodes.iter().find(|n| n.name.0 == b"b").unwrap();
    let damaged = b.subtree.unwrap();
    let (snap, reused) = take(&repo, &folder, &folder, Some(first.clone()), vec![], |o| {
        ArchiveOptions {
            reread: HashSet::from([damaged]),
            ..o
        }
    });
    assert_eq!(snap.1.tree, first.1.tree);
    assert_eq!(snap.1.summary.blobs_added, 1, "the tree of lib/b again");
    let written = BTreeSet::from(["lib/b".to_string()]);
    let expected: BTreeSet<String> = folders(&lib).difference(&written).cloned().collect();
    assert_eq!(reused, expected);
}

/// A folder listed without change times and inodes: the nodes a snapshot made before they
/// were recorded (or by a source that cannot tell).
struct Blind<'a>(&'a FolderSource);

impl Source for Blind<'_> {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut entries = self.0.list(dir)?;
        for e in &mut entries {
            (e.ctime, e.inode) = (None, None);
        }
        Ok(entries)
    }
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        self.0.open(path)
    }
}

/// After an upgrade, a parent whose nodes lack `ctime` and `inode` is compared by size and
/// mtime: no file is read again, every file's node gains both fields (so the folders with
/// files are written again, once), and the snapshot after that reuses every folder.
#[test]
fn nodes_without_change_time_and_inode_are_compared_as_before_and_gain_them() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&lib);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let (old, _) = take(&repo, &Blind(&folder), &folder, None, vec![], |o| o);
    let (upgraded, reused) = take(&repo, &folder, &folder, Some(old.clone()), vec![], |o| o);
    let sum = &upgraded.1.summary;
    assert_eq!(
        (sum.bytes_read, sum.files_changed, sum.files_new),
        (0, 0, 0)
    );
    assert_eq!(sum.files_unchanged, old.1.summary.files_total);
    // Every folder lists a file, or a folder that does.
    assert!(reused.is_empty(), "{reused:?}");
    let (anew, _) = take(&repo, &folder, &folder, None, vec![], |o| o);
    assert_eq!(upgraded.1.tree, anew.1.tree, "not the tree read anew");
    let index = repo.load_index().unwrap().index;
    let lib_tree = |s: &Snapshot| {
        let top = repo.load_tree(&index, &s.tree).unwrap();
        repo.load_tree(&index, &top.nodes[0].subtree.unwrap())
            .unwrap()
    };
    let top_txt = |t: &Tree| {
        t.nodes
            .iter()
            .find(|n| n.name.0 == b"top.txt")
            .cloned()
            .unwrap()
    };
    let (before, after) = (top_txt(&lib_tree(&old.1)), top_txt(&lib_tree(&upgraded.1)));
    assert_eq!((before.ctime, before.inode), (None, None));
    let md = std::fs::metadata(lib.join("top.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.ctime, after.inode, after.dev, after.ino),
        (
            Some(md.ctime() * 1_000_000_000 + md.ctime_nsec()),
            Some(md.ino()),
            None,
            None
        ),
        "recorded for the change test, not for linking"
    );
    assert_eq!(after.content, before.content);
    let (next, reused) = take(
        &repo,
        &folder,
        &folder,
        Some(upgraded.clone()),
        vec![],
        |o| o,
    );
    assert_eq!(next.1.tree, upgraded.1.tree);
    assert_eq!(reused, folders(&lib));
}

/// Stops the snapshot as the walk lists `at`.
struct StopAt<'a> {
    inner: &'a FolderSource,
    at: &'static [u8],
    stop: Arc<Stop>,
}

impl Source for StopAt<'_> {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        if dir == self.at {
            self.stop.request("stopped by the test");
        }
        self.inner.list(dir)
    }
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        self.inner.open(path)
    }
}

/// A snapshot stopped inside an unchanged folder keeps that folder's entries walked
/// before the stop (not the parent's whole tree); the next snapshot, against the partial
/// one and the complete one before it, is the complete one again.
#[test]
fn a_stop_inside_an_unchanged_folder_keeps_only_what_was_walked() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let repo = open(&root);
    library(&lib);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let (first, _) = take(&repo, &folder, &folder, None, vec![], |o| o);
    let stop = Arc::new(Stop::default());
    let stopping = StopAt {
        inner: &folder,
        at: b"lib/b",
        stop: stop.clone(),
    };
    let (partial, _) = take(
        &repo,
        &stopping,
        &folder,
        Some(first.clone()),
        vec![],
        |o| ArchiveOptions {
            stop: Some(stop.clone()),
            ..o
        },
    );
    assert!(partial.1.tags.contains(&"partial".to_string()));
    let index = repo.load_index().unwrap().index;
    let nodes = |id: &BlobId| -> Vec<(String, Option<BlobId>)> {
        let t = repo.load_tree(&index, id).unwrap();
        t.nodes
            .into_iter()
            .map(|n| (n.name.lossy(), n.subtree))
            .collect()
    };
    let lib_of = |root: &BlobId| nodes(&nodes(root)[0].1.unwrap());
    let (before, after) = (lib_of(&first.1.tree), lib_of(&partial.1.tree));
    assert_eq!(
        after.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        ["a", "b"],
        "the entries of lib walked before the stop"
    );
    assert_eq!(after[0], before[0], "lib/a, walked whole before the stop");
    assert_eq!(
        nodes(&after[1].1.unwrap()),
        [],
        "lib/b: stopped before its first entry"
    );

    let (again, reused) = take(
        &repo,
        &folder,
        &folder,
        Some(partial),
        vec![first.1.clone()],
        |o| o,
    );
    assert_eq!(again.1.tree, first.1.tree);
    // The root matched the partial snapshot's root, whose `lib` is another tree: written
    // again, the same as the first snapshot's.
    let mut all = folders(&lib);
    all.remove("");
    assert_eq!(reused, all);
}

fn entry(kind: NodeKind, v: [u8; 8]) -> SourceEntry {
    SourceEntry {
        name: Name(vec![b'a' + v[0] % 2]),
        kind,
        mode: 0o644 + u32::from(v[1] % 2),
        mtime: i64::from(v[2] % 2),
        btime: (!v[3].is_multiple_of(3)).then_some(i64::from(v[3] % 2)),
        size: if kind == NodeKind::File {
            u64::from(v[4] % 2)
        } else {
            0
        },
        target: (kind == NodeKind::Symlink).then(|| Name(vec![b'x' + v[5] % 2])),
        rdev: matches!(kind, NodeKind::CharDevice | NodeKind::BlockDevice)
            .then_some(u64::from(v[5] % 2)),
        link: (kind == NodeKind::File && !v[5].is_multiple_of(3))
            .then_some((1, u64::from(v[5] % 2))),
        ctime: (kind == NodeKind::File && !v[6].is_multiple_of(3)).then_some(i64::from(v[6] % 2)),
        inode: (kind == NodeKind::File && !v[7].is_multiple_of(3)).then_some(u64::from(v[7] % 2)),
    }
}

fn kind(k: u8) -> NodeKind {
    [
        NodeKind::File,
        NodeKind::Dir,
        NodeKind::Symlink,
        NodeKind::Fifo,
        NodeKind::CharDevice,
    ][usize::from(k % 5)]
}

/// `old` with one field changed (`which` past the last field: none).
fn changed(mut old: Node, which: u8) -> Node {
    let other = |o: Option<u64>| match o {
        Some(_) => None,
        None => Some(1),
    };
    match which {
        0 => old.name.0.push(b'x'),
        1 => old.kind = kind(old.kind as u8 + 1),
        2 => old.mode ^= 0o100,
        3 => old.mtime += 1,
        4 => old.btime = other(old.btime.map(|b| b as u64)).map(|b| b as i64),
        5 => old.size += 1,
        6 => {
            old.target = match old.target {
                Some(_) => None,
                None => Some(Name(b"t".to_vec())),
            }
        }
        7 => old.rdev = other(old.rdev),
        8 => old.dev = old.dev.map(|d| d + 1),
        9 => old.ino = other(old.ino),
        10 => old.ctime = other(old.ctime.map(|c| c as u64)).map(|c| c as i64),
        11 => old.inode = other(old.inode),
        _ => {}
    }
    old
}

proptest! {
    /// `same_node` says yes exactly when the node the walk would build for the entry is
    /// the old node: a file's content and media taken over when the change test finds it
    /// unchanged, a folder's subtree settled by the finalizer. The old node is the one
    /// built from the entry with at most one field changed, or one of another entry.
    #[test]
    fn same_node_is_the_node_the_walk_would_build(
        (k, v) in (any::<u8>(), any::<[u8; 8]>()),
        (ok, w) in (any::<u8>(), any::<[u8; 8]>()),
        (unchanged, from_entry) in (any::<bool>(), any::<bool>()),
        which in 0u8..14,
        extra in 0u8..8,
    ) {
        let e = entry(kind(k), v);
        let mut old = match from_entry {
            true => changed(node_from(&e, None), which),
            false => node_from(&entry(kind(ok), w), None),
        };
        let id = BlobId(crate::format::id::Id::hash_of(&[extra]));
        if extra & 1 != 0 {
            old.content = vec![id];
        }
        if extra & 2 != 0 {
            old.media = Some(MediaMeta { kind: "photo".into(), ..Default::default() });
        }
        if extra & 4 != 0 {
            old.subtree = Some(id);
        }
        let built = match e.kind {
            NodeKind::File => unchanged.then(|| node_from(&e, Some(&old))),
            NodeKind::Dir => Some(Node { subtree: old.subtree, ..node_from(&e, None) }),
            _ => Some(node_from(&e, None)),
        };
        let asked = std::cell::Cell::new(false);
        let same = same_node(&e, &old, || {
            asked.set(true);
            unchanged
        });
        prop_assert_eq!(same, built.as_ref() == Some(&old), "{:?} / {:?}", e, old);
        prop_assert!(!asked.get() || e.kind == NodeKind::File);
    }
}
