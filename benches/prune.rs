//! Prune on a repository with many small blobs: time and peak memory.
//!
//! Builds, through the library (no chunking, so it takes seconds), an encrypted repository
//! of `SNAPVAULT_BENCH_BLOBS` (default 120,000) data blobs of 0.5–1.5 KiB in 200 folders,
//! with ten snapshots, snapshot i holding folders [20·i, 20·i + 40). The first five snapshots
//! are forgotten, which leaves half of the blobs unused. Two layouts:
//!
//! - `sequential`: blobs are packed in folder order (as successive snapshots write them):
//!   prune mostly deletes whole packs;
//! - `interleaved`: folders 0,100,1,101,… share packs, so every pack is half used: prune
//!   repacks everything (the worst case).
//!
//! For each, prints the time to plan (load index + snapshots, mark, classify) and to
//! execute, and the peak resident memory (VmHWM) of a fresh process that only prunes. Run: `cargo bench -p snapvault-repo --bench prune`.
//!
//! `SNAPVAULT_BENCH_SPARSE=1` builds a repository at scale instead (10 million blobs in
//! seconds, on no disk space): the data packs are sparse files of the size their index
//! entries give, never read — each folder's blobs fill packs of their own, so prune only
//! deletes whole packs and rewrites the index — while trees, index files and snapshots are
//! real. Files have 10 chunks each, 1,000 files a folder. Prints the same lines, and the
//! RAM per indexed blob of the index alone.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use snapvault_repo::archiver::NoHooks;
use snapvault_repo::backend::{Backend, FileKind, LocalBackend};
use snapvault_repo::blob::{self, BlobType, Compression};
use snapvault_repo::index::{IndexFile, IndexedPack};
use snapvault_repo::keyfile::KdfParams;
use snapvault_repo::pack::PackWriter;
use snapvault_repo::prune::{self, PruneOptions};
use snapvault_repo::snapshot::{Snapshot, Source, Summary};
use snapvault_repo::tree::{Name, Node, NodeKind, Tree};
use snapvault_repo::{BlobId, Repository};

const FOLDERS: usize = 200;
const SNAPSHOTS: usize = 10;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used: unlike wall time, the figure other
/// processes on a shared machine do not move.
fn cpu_s() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage through a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

struct Packs<'a> {
    repo: &'a Repository,
    w: PackWriter,
    done: Vec<IndexedPack>,
    bytes: u64,
}

impl<'a> Packs<'a> {
    fn new(repo: &'a Repository) -> Self {
        Packs {
            repo,
            w: PackWriter::default(),
            done: vec![],
            bytes: 0,
        }
    }
    /// Store the listing `t` (compressed as `snapshot` does); returns its id.
    fn put_tree(&mut self, t: &Tree) -> BlobId {
        let crypto = self.repo.crypto().clone();
        let bytes = t.encode();
        let id = crypto.blob_id(&bytes);
        self.add(&blob::encode(
            &crypto,
            id,
            BlobType::Tree,
            &bytes,
            Compression::Try(3),
        ));
        id
    }
    fn add(&mut self, b: &blob::EncodedBlob) {
        if !self.w.is_empty()
            && self.w.len() + b.sealed.len() > self.repo.config().pack_size as usize
        {
            self.flush();
        }
        self.w.add(b);
    }
    fn flush(&mut self) {
        let w = std::mem::take(&mut self.w);
        if w.is_empty() {
            return;
        }
        let (id, bytes, blobs) = w.finish(self.repo.crypto());
        self.repo
            .backend()
            .write(FileKind::Pack, &id.to_hex(), &bytes)
            .unwrap();
        self.bytes += bytes.len() as u64;
        self.done.push(IndexedPack {
            id,
            size: bytes.len() as u64,
            blobs,
        });
        if self.done.len() >= 32 {
            self.save_index();
        }
    }
    fn save_index(&mut self) {
        if !self.done.is_empty() {
            let packs = std::mem::take(&mut self.done);
            self.repo
                .save_index(&IndexFile {
                    supersedes: vec![],
                    packs,
                })
                .unwrap();
        }
    }
}

