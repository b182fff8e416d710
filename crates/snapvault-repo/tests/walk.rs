//! The tree walker through its public API: the order of what it tells, the two sharing
//! rules (each tree once; every path), the expansion bound, and the one error policy.

use snapvault_repo::blob::BlobType;
use snapvault_repo::testing::trees::{Crafter, dir, node};
use snapvault_repo::testing::{create_small_repo, open};
use snapvault_repo::tree::{Node, NodeKind, Tree};
use snapvault_repo::walk::{
    PairVisitor, RepoTrees, Sharing, Side, TreeWalker, Visitor, shown, walk_pair,
};
use snapvault_repo::{BlobId, RepoError, Result};

/// Writes down every call, in order.
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    /// Stop at an unreadable tree (else skip it).
    strict: bool,
}

impl Visitor for Log {
    fn tree(&mut self, _: &BlobId, path: &[u8], t: &Tree) -> Result<bool> {
        self.lines
            .push(format!("tree /{} ({})", shown(path), t.nodes.len()));
        Ok(true)
    }
    fn entry(&mut self, path: &[u8], _: &Node) -> Result<bool> {
        self.lines.push(format!("entry {}", shown(path)));
        Ok(true)
    }
    fn leave(&mut self, _: &BlobId, path: &[u8], n: Option<&Node>) -> Result<()> {
        let name = n.map(|n| shown(&n.name.0)).unwrap_or_default();
        self.lines.push(format!("leave /{} [{name}]", shown(path)));
        Ok(())
    }
    fn unreadable(&mut self, _: &BlobId, path: &[u8], e: RepoError) -> Result<()> {
        self.lines.push(format!("unreadable /{}", shown(path)));
        if self.strict { Err(e) } else { Ok(()) }
    }
}

/// A repository with: `shared` (one file) named by `a/` and `b/x/`; `gone/` naming a
/// listing that is not stored; and `beside`, a tree to walk `top` beside.
struct Crafted {
    _tmp: tempfile::TempDir,
    repo: snapvault_repo::Repository,
    index: snapvault_repo::index::Index,
    top: BlobId,
    shared: BlobId,
    /// `a/` a listing that is not stored, `b/` the shared tree, `z` a FIFO.
    beside: BlobId,
}

fn crafted() -> Crafted {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    create_small_repo(&root, true);
    let repo = open(&root);
    let c = Crafter::new(&repo);
    let f = c.file("f.jpg", b"photo");
    let shared = c.tree(vec![f]);
    let x = c.tree(vec![dir("x", shared)]);
    let missing = BlobId::default();
    let top = c.tree(vec![
        dir("a", shared),
        dir("b", x),
        node("c.txt", NodeKind::Fifo),
        dir("gone", missing),
    ]);
    let beside = c.tree(vec![
        dir("a", missing),
        dir("b", shared),
        node("z", NodeKind::Fifo),
    ]);
    c.finish();
    let index = repo.load_index().unwrap().index;
    Crafted {
        _tmp: tmp,
        repo,
        index,
        top,
        shared,
        beside,
    }
}

#[test]
fn walking_every_path_lists_a_shared_subtree_under_each_of_its_paths() {
    let k = crafted();
    let (repo, index) = (&k.repo, &k.index);
    let top = k.top;
    let mut log = Log::default();
    let mut w = TreeWalker::with(repo, index, Sharing::EveryPath { keep: false });
    w.walk(top, &mut log).unwrap();
    let want = [
        "tree / (4)",
        "entry a",
        "tree /a (1)",
        "entry a/f.jpg",
        "leave /a [a]",
        "entry b",
        "tree /b (1)",
        "entry b/x",
        "tree /b/x (1)",
        "entry b/x/f.jpg",
        "leave /b/x [x]",
        "leave /b [b]",
        "entry c.txt",
        "entry gone",
        "unreadable /gone",
        "leave / []",
    ];
    assert_eq!(log.lines, want);
    // Without keeping trees, the shared one is read again.
    assert_eq!(w.loads(), 5);

    // Keeping them: the same walk, each tree read once, and again for a second root.
    let mut kept = TreeWalker::with(repo, index, Sharing::EveryPath { keep: true });
    let mut log = Log::default();
    kept.walk(top, &mut log).unwrap();
    assert_eq!(log.lines, want);
    assert_eq!(
        kept.loads(),
        3 + 1,
        "three stored trees and the missing one"
    );
    kept.walk(top, &mut Log::default()).unwrap();
    assert_eq!(kept.loads(), 4 + 1, "only the missing tree is tried again");
}

