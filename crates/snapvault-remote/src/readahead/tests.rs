//! Requests counted at the backend under the read-ahead (counts, never times).

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use snapvault_repo::backend::LocalBackend;

use super::*;

/// Counts the pack range reads that reach the backend.
struct Counting(LocalBackend, AtomicUsize);

impl Backend for Counting {
    fn location(&self) -> String {
        self.0.location()
    }
    fn exists(&self, k: FileKind, n: &str) -> Result<bool, RepoError> {
        self.0.exists(k, n)
    }
    fn read(&self, k: FileKind, n: &str) -> Result<Vec<u8>, RepoError> {
        self.0.read(k, n)
    }
    fn read_range_into(
        &self,
        k: FileKind,
        n: &str,
        o: u64,
        l: usize,
        buf: &mut Vec<u8>,
    ) -> Result<(), RepoError> {
        self.1.fetch_add(1, SeqCst);
        self.0.read_range_into(k, n, o, l, buf)
    }
    fn write(&self, k: FileKind, n: &str, d: &[u8]) -> Result<(), RepoError> {
        self.0.write(k, n, d)
    }
    fn list(&self, k: FileKind) -> Result<Vec<FileInfo>, RepoError> {
        self.0.list(k)
    }
    fn size(&self, k: FileKind, n: &str) -> Result<u64, RepoError> {
        self.0.size(k, n)
    }
    fn remove(&self, k: FileKind, n: &str) -> Result<(), RepoError> {
        self.0.remove(k, n)
    }
    fn create_layout(&self) -> Result<(), RepoError> {
        self.0.create_layout()
    }
}

/// The pieces of a test: the repository folder, the counted backend, the read-ahead over
/// it and the packs (name, bytes).
type Setup = (
    tempfile::TempDir,
    Arc<Counting>,
    ReadAhead,
    Vec<(String, Vec<u8>)>,
);

/// A backend holding packs of `sizes` bytes (distinct bytes everywhere), under the read-ahead.
fn setup(sizes: &[usize], budget: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let inner = Arc::new(Counting(LocalBackend::new(dir.path()), AtomicUsize::new(0)));
    inner.create_layout().unwrap();
    let mut packs = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let bytes: Vec<u8> = (0..n).map(|k| (k * 7 + i * 13 + k / 251) as u8).collect();
        let name = blake3::hash(&bytes).to_hex().to_string();
        inner.write(FileKind::Pack, &name, &bytes).unwrap();
        packs.push((name, bytes));
    }
    let ra = ReadAhead::new(
        inner.clone(),
        Limits {
            held: budget,
            announce: 4 * budget,
        },
    );
    (dir, inner, ra, packs)
}

fn read(ra: &ReadAhead, pack: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![1, 2, 3];
    ra.read_range_into(FileKind::Pack, pack, offset, len, &mut buf)
        .unwrap();
    buf
}

#[test]
fn announced_neighbours_of_a_pack_are_one_request_whatever_their_order() {
    let (_d, inner, ra, packs) = setup(&[1 << 20], 48 << 20);
    let (name, bytes) = &packs[0];
    // Eight ranges of 100 kB, announced out of order, one of them 10 kB after the last.
    let mut ranges: Vec<(String, u64, u64)> = (0..8u64)
        .map(|i| {
            (
                name.clone(),
                i * 100_000 + if i == 7 { 10_000 } else { 0 },
                100_000,
            )
        })
        .collect();
    ranges.swap(0, 5);
    ranges.swap(2, 7);
    ra.prefetch_many(FileKind::Pack, &ranges);
    for (_, offset, len) in ranges.iter().rev() {
        let got = read(&ra, name, *offset, *len as usize);
        assert_eq!(got, bytes[*offset as usize..(*offset + *len) as usize]);
    }
    assert_eq!(inner.1.load(SeqCst), 1, "one request for the eight ranges");
    assert_eq!(ra.requests(), 1);
    // Everything announced was read: nothing is held any more.
    assert_eq!(lock(&ra.shared.state).held, 0);
}

#[test]
fn ranges_of_other_packs_or_far_apart_are_separate_requests() {
    let (_d, inner, ra, packs) = setup(&[1 << 20, 1 << 20], 48 << 20);
    let far = 100_000 + GAP + 1;
    let ranges = vec![
        (packs[0].0.clone(), 0, 100_000),
        (packs[0].0.clone(), far, 1000),
        (packs[1].0.clone(), 100_000, 1000),
    ];
    ra.prefetch_many(FileKind::Pack, &ranges);
    for (name, offset, len) in &ranges {
        let bytes = &packs.iter().find(|p| &p.0 == name).unwrap().1;
        let got = read(&ra, name, *offset, *len as usize);
        assert_eq!(got, bytes[*offset as usize..(*offset + *len) as usize]);
    }
    assert_eq!(inner.1.load(SeqCst), 3);
}

#[test]
fn reads_not_announced_go_to_the_backend_as_before() {
    let (_d, inner, ra, packs) = setup(&[300_000], 48 << 20);
    let (name, bytes) = &packs[0];
    assert_eq!(read(&ra, name, 5, 1000), bytes[5..1005]);
    assert_eq!(read(&ra, name, 5, 1000), bytes[5..1005]);
    assert_eq!(inner.1.load(SeqCst), 2);
    assert_eq!(ra.requests(), 0);
}

#[test]
fn a_window_that_cannot_be_read_leaves_its_readers_to_the_backend() {
    let (_d, inner, ra, packs) = setup(&[300_000], 48 << 20);
    let (name, bytes) = &packs[0];
    // Announced past the end of the pack (a pack cut short): the window's request fails,
    // and each read then gets the backend's own answer.
    ra.prefetch_many(
        FileKind::Pack,
        &[(name.clone(), 0, 1000), (name.clone(), 1000, 400_000)],
    );
    assert_eq!(read(&ra, name, 0, 1000), bytes[..1000]);
    let mut buf = Vec::new();
    let e = ra
        .read_range_into(FileKind::Pack, name, 1000, 400_000, &mut buf)
        .unwrap_err();
    assert!(e.to_string().contains("file ends before byte"), "{e}");
    assert!(inner.1.load(SeqCst) >= 2);
    assert_eq!(lock(&ra.shared.state).held, 0);
}

#[test]
fn the_budget_bounds_the_windows_held() {
    // Six packs of 1 MiB, each announced whole; room for two windows at a time.
    let (_d, inner, ra, packs) = setup(&[1 << 20; 6], 2 << 20);
    let ranges: Vec<(String, u64, u64)> =
        packs.iter().map(|(n, _)| (n.clone(), 0, 1 << 20)).collect();
    ra.prefetch_many(FileKind::Pack, &ranges);
    for (name, bytes) in &packs {
        assert!(lock(&ra.shared.state).held <= MAX_WINDOW.max(2 << 20) + (1 << 20));
        assert_eq!(&read(&ra, name, 0, 1 << 20), bytes);
    }
    // Each pack read once, whether a fetcher or the reader took it.
    assert_eq!(inner.1.load(SeqCst), 6);
    assert_eq!(ra.requests(), 6);
}
