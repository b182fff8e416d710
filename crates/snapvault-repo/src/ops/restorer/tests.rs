use super::*;
use crate::format::tree::Name;
use crate::ops::observe::NoHooks;
use crate::ops::test_support::{create_small_repo, open};
use crate::repository::walk::shown;
use std::path::{Path, PathBuf};

fn node(name: &[u8], kind: NodeKind) -> Node {
    Node {
        name: Name(name.to_vec()),
        kind,
        mode: 0o644,
        mtime: 1_700_000_000_000_000_000,
        btime: None,
        size: 0,
        content: vec![],
        subtree: None,
        target: None,
        media: None,
        rdev: None,
        dev: None,
        ino: None,
        ctime: None,
        inode: None,
    }
}

fn item(path: &[u8], kind: NodeKind) -> RestoreItem {
    let name = split(path).1;
    RestoreItem {
        path: path.to_vec(),
        node: node(name, kind),
    }
}

/// Names too long for the target's file system (a folder, a file): each is recorded, the
/// rest restored, and no temporary file is left.
#[test]
fn names_too_long_are_recorded_and_the_rest_restored() {
    let tmp = tempfile::tempdir().unwrap();
    create_small_repo(&tmp.path().join("repo"), false);
    let repo = open(&tmp.path().join("repo"));
    let index = repo.load_index().unwrap().index;
    let long_dir = vec![b'd'; 300];
    let long_file = [b"ok/".as_slice(), &[b'f'; 300]].concat();
    let in_long = [long_dir.as_slice(), b"/x.jpg"].concat();
    let items = vec![
        item(b"ok/a.jpg", NodeKind::File),
        item(&long_file, NodeKind::File),
        item(&in_long, NodeKind::File),
    ];
    let dirs = vec![item(b"ok", NodeKind::Dir), item(&long_dir, NodeKind::Dir)];
    let target = tmp.path().join("t");
    let opts = RestoreOptions {
        target: target.clone(),
        include: None,
        overwrite: false,
        dry_run: false,
        threads: 2,
    };
    let stats = restore(&repo, &index, &items, &dirs, &opts, &NoHooks).unwrap();
    assert_eq!(stats.files_restored, 1, "{:?}", stats.problems);
    assert!(target.join("ok/a.jpg").is_file());
    assert_eq!(stats.problems.len(), 2, "{:?}", stats.problems);
    let folder = stats
        .problems
        .iter()
        .find(|(p, _)| p.as_bytes() == long_dir.as_slice())
        .expect("the long folder is named");
    assert!(folder.1.to_string().contains("too long"), "{folder:?}");
    assert!(folder.1.to_string().contains("1 item(s)"), "{folder:?}");
    assert!(
        stats
            .problems
            .iter()
            .any(|(p, _)| p.as_bytes() == long_file.as_slice()),
        "{:?}",
        stats.problems
    );
    let left: Vec<_> = fs::read_dir(target.join("ok"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("a.jpg")]);
}