#[test]
fn walking_each_tree_once_visits_a_shared_subtree_at_its_first_path() {
    let k = crafted();
    let (repo, index) = (&k.repo, &k.index);
    let (top, shared) = (k.top, k.shared);
    let mut log = Log::default();
    let mut w = TreeWalker::new(repo, index);
    w.walk(top, &mut log).unwrap();
    assert_eq!(
        log.lines,
        [
            "tree / (4)",
            "entry a",
            "tree /a (1)",
            "entry a/f.jpg",
            "leave /a [a]",
            "entry b",
            "tree /b (1)",
            "entry b/x",
            "leave /b [b]",
            "entry c.txt",
            "entry gone",
            "unreadable /gone",
            "leave / []",
        ]
    );
    assert_eq!((w.loads(), w.visited()), (4, 4));
    // A second root holding the shared tree: nothing new to visit.
    let mut log = Log::default();
    w.walk(shared, &mut log).unwrap();
    assert!(log.lines.is_empty(), "{:?}", log.lines);
}

#[test]
fn an_unreadable_tree_stops_the_walk_when_the_visitor_says_so() {
    let k = crafted();
    let (repo, index) = (&k.repo, &k.index);
    let top = k.top;
    for sharing in [Sharing::Once, Sharing::EveryPath { keep: false }] {
        let mut log = Log {
            strict: true,
            ..Log::default()
        };
        let e = TreeWalker::with(repo, index, sharing)
            .walk(top, &mut log)
            .unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(log.lines.last().unwrap(), "unreadable /gone", "{sharing:?}");
        assert!(!log.lines.iter().any(|l| l == "leave / []"));
    }
}

#[test]
fn walking_every_path_stops_at_a_tree_bomb_and_names_the_walk() {
    let tmp = tempfile::tempdir().unwrap();
    create_small_repo(&tmp.path().join("repo"), false);
    let repo = open(&tmp.path().join("repo"));
    let c = Crafter::new(&repo);
    let mut level = c.tree(vec![node("p", NodeKind::Fifo)]);
    for _ in 0..18 {
        level = c.tree(vec![dir("a", level), dir("b", level)]);
    }
    let _ = c.blob(BlobType::Data, b"unused");
    c.finish();
    let index = repo.load_index().unwrap().index;
    struct Quiet;
    impl Visitor for Quiet {
        fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
            Err(e)
        }
    }
    let mut w = TreeWalker::with(&repo, &index, Sharing::EveryPath { keep: true });
    let e = w
        .walk_named(level, "snapshot 0123abcd", &mut Quiet)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("snapshot 0123abcd") && msg.contains("paths"),
        "{msg}"
    );
    // Each tree once: 19 listings, no bound needed.
    let mut once = TreeWalker::new(&repo, &index);
    once.walk(level, &mut Quiet).unwrap();
    assert_eq!(once.loads(), 19);
}

/// A level at a time: breadth first, each tree once, the visitor told in level order on
/// this thread; the same error policy; no `leave`.
#[test]
fn walking_by_levels_visits_each_tree_once_breadth_first() {
    let k = crafted();
    let (repo, index) = (&k.repo, &k.index);
    let top = k.top;
    let mut log = Log::default();
    let mut w = TreeWalker::new(repo, index);
    w.walk_levels(top, &mut log).unwrap();
    assert_eq!(
        log.lines,
        [
            "tree / (4)",
            "entry a",
            "entry b",
            "entry c.txt",
            "entry gone",
            "tree /a (1)",
            "entry a/f.jpg",
            "tree /b (1)",
            "entry b/x",
            "unreadable /gone",
        ]
    );
    assert_eq!((w.loads(), w.visited()), (4, 4));
    // The same trees through any source; an unreadable tree stops the walk when the
    // visitor says so.
    let trees = RepoTrees { repo, index };
    let mut strict = Log {
        strict: true,
        ..Log::default()
    };
    let e = TreeWalker::over(&trees, Sharing::Once)
        .walk_levels(top, &mut strict)
        .unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(strict.lines, log.lines);
}

/// Writes down every call of a pair walk; goes everywhere it may.
#[derive(Default)]
struct PairLog(Vec<String>);

fn short(b: Option<&BlobId>) -> &'static str {
    if b.is_some() { "b" } else { "-" }
}

