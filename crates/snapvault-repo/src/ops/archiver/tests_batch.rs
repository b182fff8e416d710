//! The archiver's hand-off of small chunks in batches (see [`super::Batch`]): batch
//! boundaries, folder ends, empty files and files whose size changed after the listing
//! must give the same snapshot as one hand-off per chunk did.

use std::collections::{BTreeSet, HashMap};
use std::io;

use super::*;
use crate::format::id::BlobId;
use crate::ops::fs_source::{Change, FolderSource, SourceFile};
use crate::ops::test_support::{Photos, create_small_repo, files, noise, open, verify};

/// Every file node of the snapshot tree under `id`, by path, and the number of trees.
fn file_nodes(
    repo: &Repository,
    index: &Index,
    id: &BlobId,
    at: &str,
    out: &mut Vec<(String, Node)>,
) -> usize {
    let tree = repo.load_tree(index, id).unwrap();
    let mut trees = 1;
    for n in tree.nodes {
        let path = format!("{at}/{}", n.name.lossy());
        match (n.kind, n.subtree) {
            (NodeKind::Dir, Some(sub)) => trees += file_nodes(repo, index, &sub, &path, out),
            (NodeKind::File, _) => out.push((path, n)),
            _ => {}
        }
    }
    trees
}

fn run_on(repo: &Repository, source: &dyn Source, folder: &FolderSource) -> (SnapshotId, Snapshot) {
    let index = repo.load_index().unwrap().index;
    let opts = crate::testing::folder_options(folder);
    run(repo, index, source, opts, &NoHooks, &Photos).unwrap()
}

/// More tiny files than a batch holds, in folders that end mid-batch, with empty files,
/// identical files and a file of many chunks among them: the snapshot restores byte-exact,
/// every file's chunks are its own, and identical files are stored once.
#[test]
fn tiny_files_in_batches_restore_exactly_and_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    let (a, ab, c) = (lib.join("a"), lib.join("a/b"), lib.join("c"));
    for d in [&a, &ab, &c] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut distinct = BTreeSet::new();
    for i in 0..3 * BATCH_CHUNKS + 5 {
        // Every tenth file has the same bytes as the others of its kind.
        let body = if i % 10 == 0 {
            b"the same bytes".to_vec()
        } else {
            format!("tiny file {i}").into_bytes()
        };
        distinct.insert(body.clone());
        std::fs::write(a.join(format!("f{i:04}")), body).unwrap();
        if i == BATCH_CHUNKS {
            // A file of many chunks (4–64 KiB chunks) in the middle of a batch.
            std::fs::write(a.join(format!("f{i:04}-big")), noise(7, 700_000)).unwrap();
        }
    }
    std::fs::write(a.join("empty"), b"").unwrap();
    for i in 0..BATCH_CHUNKS + 1 {
        let body = format!("below {i}").into_bytes();
        distinct.insert(body.clone());
        std::fs::write(ab.join(format!("g{i:03}")), body).unwrap();
    }
    std::fs::write(c.join("only-empty"), b"").unwrap();

    let repo = open(&root);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let (id, snap) = run_on(&repo, &folder, &folder);
    let want = files(&lib)
        .into_iter()
        .map(|(k, v)| (format!("lib/{k}"), v))
        .collect();
    verify(&root, &[(id, want)], "tiny files in batches");

    let index = repo.load_index().unwrap().index;
    let mut nodes = Vec::new();
    let trees = file_nodes(&repo, &index, &snap.tree, "", &mut nodes);
    assert_eq!(nodes.len() as u64, snap.summary.files_total);
    assert_eq!(
        nodes.len(),
        3 * BATCH_CHUNKS + 5 + 1 + 1 + BATCH_CHUNKS + 1 + 1
    );
    let mut by_bytes: HashMap<Vec<u8>, Vec<BlobId>> = HashMap::new();
    let mut data_blobs = BTreeSet::new();
    for (path, n) in &nodes {
        let bytes = std::fs::read(dir.path().join(path.trim_start_matches('/'))).unwrap();
        assert_eq!(n.size, bytes.len() as u64, "{path}");
        if bytes.is_empty() {
            assert!(n.content.is_empty(), "{path}: an empty file has no chunks");
        } else if bytes.len() < 100 {
            assert_eq!(n.content, vec![repo.crypto().blob_id(&bytes)], "{path}");
        }
        let seen = by_bytes.entry(bytes).or_insert_with(|| n.content.clone());
        assert_eq!(*seen, n.content, "{path}: same bytes, same chunks");
        data_blobs.extend(n.content.iter().copied());
    }
    let big = nodes.iter().find(|(p, _)| p.ends_with("-big")).unwrap();
    assert!(
        big.1.content.len() > 5,
        "the big file is cut in many chunks"
    );
    assert_eq!(data_blobs.len(), distinct.len() + big.1.content.len());
    // Each distinct chunk and tree stored once: nothing twice.
    assert_eq!(snap.summary.blobs_added, (data_blobs.len() + trees) as u64);
    assert_eq!(index.blob_count() as u64, snap.summary.blobs_added);
}