/// An entry of a crafted listing (folders 0755, files 0644).
fn node(
    name: String,
    kind: NodeKind,
    size: u64,
    content: Vec<BlobId>,
    subtree: Option<BlobId>,
) -> Node {
    Node {
        name: Name(name.into_bytes()),
        kind,
        mode: if kind == NodeKind::Dir { 0o755 } else { 0o644 },
        mtime: 1_700_000_000_000_000_000,
        btime: None,
        size,
        content,
        subtree,
        target: None,
        media: None,
        rdev: None,
        dev: None,
        ino: None,
        ctime: None,
        inode: None,
    }
}

/// An empty encrypted repository at `root` (a cheap key derivation: the bench measures
/// prune, not Argon2).
fn init(root: &std::path::Path) -> Repository {
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(root));
    Repository::init(
        be,
        Some(b"bench"),
        KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        },
    )
    .unwrap()
}

fn build(root: &std::path::Path, blobs: usize, interleaved: bool) -> (Repository, u64) {
    let repo = init(root);
    let crypto = repo.crypto().clone();
    let per_folder = blobs.div_ceil(FOLDERS);
    let order: Vec<usize> = if interleaved {
        (0..FOLDERS / 2)
            .flat_map(|f| [f, f + FOLDERS / 2])
            .collect()
    } else {
        (0..FOLDERS).collect()
    };
    let mut data = Packs {
        repo: &repo,
        w: PackWriter::default(),
        done: vec![],
        bytes: 0,
    };
    let mut folder_blobs: Vec<Vec<(BlobId, u64)>> = vec![Vec::new(); FOLDERS];
    for &f in &order {
        for j in 0..per_folder {
            let seed = (f * per_folder + j) as u64;
            let len = 512 + (seed as usize * 7919) % 1024;
            let plain = noise(seed, len);
            let id = crypto.blob_id(&plain);
            data.add(&blob::encode(
                &crypto,
                id,
                BlobType::Data,
                &plain,
                Compression::Never,
            ));
            folder_blobs[f].push((id, len as u64));
        }
    }
    data.flush();
    data.save_index();
    let mut total = data.bytes;
    // One tree per folder, one root tree per snapshot.
    let mut trees = Packs::new(&repo);
    let mut tree_ids = Vec::with_capacity(FOLDERS);
    for (f, files) in folder_blobs.iter().enumerate() {
        let t = Tree {
            nodes: files
                .iter()
                .enumerate()
                .map(|(j, (id, len))| {
                    node(
                        format!("IMG_{f:03}_{j:05}.HEIC"),
                        NodeKind::File,
                        *len,
                        vec![*id],
                        None,
                    )
                })
                .collect(),
        };
        tree_ids.push(trees.put_tree(&t));
    }
    let mut roots = Vec::new();
    for i in 0..SNAPSHOTS {
        let lo = i * 20;
        let t = Tree {
            nodes: (lo..(lo + 40).min(FOLDERS))
                .map(|f| {
                    node(
                        format!("d{f:03}"),
                        NodeKind::Dir,
                        0,
                        vec![],
                        Some(tree_ids[f]),
                    )
                })
                .collect(),
        };
        roots.push(trees.put_tree(&t));
    }
    trees.flush();
    trees.save_index();
    total += trees.bytes;
    save_snapshots(&repo, roots);
    (repo, total)
}

