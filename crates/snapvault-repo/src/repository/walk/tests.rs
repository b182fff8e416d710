//! The walker's path order, over trees held in memory.

use std::collections::HashMap;

use super::*;
use crate::format::id::Id;
use crate::format::tree::Name;

/// An entry `name` of kind `kind`, nothing else (`crate::testing` is a layer above).
fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        name: Name(name.as_bytes().to_vec()),
        kind,
        mode: 0o644,
        mtime: 0,
        btime: None,
        size: 0,
        content: Vec::new(),
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

/// A folder `name` whose listing is `subtree`.
fn dir(name: &str, subtree: BlobId) -> Node {
    Node {
        subtree: Some(subtree),
        ..node(name, NodeKind::Dir)
    }
}

/// Trees by id, as a [`TreeSource`].
struct Held(HashMap<BlobId, Tree>);

impl TreeSource for Held {
    fn load_tree(&self, id: &BlobId) -> Result<Tree> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))
    }
}

impl Held {
    /// Store a listing (sorted by name, as trees are) and return its id.
    fn add(&mut self, mut nodes: Vec<Node>) -> BlobId {
        nodes.sort_by(|a, b| a.name.0.cmp(&b.name.0));
        let id = BlobId(Id::hash_of(format!("{:?}", self.0.len()).as_bytes()));
        self.0.insert(id, Tree { nodes });
        id
    }
}

/// Every path entered, in the order the walk gave them; `skip`: folders not gone into.
struct Paths {
    seen: Vec<String>,
    skip: &'static [&'static str],
}

impl Visitor for Paths {
    fn entry(&mut self, p: &[u8], _: &Node) -> Result<bool> {
        let p = shown(p);
        let go = !self.skip.contains(&p.as_str());
        self.seen.push(p);
        Ok(go)
    }
    fn unreadable(&mut self, _: &BlobId, _: &[u8], e: RepoError) -> Result<()> {
        Err(e)
    }
}

/// Folders `a`, `a/b` and `a-x` beside files whose names sort between a folder's own name
/// and the paths below it (`a.txt`, `a-y`: '-' and '.' sort before '/').
fn sample() -> (Held, BlobId) {
    let mut h = Held(HashMap::new());
    let b = h.add(vec![node("c", NodeKind::File), node("c.d", NodeKind::File)]);
    let a = h.add(vec![
        dir("b", b),
        node("b.txt", NodeKind::File),
        node("b0", NodeKind::File),
    ]);
    let ax = h.add(vec![node("z", NodeKind::File)]);
    let root = h.add(vec![
        dir("a", a),
        node("a.txt", NodeKind::File),
        node("a-y", NodeKind::File),
        dir("a-x", ax),
        node("a0", NodeKind::File),
        node("B", NodeKind::File),
    ]);
    (h, root)
}

fn walk(path_order: bool, skip: &'static [&'static str]) -> Vec<String> {
    let (h, root) = sample();
    let mut w = TreeWalker::over(&h, Sharing::EveryPath { keep: false });
    if path_order {
        w = w.in_path_order();
    }
    let mut v = Paths {
        seen: Vec::new(),
        skip,
    };
    w.walk(root, &mut v).unwrap();
    v.seen
}

#[test]
fn path_order_is_the_byte_order_of_whole_paths() {
    let got = walk(true, &[]);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(got.len(), 12, "{got:?}");
    // The listing order (depth first, a folder's contents right after it) differs here.
    let listing = walk(false, &[]);
    assert_ne!(listing, got);
    assert_eq!(listing[..3], ["B", "a", "a/b"]);
}

#[test]
fn path_order_keeps_a_folder_out_when_its_entry_says_so() {
    let got = walk(true, &["a"]);
    assert_eq!(got, ["B", "a", "a-x", "a-x/z", "a-y", "a.txt", "a0"]);
}
