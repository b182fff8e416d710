//! Memory of loading the index (issue 23.4): a no-change snapshot of a million small files
//! peaked at decoding its index files, each held three times over (sealed, opened, decoded
//! into entries) beside the index being built. Counted with a global allocator, so this
//! test binary holds this one test (tests run in parallel threads).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use snapvault_repo::Repository;
use snapvault_repo::blob::BlobType;
use snapvault_repo::id::{BlobId, Id, PackId};
use snapvault_repo::index::{IndexFile, IndexedPack};
use snapvault_repo::pack::PackEntry;
use snapvault_repo::testing::{FAST_KDF, local};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = NOW.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as the worst case, old and new at once (a moving realloc).
        grew(new);
        let q = unsafe { System.realloc(p, l, new) };
        NOW.fetch_sub(l.size(), Ordering::Relaxed);
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One index file of 100,000 blobs (4.6 MB, as a first snapshot of 100,000 small files
/// writes): loading it may hold, beyond the index it builds, the file once (read and
/// opened in place) and not much more — not the opened copy and every entry decoded too.
#[test]
fn loading_the_index_holds_each_index_file_once() {
    const N: u32 = 100_000;
    let tmp = tempfile::tempdir().unwrap();
    let repo = Repository::init(local(tmp.path()), Some(b"pw"), FAST_KDF).unwrap();
    let blobs: Vec<PackEntry> = (0..N)
        .map(|i| PackEntry {
            id: BlobId(Id::hash_of(&i.to_le_bytes())),
            typ: BlobType::Data,
            compressed: false,
            offset: i * 100,
            length: 100,
            raw_len: 60,
        })
        .collect();
    let file = IndexFile {
        supersedes: vec![],
        packs: vec![IndexedPack {
            id: PackId(Id::hash_of(b"the pack")),
            size: N as u64 * 100,
            blobs,
        }],
    };
    repo.save_index(&file).unwrap();
    drop(file);

    let before = NOW.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let loaded = repo.load_index().unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let kept = NOW.load(Ordering::Relaxed) - before;
    assert_eq!(loaded.index.blob_count(), N as usize);
    let file_bytes = N as usize * 46;
    let beyond = peak.saturating_sub(kept);
    assert!(
        beyond <= file_bytes + file_bytes / 4,
        "loading held {beyond} bytes beyond the index it built ({kept} bytes); the index \
         file is {file_bytes} bytes (peak {peak})"
    );
}