/// A folder source whose listing says other sizes than the files have when read (a file
/// written between the listing and the read): what is read is what the snapshot keeps.
struct Resized {
    inner: FolderSource,
    sizes: HashMap<Vec<u8>, u64>,
}

impl Source for Resized {
    fn list(&self, dir: &[u8]) -> io::Result<Vec<SourceEntry>> {
        let mut entries = self.inner.list(dir)?;
        for e in &mut entries {
            if let Some(&size) = self.sizes.get(&e.name.0) {
                e.size = size;
            }
        }
        Ok(entries)
    }
    fn open(&self, path: &[u8]) -> io::Result<Box<dyn SourceFile + '_>> {
        self.inner.open(path)
    }
}

/// Files listed larger (shrunk since), smaller (grew), or non-empty but empty when read,
/// between tiny files of the same batch, and one read by a reader thread: each keeps the
/// bytes read and their length, is named to the observer as changed while it was read,
/// and the snapshot is marked incomplete.
#[test]
fn a_file_that_changed_size_after_listing_keeps_what_was_read_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (root, lib) = (dir.path().join("repo"), dir.path().join("lib"));
    create_small_repo(&root, true);
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..20 {
        std::fs::write(lib.join(format!("t{i:02}")), format!("tiny {i}")).unwrap();
    }
    std::fs::write(lib.join("t05"), b"shrunk").unwrap();
    std::fs::write(lib.join("t06"), noise(3, 200_000)).unwrap();
    std::fs::write(lib.join("t07"), b"").unwrap();
    // Listed large enough for a reader thread, read shorter.
    std::fs::write(lib.join("t08"), noise(4, 300_000)).unwrap();
    let sizes = HashMap::from([
        (b"t05".to_vec(), 5_000),
        (b"t06".to_vec(), 10),
        (b"t07".to_vec(), 64),
        (b"t08".to_vec(), 4_000_000),
    ]);
    let folder = FolderSource::new(std::slice::from_ref(&lib)).unwrap();
    let source = Resized {
        inner: FolderSource::new(std::slice::from_ref(&lib)).unwrap(),
        sizes,
    };
    let repo = open(&root);
    let seen = Changed::default();
    let index = repo.load_index().unwrap().index;
    let opts = crate::testing::folder_options(&folder);
    let (id, snap) = run(&repo, index, &source, opts, &seen, &Photos).unwrap();
    // Each is named as changed while read, and the snapshot says it is incomplete.
    let mut named = seen.0.into_inner().unwrap();
    named.sort();
    assert_eq!(
        named,
        [
            ("lib/t05".to_string(), 5_000, 6),
            ("lib/t06".to_string(), 10, 200_000),
            ("lib/t07".to_string(), 64, 0),
            ("lib/t08".to_string(), 4_000_000, 300_000),
        ]
    );
    assert!(snap.incomplete);
    assert_eq!(snap.summary.errors, 4);
    let want = files(&lib)
        .into_iter()
        .map(|(k, v)| (format!("lib/{k}"), v))
        .collect();
    verify(&root, &[(id, want)], "resized files");
    let index = repo.load_index().unwrap().index;
    let mut nodes = Vec::new();
    file_nodes(&repo, &index, &snap.tree, "", &mut nodes);
    let size_of = |name: &str| {
        nodes
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap()
            .1
            .size
    };
    assert_eq!(size_of("/t05"), 6);
    assert_eq!(size_of("/t06"), 200_000);
    assert_eq!(size_of("/t07"), 0);
    assert_eq!(size_of("/t08"), 300_000);
    assert_eq!(snap.summary.files_total, 20);
}

/// Records the files said to have changed while they were read.
#[derive(Default)]
struct Changed(std::sync::Mutex<Vec<(String, u64, u64)>>);

impl Observer for Changed {
    fn changed_while_read(&self, path: &[u8], change: Change) {
        let path = String::from_utf8_lossy(path).into_owned();
        let Change::Length { listed, read } = change else {
            panic!("{path}: {change:?}, not a length");
        };
        self.0.lock().unwrap().push((path, listed, read));
    }
}