impl PairVisitor for PairLog {
    fn pair(&mut self, path: &[u8], _: &BlobId, b: Option<&BlobId>) -> Result<bool> {
        self.0.push(format!("pair /{} ({})", shown(path), short(b)));
        Ok(true)
    }
    fn trees(&mut self, path: &[u8], a: &Tree, b: Option<&Tree>) -> Result<()> {
        let b = b.map_or("-".to_string(), |t| t.nodes.len().to_string());
        self.0
            .push(format!("trees /{} {} {b}", shown(path), a.nodes.len()));
        Ok(())
    }
    fn entry(&mut self, path: &[u8], _: &Node, b: Option<&Node>) -> Result<bool> {
        let b = b.map_or("-".to_string(), |n| shown(&n.name.0));
        self.0.push(format!("entry {} beside {b}", shown(path)));
        Ok(true)
    }
    fn leave(&mut self, path: &[u8], _: &BlobId, _: Option<&BlobId>) -> Result<()> {
        self.0.push(format!("leave /{}", shown(path)));
        Ok(())
    }
    fn unreadable(&mut self, path: &[u8], side: Side, _: &BlobId, _: RepoError) -> Result<()> {
        self.0.push(format!("unreadable {side:?} /{}", shown(path)));
        Ok(())
    }
}

/// Beside another tree: `a`'s order, each entry with its namesake in `b`; a folder `b`
/// lacks, or cannot give, is walked alone.
#[test]
fn walking_beside_another_tree_pairs_entries_by_name() {
    let k = crafted();
    let (repo, index) = (&k.repo, &k.index);
    let (top, beside) = (k.top, k.beside);
    let trees = RepoTrees { repo, index };
    let mut log = PairLog::default();
    walk_pair(&trees, &trees, top, Some(beside), "test", &mut log).unwrap();
    assert_eq!(
        log.0,
        [
            "pair / (b)",
            "trees / 4 3",
            "entry a beside a",
            "pair /a (b)",
            "unreadable B /a",
            "trees /a 1 -",
            "entry a/f.jpg beside -",
            "leave /a",
            "entry b beside b",
            "pair /b (b)",
            "trees /b 1 1",
            "entry b/x beside -",
            "pair /b/x (-)",
            "trees /b/x 1 -",
            "entry b/x/f.jpg beside -",
            "leave /b/x",
            "leave /b",
            "entry c.txt beside -",
            "entry gone beside -",
            "pair /gone (-)",
            "unreadable A /gone",
            "leave /",
        ]
    );
}

/// `ls` walks through an index of the trees alone (`TreesFirst`). A listing stored as a
/// data blob — a file with the very bytes of a folder listing has the listing's id, so a
/// later snapshot finds it stored and does not store it again — is not among the trees:
/// it is found through the whole index, loaded then, and reads as it does there; a
/// repository without such a blob never loads the whole index.
#[test]
fn a_tree_stored_as_a_data_blob_is_found_through_the_whole_index() {
    use snapvault_repo::walk::{TreeSource, TreesFirst};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    create_small_repo(&root, true);
    let repo = open(&root);
    let c = Crafter::new(&repo);
    let f = c.file("f.jpg", b"photo");
    let listing = Tree {
        nodes: vec![f.clone()],
    };
    // The listing's bytes, stored first as a file's chunk (a data blob), then as a tree:
    // the index keeps the first, the data blob.
    let as_data = c.blob(BlobType::Data, &listing.encode());
    let top = c.tree(vec![dir("inner", as_data), f]);
    c.finish();

    let trees = TreesFirst::load(&repo).unwrap();
    let t = trees.load_tree(&top).unwrap();
    assert_eq!(t.nodes.len(), 2);
    assert!(
        !trees.loaded_whole(),
        "a tree among the trees needs no whole index"
    );
    assert_eq!(trees.load_tree(&as_data).unwrap(), listing);
    assert!(trees.loaded_whole());
    let whole = repo.load_index().unwrap().index;
    let direct = RepoTrees {
        repo: &repo,
        index: &whole,
    };
    assert_eq!(direct.load_tree(&as_data).unwrap(), listing);
    let missing = BlobId(snapvault_repo::Id::hash_of(b"not stored"));
    assert_eq!(
        trees.load_tree(&missing).unwrap_err().to_string(),
        direct.load_tree(&missing).unwrap_err().to_string()
    );
}