/// A listing shared by two folders is restored under both, in the order of a depth-first
/// walk (a folder after what it holds); with a filter, only the matching copy and the
/// folders above it. A listing that cannot be read stops the collection with its error.
#[test]
fn shared_listings_are_collected_under_every_path() {
    use crate::testing::trees::{Crafter, dir};
    let tmp = tempfile::tempdir().unwrap();
    create_small_repo(&tmp.path().join("repo"), true);
    let repo = open(&tmp.path().join("repo"));
    let c = Crafter::new(&repo);
    let shared = c.tree(vec![c.file("f.jpg", b"photo"), c.file("g.jpg", b"other")]);
    let b = c.tree(vec![dir("x", shared), c.file("y.txt", b"y")]);
    let top = c.tree(vec![dir("a", shared), dir("b", b), c.file("c.txt", b"c")]);
    let broken = c.tree(vec![dir("a", shared), dir("gone", BlobId::default())]);
    c.finish();
    let index = repo.load_index().unwrap().index;
    let paths = |v: &[RestoreItem]| -> Vec<String> { v.iter().map(|i| shown(&i.path)).collect() };

    let (items, dirs) = collect_matching(&repo, &index, &top, None).unwrap();
    assert_eq!(
        paths(&items),
        [
            "a/f.jpg",
            "a/g.jpg",
            "b/x/f.jpg",
            "b/x/g.jpg",
            "b/y.txt",
            "c.txt"
        ]
    );
    assert_eq!(paths(&dirs), ["a", "b/x", "b"]);

    let only = |p: &[u8], _: &[u8]| p == b"b/x/g.jpg";
    let (items, dirs) = collect_matching(&repo, &index, &top, Some(&only)).unwrap();
    assert_eq!(paths(&items), ["b/x/g.jpg"]);
    assert_eq!(paths(&dirs), ["b/x", "b"]);
    let folder = |p: &[u8], _: &[u8]| p == b"b/x";
    let (items, dirs) = collect_matching(&repo, &index, &top, Some(&folder)).unwrap();
    assert_eq!(paths(&items), ["b/x/f.jpg", "b/x/g.jpg"]);
    assert_eq!(paths(&dirs), ["b/x", "b"]);

    let e = collect_matching(&repo, &index, &broken, None).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

/// `each_matching` hands over what `collect_matching` collects, in the same order, one
/// item at a time as the walk finds it (the first before the later folders are read), and
/// says whether anything matched, a folder alone included.
#[test]
fn items_are_handed_over_as_the_walk_finds_them() {
    use crate::repository::walk::loads_on_this_thread;
    use crate::testing::trees::{Crafter, dir};
    let tmp = tempfile::tempdir().unwrap();
    create_small_repo(&tmp.path().join("repo"), true);
    let repo = open(&tmp.path().join("repo"));
    let c = Crafter::new(&repo);
    let shared = c.tree(vec![c.file("f.jpg", b"photo"), c.file("g.jpg", b"other")]);
    let empty = c.tree(vec![]);
    let b = c.tree(vec![
        dir("x", shared),
        c.file("y.txt", b"y"),
        dir("z", empty),
    ]);
    let top = c.tree(vec![c.file("0.txt", b"0"), dir("a", shared), dir("b", b)]);
    c.finish();
    let index = repo.load_index().unwrap().index;
    let b_x = |p: &[u8], _: &[u8]| p == b"b/x";
    let b_z = |p: &[u8], _: &[u8]| p == b"b/z";
    let nothing = |_: &[u8], _: &[u8]| false;
    let filters: [Option<Filter<'_>>; 4] = [None, Some(&b_x), Some(&b_z), Some(&nothing)];
    for filter in filters {
        let (items, dirs) = collect_matching(&repo, &index, &top, filter).unwrap();
        let mut got = Vec::new();
        let any = each_matching(&repo, &index, &top, filter, &mut |p, n| {
            got.push((shown(p), n.clone()));
            Ok(())
        })
        .unwrap();
        let want: Vec<_> = items
            .iter()
            .map(|i| (shown(&i.path), i.node.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(any, !(items.is_empty() && dirs.is_empty()));
    }
    // Only the top listing has been read when the first item is handed over.
    let before = loads_on_this_thread();
    let mut at_first = None;
    each_matching(&repo, &index, &top, None, &mut |_, _| {
        at_first.get_or_insert(loads_on_this_thread() - before);
        Ok(())
    })
    .unwrap();
    assert_eq!(at_first, Some(1));
}

/// Find the file called `name` anywhere under `dir`.
fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if let Some(f) = find_file(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

/// A large file is cut into segments written by several threads at their offsets: it comes
/// back byte-exact (a zero stretch as a hole included), again as "already right", and a
/// different file in its place is left alone. A damaged blob in the middle of it leaves no
/// file under its name and no temporary file, and the other files are restored.
#[test]
fn a_large_file_split_over_threads_restores_exactly_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    create_small_repo(&root, true);
    let repo = open(&root);
    let src = tmp.path().join("lib");
    fs::create_dir(&src).unwrap();
    let mut big = crate::testing::noise(1, 700_001);
    big.extend(vec![0u8; 300_000]);
    big.extend(crate::testing::noise(2, 555_555));
    fs::write(src.join("long.mov"), &big).unwrap();
    fs::write(src.join("small.jpg"), crate::testing::noise(3, 20_000)).unwrap();
    let (sid, want) = crate::ops::test_support::snapshot(&repo, &src, &[]);
    let index = repo.load_index().unwrap().index;
    let snap = repo.load_snapshot(&sid).unwrap();
    let (items, dirs) = collect(&repo, &index, &snap.tree, &None).unwrap();
    let long = items
        .iter()
        .find(|i| i.path.ends_with(b"long.mov"))
        .unwrap();
    let files: Vec<&RestoreItem> = items.iter().collect();
    let segments = split::units(&index, &files, 3)
        .iter()
        .filter(|u| u.part.is_some())
        .count();
    assert_eq!(segments as u64, (big.len() as u64).div_ceil(split::SEGMENT));
    assert_eq!(split::units(&index, &files, 1).len(), files.len());

    let opts = |target: &Path, overwrite| RestoreOptions {
        target: target.to_path_buf(),
        include: None,
        overwrite,
        dry_run: false,
        threads: 3,
    };
    let good = tmp.path().join("good");
    let stats = restore(&repo, &index, &items, &dirs, &opts(&good, false), &NoHooks).unwrap();
    assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    assert_eq!(stats.files_restored, 2);
    assert_eq!(stats.bytes_written, big.len() as u64 + 20_000);
    assert_eq!(crate::ops::test_support::files(&good), want);
    let stats = restore(&repo, &index, &items, &dirs, &opts(&good, false), &NoHooks).unwrap();
    assert_eq!(stats.files_already_right, 2, "{:?}", stats.problems);
    let in_place = good.join("lib/long.mov");
    fs::write(&in_place, b"mine").unwrap();
    let stats = restore(&repo, &index, &items, &dirs, &opts(&good, false), &NoHooks).unwrap();
    assert_eq!(stats.problems.len(), 1, "{:?}", stats.problems);
    assert_eq!(fs::read(&in_place).unwrap(), b"mine");
    let stats = restore(&repo, &index, &items, &dirs, &opts(&good, true), &NoHooks).unwrap();
    assert!(stats.problems.is_empty(), "{:?}", stats.problems);
    assert_eq!(fs::read(&in_place).unwrap(), big);

    // Damage one blob in the middle of the long file (its only copy).
    let mid = index
        .get(&long.node.content[long.node.content.len() / 2])
        .copied()
        .unwrap();
    let pack = find_file(&root, &index.pack_of(&mid).to_hex()).unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[(mid.offset + mid.length / 2) as usize] ^= 0x40;
    fs::remove_file(&pack).unwrap();
    fs::write(&pack, bytes).unwrap();
    let bad = tmp.path().join("bad");
    let stats = restore(&repo, &index, &items, &dirs, &opts(&bad, false), &NoHooks).unwrap();
    assert_eq!(stats.problems.len(), 1, "{:?}", stats.problems);
    assert!(
        stats.problems[0].0.ends_with("long.mov"),
        "{:?}",
        stats.problems
    );
    assert_eq!(stats.files_restored, 1);
    let left: Vec<_> = fs::read_dir(bad.join("lib"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("small.jpg")]);
}
