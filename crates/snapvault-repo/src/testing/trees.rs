//! Crafted trees: folder listings written the way `snapshot` writes them, but shaped by the
//! test (a listing named by several folders, a folder naming a listing that is missing), as
//! anyone with write access to a repository could. For the tests of everything that walks
//! trees.

use crate::format::blob::{self, BlobType, Compression};
use crate::format::id::{BlobId, SnapshotId};
use crate::format::snapshot::{Snapshot, Source, Summary};
use crate::format::tree::{Name, Node, NodeKind, Tree};
use crate::repository::Repository;
use crate::repository::packer::Packer;

/// An entry of kind `kind` named `name`, with nothing else.
pub fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        name: Name(name.as_bytes().to_vec()),
        kind,
        mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
        mtime: 1_700_000_000_000_000_000,
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
pub fn dir(name: &str, subtree: BlobId) -> Node {
    Node {
        subtree: Some(subtree),
        ..node(name, NodeKind::Dir)
    }
}

/// A file `name` of `size` bytes made of the chunks `content`.
pub fn file(name: &str, content: Vec<BlobId>, size: u64) -> Node {
    Node {
        content,
        size,
        ..node(name, NodeKind::File)
    }
}

/// Stores tree blobs (and chunks) into a repository; [`Crafter::finish`] writes the packs
/// and their index.
pub struct Crafter<'a> {
    repo: &'a Repository,
    packer: Packer,
}

impl<'a> Crafter<'a> {
    pub fn new(repo: &'a Repository) -> Crafter<'a> {
        let packer = Packer::start(repo.backend().clone(), repo.crypto().clone(), 1 << 20);
        Crafter { repo, packer }
    }

    /// Store a blob of type `typ`; returns its id.
    pub fn blob(&self, typ: BlobType, bytes: &[u8]) -> BlobId {
        let crypto = self.repo.crypto();
        let id = crypto.blob_id(bytes);
        let e = blob::encode(crypto, id, typ, bytes, Compression::Never);
        self.packer.sender().send(e).expect("packer running");
        id
    }

    /// A file `name` holding `bytes`, stored as one chunk.
    pub fn file(&self, name: &str, bytes: &[u8]) -> Node {
        let id = self.blob(BlobType::Data, bytes);
        file(name, vec![id], bytes.len() as u64)
    }

    /// Store a folder listing of `nodes` (sorted by name, as a tree must be).
    pub fn tree(&self, mut nodes: Vec<Node>) -> BlobId {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        self.blob(BlobType::Tree, &Tree { nodes }.encode())
    }

    /// Write the packs and the index file naming them.
    pub fn finish(self) {
        self.packer.finish().expect("packs and index written");
    }
}

/// Save a snapshot (of a folder `/crafted`, at `time` seconds) whose tree is `root`.
pub fn save_snapshot(repo: &Repository, root: BlobId, time: i64) -> SnapshotId {
    let s = Snapshot {
        version: 1,
        time: time * 1_000_000_000,
        hostname: "test".into(),
        username: "test".into(),
        source: Source {
            kind: "folder".into(),
            paths: vec!["/crafted".into()],
            device: None,
        },
        tags: Vec::new(),
        tree: root,
        parent: None,
        summary: Summary::default(),
        incomplete: false,
        original: None,
        library: None,
    };
    repo.save_snapshot(&s).expect("snapshot saved")
}
