//! Memory of loading the index (issue 23.4): a no-change snapshot of a million small files
//! peaked at decoding its index files, each held three times over (sealed, opened, decoded
//! into entries) beside the index being built. Counted with a global allocator, so this
//! test binary holds only these tests, and they count one at a time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
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

/// The counters are the process's: one test counts at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `files` index files of `N` blobs each (4.6 MB each, as a first snapshot of 100,000
/// small files writes one), every tenth blob a tree.
fn repository_with_index_files(dir: &std::path::Path, files: u32) -> Repository {
    let repo = Repository::init(local(dir), Some(b"pw"), FAST_KDF).unwrap();
    for k in 0..files {
        let blobs: Vec<PackEntry> = (0..N)
            .map(|i| PackEntry {
                id: BlobId(Id::hash_of(&(k * N + i).to_le_bytes())),
                typ: if i % 10 == 0 {
                    BlobType::Tree
                } else {
                    BlobType::Data
                },
                compressed: false,
                offset: i * 100,
                length: 100,
                raw_len: 60,
            })
            .collect();
        let file = IndexFile {
            supersedes: vec![],
            packs: vec![IndexedPack {
                id: PackId(Id::hash_of(&k.to_le_bytes())),
                size: N as u64 * 100,
                blobs,
            }],
        };
        repo.save_index(&file).unwrap();
    }
    repo
}

const N: u32 = 100_000;
/// One index file of N blobs, as stored (sealed).
const FILE_BYTES: usize = N as usize * 46;

/// Bytes allocated at the peak of `load`, beyond what it kept, and what it kept.
fn held_while<T>(load: impl FnOnce() -> T) -> (usize, usize, T) {
    let before = NOW.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let loaded = load();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let kept = NOW.load(Ordering::Relaxed) - before;
    (peak.saturating_sub(kept), kept, loaded)
}

/// One index file of 100,000 blobs: loading it may hold, beyond the index it builds, the
/// file once (read and opened in place) and not much more — not the opened copy and
/// every entry decoded too.
#[test]
fn loading_the_index_holds_each_index_file_once() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let repo = repository_with_index_files(tmp.path(), 1);
    let (beyond, kept, loaded) = held_while(|| repo.load_index().unwrap());
    assert_eq!(loaded.index.blob_count(), N as usize);
    assert!(
        beyond <= FILE_BYTES + FILE_BYTES / 4,
        "loading held {beyond} bytes beyond the index it built ({kept} bytes); the index \
         file is {FILE_BYTES} bytes"
    );
}

/// Four such files were read and opened at once (a batch of 2 × the cores), 18 MB held
/// beside the index; now a batch holds at most INDEX_BATCH_BYTES (8 MiB) of files, so
/// files of 4.6 MB are held one at a time.
#[test]
fn loading_the_index_holds_a_bounded_batch_of_index_files() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let repo = repository_with_index_files(tmp.path(), 4);
    let (beyond, kept, loaded) = held_while(|| repo.load_index().unwrap());
    assert_eq!(loaded.index.blob_count(), 4 * N as usize);
    let bound = snapvault_repo::INDEX_BATCH_BYTES as usize;
    assert!(
        beyond <= bound,
        "loading held {beyond} bytes beyond the index it built ({kept} bytes); four index \
         files of {FILE_BYTES} bytes; a batch may hold {bound}"
    );
}

/// `ls` reads trees alone: the index it loads keeps the tree entries (a tenth here), not
/// the data blobs' 52 bytes each.
#[test]
fn an_index_of_the_trees_keeps_no_data_entries() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let repo = repository_with_index_files(tmp.path(), 1);
    let (_, whole, all) = held_while(|| repo.load_index().unwrap());
    drop(all);
    let (beyond, kept, trees) = held_while(|| repo.load_tree_index().unwrap());
    assert_eq!(trees.index.blob_count(), N as usize / 10);
    assert!(
        kept * 5 <= whole,
        "the index of trees keeps {kept} bytes, the whole index {whole}"
    );
    assert!(
        beyond <= FILE_BYTES + FILE_BYTES / 4,
        "held {beyond} beyond"
    );
}

/// `check` without --read-data held, at its peak, the index built by regrowing, each index
/// file opened into a copy and decoded whole, a copy of every entry grouped by pack and
/// every pack's header at once: 205 MiB at a million small files against 103 for loading
/// the index (3.9 times the index here). Now the index as `load_index` builds it, 4 bytes
/// a blob of grouping, and the headers of the packs being compared (one per thread).
#[test]
fn check_without_data_holds_little_beyond_the_index() {
    use snapvault_repo::checker::{CheckOptions, ReadData, check};
    const M: u32 = 300_000;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    snapvault_repo::testing::create_small_repo(&root, true);
    let repo = snapvault_repo::testing::open(&root);
    let c = snapvault_repo::testing::trees::Crafter::new(&repo);
    for i in 0..M {
        c.blob(BlobType::Data, &i.to_le_bytes());
    }
    c.finish();
    let (_, whole, index) = held_while(|| repo.load_index().unwrap());
    assert_eq!(index.index.blob_count(), M as usize);
    let packs = index.index.packs().len();
    drop(index);
    let opts = CheckOptions {
        read_data: ReadData::None,
        threads: 2,
        last_verified: Default::default(),
        earlier_copies: Vec::new(),
        earlier_packs: Vec::new(),
    };
    let (beyond, kept, report) =
        held_while(|| check(&repo, &opts, &snapvault_repo::archiver::NoHooks).unwrap());
    assert_eq!((report.errors(), report.blobs), (0, M as usize));
    // Headers being compared: one pack per thread (as sealed and decoded, ≤ 128 bytes an
    // entry), on as many threads as `parallel_map` starts.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get().clamp(2, 8))
        .min(packs);
    let in_flight = threads * (M as usize / packs + 1) * 128;
    let peak = beyond + kept;
    assert!(
        peak <= 2 * whole + in_flight,
        "check held {peak} bytes at its peak; the index alone is {whole}, headers in \
         flight {in_flight}"
    );
}

/// A snapshot asks of a data blob only whether it is stored, of a tree where it is: the
/// index it loads ([`Repository::load_index_for_snapshot`]) keeps data blobs as bare
/// 32-byte ids in sorted order (and a small table of where each run of ids starts), trees
/// as whole entries. The whole index keeps 52 bytes a blob and a hash table beside them
/// (≈ 62 a blob): at a million small files ≈ 28 MiB more. Every blob is still found.
#[test]
fn the_index_a_snapshot_loads_keeps_data_blobs_as_ids() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let repo = repository_with_index_files(tmp.path(), 1);
    let (_, whole, all) = held_while(|| repo.load_index().unwrap());
    drop(all);
    let (beyond, kept, loaded) = held_while(|| repo.load_index_for_snapshot().unwrap());
    let per_blob = kept as f64 / N as f64;
    assert!(
        per_blob <= 38.0,
        "the snapshot's index keeps {kept} bytes, {per_blob:.1} a blob (the whole index \
         {whole}, {:.1} a blob)",
        whole as f64 / N as f64
    );
    assert!(
        beyond <= FILE_BYTES + FILE_BYTES / 4,
        "held {beyond} beyond"
    );
    let index = &loaded.index;
    for i in 0..N {
        let id = BlobId(Id::hash_of(&i.to_le_bytes()));
        assert!(index.contains(&id), "blob {i} is stored");
        // Trees are located; data blobs are known to be stored.
        assert_eq!(index.get(&id).is_some(), i % 10 == 0, "blob {i}");
    }
    assert!(!index.contains(&BlobId(Id::hash_of(b"not stored"))));
}
