use super::*;
use crate::format::tree::Name;
use crate::ops::observe::NoHooks;
use crate::ops::test_support::{create_small_repo, open};
use crate::repository::walk::shown;

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