/// The scale layout (`SNAPVAULT_BENCH_SPARSE`): `blobs` data blobs in sparse packs, one
/// pack per folder of 1,000 files × 10 chunks; snapshots as in [`build`].
fn build_sparse(root: &std::path::Path, blobs: usize) -> (Repository, u64) {
    const CHUNKS: usize = 10;
    const FILES: usize = 1000;
    let repo = init(root);
    let folders = blobs.div_ceil(CHUNKS * FILES).max(SNAPSHOTS);
    // Pretend blobs of 1,600 bytes: a folder's 10,000 fill one 16 MiB pack.
    const LEN: u32 = 1600;
    let mut index_packs = Vec::new();
    let mut total = 0u64;
    let mut tree_packs = Packs::new(&repo);
    let mut tree_ids = Vec::with_capacity(folders);
    for f in 0..folders {
        let mut entries = Vec::with_capacity(CHUNKS * FILES);
        let mut nodes = Vec::with_capacity(FILES);
        for j in 0..FILES {
            let content: Vec<BlobId> = (0..CHUNKS)
                .map(|c| {
                    let seed = ((f * FILES + j) * CHUNKS + c) as u64;
                    let id = BlobId(snapvault_repo::Id::hash_of(&seed.to_le_bytes()));
                    entries.push(snapvault_repo::pack::PackEntry {
                        id,
                        typ: BlobType::Data,
                        compressed: false,
                        offset: entries.len() as u32 * LEN,
                        length: LEN,
                        raw_len: LEN - 40,
                    });
                    id
                })
                .collect();
            nodes.push(node(
                format!("IMG_{j:05}.MOV"),
                NodeKind::File,
                (CHUNKS as u64) * (LEN as u64 - 40),
                content,
                None,
            ));
        }
        let size = entries.len() as u64 * LEN as u64 + 4096;
        let id = snapvault_repo::PackId(snapvault_repo::Id::random());
        let path = root.join(FileKind::Pack.path_of(&id.to_hex()).unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::File::create(&path).unwrap().set_len(size).unwrap();
        total += size;
        index_packs.push(IndexedPack {
            id,
            size,
            blobs: entries,
        });
        if index_packs.len() >= 32 {
            repo.save_index(&IndexFile {
                supersedes: vec![],
                packs: std::mem::take(&mut index_packs),
            })
            .unwrap();
        }
        tree_ids.push(tree_packs.put_tree(&Tree { nodes }));
    }
    if !index_packs.is_empty() {
        repo.save_index(&IndexFile {
            supersedes: vec![],
            packs: index_packs,
        })
        .unwrap();
    }
    let mut roots = Vec::new();
    for i in 0..SNAPSHOTS {
        let lo = i * folders / SNAPSHOTS;
        let hi = (lo + folders / 5).min(folders);
        let t = Tree {
            nodes: (lo..hi)
                .map(|f| {
                    node(
                        format!("d{f:06}"),
                        NodeKind::Dir,
                        0,
                        vec![],
                        Some(tree_ids[f]),
                    )
                })
                .collect(),
        };
        roots.push(tree_packs.put_tree(&t));
    }
    tree_packs.flush();
    tree_packs.save_index();
    total += tree_packs.bytes;
    save_snapshots(&repo, roots);
    (repo, total)
}

fn save_snapshots(repo: &Repository, roots: Vec<BlobId>) {
    for (i, root) in roots.into_iter().enumerate() {
        repo.save_snapshot(&Snapshot {
            version: 1,
            time: 1_700_000_000_000_000_000 + i as i64 * 86_400_000_000_000,
            hostname: "bench".into(),
            username: "bench".into(),
            source: Source::folder(vec!["/photos".into()]),
            tags: vec![],
            tree: root,
            parent: None,
            summary: Summary::default(),
            incomplete: false,
            original: None,
            library: None,
        })
        .unwrap();
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

/// The child process: open the repository, prune it, print one line of figures.
fn prune_only(root: &std::path::Path) {
    let rss_start = status_kib("VmRSS:");
    let be: Arc<dyn Backend> = Arc::new(LocalBackend::new(root));
    let repo = Repository::open(be, || Ok(b"bench".to_vec())).unwrap();
    let _lock = repo.lock(true, "prune").unwrap();
    if std::env::var_os("SNAPVAULT_BENCH_INDEX_ONLY").is_some() {
        let (t, c) = (Instant::now(), cpu_s());
        let loaded = repo.load_index().unwrap();
        let rss = status_kib("VmRSS:");
        println!(
            "  loading the index alone: {:.2} s ({:.2} CPU-s), {} blobs, peak RSS {:.1} MiB, RSS after {:.1} MiB ({:.1} bytes per indexed blob above the process start)",
            t.elapsed().as_secs_f64(),
            cpu_s() - c,
            loaded.index.blob_count(),
            status_kib("VmHWM:") as f64 / 1024.0,
            rss as f64 / 1024.0,
            (rss.saturating_sub(rss_start) * 1024) as f64 / loaded.index.blob_count().max(1) as f64
        );
        return;
    }
    let (t, c) = (Instant::now(), cpu_s());
    let plan = prune::plan(&repo, &PruneOptions::default(), &HashSet::new(), &NoHooks).unwrap();
    let plan_s = t.elapsed().as_secs_f64();
    let plan_cpu = cpu_s() - c;
    let peak_plan = status_kib("VmHWM:");
    let rss_plan = status_kib("VmRSS:");
    let st = plan.stats.clone();
    let (t, c) = (Instant::now(), cpu_s());
    let r = prune::execute(&repo, plan, &NoHooks).unwrap();
    let exec_s = t.elapsed().as_secs_f64();
    let exec_cpu = cpu_s() - c;
    let peak = status_kib("VmHWM:");
    println!(
        "  plan:    {plan_s:.2} s, {plan_cpu:.2} CPU-s  ({} snapshots, {} trees; used {} blobs / {:.1} MiB, unused {} blobs / {:.1} MiB)",
        st.snapshots,
        st.trees,
        st.used_blobs,
        mib(st.used_bytes),
        st.unused_blobs,
        mib(st.unused_bytes)
    );
    println!(
        "  execute: {exec_s:.2} s, {exec_cpu:.2} CPU-s  (removed {} packs, repacked {} packs / {} blobs, wrote {:.1} MiB, freed {:.1} MiB)",
        st.remove_packs,
        st.repack_packs,
        r.blobs_repacked,
        mib(r.bytes_written),
        r.bytes_freed as f64 / (1u64 << 20) as f64
    );
    println!(
        "  total:   {:.2} s ({:.0} blobs/s); peak RSS {:.1} MiB after planning (RSS then {:.1} MiB), {:.1} MiB overall (process start {:.1} MiB); planning: {:.0} bytes per indexed blob",
        plan_s + exec_s,
        st.blobs as f64 / (plan_s + exec_s),
        peak_plan as f64 / 1024.0,
        rss_plan as f64 / 1024.0,
        peak as f64 / 1024.0,
        rss_start as f64 / 1024.0,
        (peak_plan.saturating_sub(rss_start) * 1024) as f64 / st.blobs as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--prune-only") {
        prune_only(std::path::Path::new(&args[i + 1]));
        return;
    }
    let blobs: usize = std::env::var("SNAPVAULT_BENCH_BLOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120_000);
    let base = std::env::var_os("SNAPVAULT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let sparse = std::env::var_os("SNAPVAULT_BENCH_SPARSE").is_some();
    if sparse {
        println!(
            "prune benchmark at scale: {blobs} data blobs in sparse packs (never read), files of 10 chunks, 1,000 a folder, {SNAPSHOTS} snapshots, the oldest half forgotten"
        );
    } else {
        println!(
            "prune benchmark: {blobs} data blobs of 0.5-1.5 KiB, {FOLDERS} folders, {SNAPSHOTS} snapshots, the oldest half forgotten"
        );
    }
    let layouts: &[bool] = if sparse { &[false] } else { &[false, true] };
    for &interleaved in layouts {
        let layout = match (sparse, interleaved) {
            (true, _) => "sparse",
            (false, true) => "interleaved",
            (false, false) => "sequential",
        };
        let dir = tempfile::Builder::new()
            .prefix("snapvault-bench-prune-")
            .tempdir_in(&base)
            .unwrap();
        let root = dir.path().join("repo");
        let t = Instant::now();
        let (repo, bytes) = if sparse {
            build_sparse(&root, blobs)
        } else {
            build(&root, blobs, interleaved)
        };
        let build_s = t.elapsed().as_secs_f64();
        let (snaps, _) = repo.snapshots().unwrap();
        for (id, _) in snaps.iter().take(SNAPSHOTS / 2) {
            repo.backend()
                .remove(FileKind::Snapshot, &id.to_hex())
                .unwrap();
        }
        let packs = repo.backend().list(FileKind::Pack).unwrap().len();
        drop(repo);
        println!(
            "\n[{layout}] repository: {packs} packs, {:.1} MiB (built in {build_s:.1} s)",
            mib(bytes)
        );
        // Prune in a fresh process, so its peak memory is prune's alone; first a process
        // that only loads the index, for comparison.
        for index_only in [true, false] {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.arg("--prune-only").arg(&root);
            if index_only {
                cmd.env("SNAPVAULT_BENCH_INDEX_ONLY", "1");
            }
            assert!(cmd.status().unwrap().success());
        }
    }
}
