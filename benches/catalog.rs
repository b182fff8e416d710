//! Photo catalog benchmark: 200,000 photos in 100 snapshots of an iPhone-like library,
//! synthesized straight into the catalog (no repository), then typical queries timed.
//!
//! `cargo bench -p snapvault-catalog --bench catalog` (prints a table; no criterion).
//!
//! The library: DCIM/100APPLE… folders of 1,000 files; each snapshot adds 2,000 new
//! contents (70 % stills, 10 % videos, 20 % Live Photo pairs = still + MOV, plus an AAE
//! sidecar for one still in ten) to the active folders and deletes 20 files from one older
//! folder, so most folders are the same tree blob from one snapshot to the next — as on a
//! real phone. Capture dates run from 2016 to 2025 in shooting order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use snapvault_catalog::{Catalog, DateRange, KindFilter, PhotoQuery, PhotoRow};
use snapvault_repo::snapshot::{Device, Snapshot, Source, Summary};
use snapvault_repo::tree::{MediaMeta, Name, Node, NodeKind, Tree};
use snapvault_repo::walk::TreeSource;
use snapvault_repo::{BlobId, Id, RepoError, SnapshotId};

/// Defaults; `SNAPVAULT_BENCH_SNAPSHOTS` and `SNAPVAULT_BENCH_CONTENTS` override them
/// (docs/benchmarks.md runs the browse figures on 50,000 photos).
const SNAPSHOTS_DEFAULT: usize = 100;
const CONTENTS_DEFAULT: usize = 200_000;

fn setting(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
const FOLDER: usize = 1_000;
const DELETES: usize = 20;

struct Trees(HashMap<BlobId, Tree>);

impl TreeSource for Trees {
    fn load_tree(&self, id: &BlobId) -> Result<Tree, RepoError> {
        self.0
            .get(id)
            .cloned()
            .ok_or_else(|| RepoError::MissingBlob(id.to_hex()))
    }
}

/// Deterministic xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Library {
    folders: Vec<Vec<Node>>,
    folder_ids: Vec<Option<BlobId>>,
    trees: Trees,
    made: usize,
    file_no: usize,
    rng: Rng,
}

fn dir_node(name: String, sub: BlobId) -> Node {
    Node {
        name: Name(name.into_bytes()),
        kind: NodeKind::Dir,
        mode: 0o755,
        mtime: 1_700_000_000_000_000_000,
        btime: None,
        size: 0,
        content: vec![],
        subtree: Some(sub),
        target: None,
        media: None,
        rdev: None,
        dev: None,
        ino: None,
        ctime: None,
        inode: None,
    }
}

impl Library {
    fn store(&mut self, mut t: Tree) -> BlobId {
        t.sort();
        let id = BlobId(Id::hash_of(&t.encode()));
        self.trees.0.entry(id).or_insert(t);
        id
    }

    /// Capture time of the n-th content: 2016-01-01 .. 2025-12-31, in shooting order.
    fn taken(n: usize) -> String {
        let total = setting("SNAPVAULT_BENCH_CONTENTS", CONTENTS_DEFAULT).max(1);
        let day = (n as u64 * 3652 / total as u64) as i64;
        let secs = 1_451_606_400 + day * 86_400 + (n as i64 * 37) % 86_400;
        let (y, m, d) = civil(secs.div_euclid(86_400));
        let s = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+02:00",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    fn file(&mut self, stem: &str, ext: &str, kind: &str, folder: usize, taken: Option<String>) {
        self.made += 1;
        let n = self.made as u64;
        let content = (0..3)
            .map(|i| BlobId(Id::hash_of(&(n * 4 + i).to_le_bytes())))
            .collect();
        let dir = format!("DCIM/{}APPLE", 100 + folder);
        self.folders[folder].push(Node {
            name: Name(format!("{stem}.{ext}").into_bytes()),
            kind: NodeKind::File,
            mode: 0o644,
            mtime: 1_700_000_000_000_000_000 + n as i64,
            btime: None,
            size: 2_500_000 + n % 1_000_000,
            content,
            subtree: None,
            target: None,
            media: Some(MediaMeta {
                kind: kind.into(),
                taken,
                date_source: Some("exif".into()),
                pair: Some(format!("iPhone/{dir}/{stem}")),
                content_id: None,
            }),
            rdev: None,
            dev: None,
            ino: None,
            ctime: None,
            inode: None,
        });
        self.folder_ids[folder] = None;
    }

    /// Add `count` contents to the active folder(s).
    fn shoot(&mut self, count: usize) {
        let target = self.made + count;
        while self.made < target {
            let folder = self.file_no / FOLDER;
            if folder == self.folders.len() {
                self.folders.push(Vec::new());
                self.folder_ids.push(None);
            }
            self.file_no += 1;
            let stem = format!("IMG_{:04}", self.file_no % 10_000);
            let taken = Library::taken(self.made);
            match self.rng.below(10) {
                0..7 => self.file(&stem, "HEIC", "photo", folder, Some(taken)),
                7 => self.file(&stem, "MOV", "video", folder, Some(taken)),
                _ if target - self.made >= 2 => {
                    self.file(&stem, "HEIC", "photo", folder, Some(taken.clone()));
                    self.file(&stem, "MOV", "video", folder, Some(taken));
                }
                _ => self.file(&stem, "HEIC", "photo", folder, Some(taken)),
            }
            if self.rng.below(10) == 0 && self.made < target {
                self.file(&stem, "AAE", "sidecar", folder, None);
            }
        }
    }

    fn delete_some(&mut self) {
        let full = self.folders.len().saturating_sub(2);
        if full == 0 {
            return;
        }
        let f = self.rng.below(full);
        for _ in 0..DELETES.min(self.folders[f].len()) {
            let i = self.rng.below(self.folders[f].len());
            self.folders[f].remove(i);
        }
        self.folder_ids[f] = None;
    }

    /// The root tree of the library as it is now (only changed folders are re-encoded).
    fn root(&mut self) -> BlobId {
        let mut dcim = Vec::new();
        for f in 0..self.folders.len() {
            let id = match self.folder_ids[f] {
                Some(id) => id,
                None => {
                    let t = Tree {
                        nodes: self.folders[f].clone(),
                    };
                    let id = self.store(t);
                    self.folder_ids[f] = Some(id);
                    id
                }
            };
            dcim.push(dir_node(format!("{}APPLE", 100 + f), id));
        }
        let dcim = self.store(Tree { nodes: dcim });
        let dcim_dir = self.store(Tree {
            nodes: vec![dir_node("DCIM".into(), dcim)],
        });
        self.store(Tree {
            nodes: vec![dir_node("iPhone".into(), dcim_dir)],
        })
    }
}

/// Days since 1970-01-01 → (year, month, day).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// This thread's CPU time: unlike wall time, it does not grow when other processes compete
/// for the cores.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

struct Timing {
    best: Duration,
    median: Duration,
    cpu: Duration,
}

/// Five runs: best and median wall time, median CPU time, and the last result.
fn time<T>(f: impl FnMut() -> T) -> (Timing, T) {
    let mut f = f;
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        drop(last.take());
        let (t, c) = (Instant::now(), cpu_time());
        let v = f();
        walls.push(t.elapsed());
        cpus.push(cpu_time().saturating_sub(c));
        last = Some(v);
    }
    walls.sort();
    cpus.sort();
    let timing = Timing {
        best: walls[0],
        median: walls[2],
        cpu: cpus[2],
    };
    (timing, last.expect("ran"))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Counts the bytes allocated and not yet freed, so the RAM a result holds is measured
/// exactly (RSS would hide memory the allocator kept from earlier queries).
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, std::sync::atomic::Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    // SNAPVAULT_BENCH_DB=/some/file.sqlite keeps the catalog for inspection.
    let path = std::env::var_os("SNAPVAULT_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("catalog-bench.sqlite"));
    // SNAPVAULT_BENCH_REUSE=1 (with SNAPVAULT_BENCH_DB) skips building it again.
    let reuse = std::env::var_os("SNAPVAULT_BENCH_REUSE").is_some() && path.exists();
    if !reuse {
        let _ = std::fs::remove_file(&path);
    }
    let mut cat = Catalog::open(&path).expect("open");
    let mut lib = Library {
        folders: Vec::new(),
        folder_ids: Vec::new(),
        trees: Trees(HashMap::new()),
        made: 0,
        file_no: 0,
        rng: Rng(0x9e37_79b9_7f4a_7c15),
    };
    let device = Device {
        udid: "00008110-000A1B2C3D4E5F6G".into(),
        name: "iPhone".into(),
        model: "iPhone15,2".into(),
        ios_version: "17.5".into(),
    };
    let snapshots = setting("SNAPVAULT_BENCH_SNAPSHOTS", SNAPSHOTS_DEFAULT).max(1);
    let contents = setting("SNAPVAULT_BENCH_CONTENTS", CONTENTS_DEFAULT);
    let mut snaps = Vec::new();
    let mut sync_time = Duration::ZERO;
    let mut sync_cpu = Duration::ZERO;
    let mut slowest = Duration::ZERO;
    let mut trees_read = 0;
    for i in 0..snapshots {
        if reuse {
            snaps.push(SnapshotId(Id::hash_of(format!("snapshot {i}").as_bytes())));
            continue;
        }
        lib.shoot(contents / snapshots);
        lib.delete_some();
        let root = lib.root();
        let snap = Snapshot {
            version: 1,
            time: 1_700_000_000_000_000_000 + i as i64 * 86_400_000_000_000,
            hostname: "mac".into(),
            username: "me".into(),
            source: Source {
                kind: "iphone".into(),
                paths: vec![],
                device: Some(device.clone()),
            },
            tags: vec![],
            tree: root,
            parent: None,
            summary: Summary::default(),
            incomplete: false,
            original: None,
            library: None,
        };
        let id = SnapshotId(Id::hash_of(format!("snapshot {i}").as_bytes()));
        let (t, c) = (Instant::now(), cpu_time());
        let added = cat
            .add_snapshot(&lib.trees, &id, &snap)
            .expect("add")
            .unwrap_or_default();
        let el = t.elapsed();
        sync_cpu += cpu_time().saturating_sub(c);
        sync_time += el;
        slowest = slowest.max(el);
        trees_read += added.trees;
        snaps.push(id);
    }
    let counts = cat.counts().expect("counts");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    drop(cat);
    let t = Instant::now();
    let cat = Catalog::open(&path).expect("reopen");
    let open_time = t.elapsed();

    println!("snapvault catalog benchmark");
    println!(
        "library: {} contents made, {} snapshots, {} distinct trees ({} read while syncing)",
        lib.made, snapshots, counts.trees, trees_read
    );
    println!(
        "catalog: {} photos, {} file rows, {} snapshot_dirs rows, {:.1} MiB on disk",
        counts.photos,
        counts.files,
        counts.snapshot_dirs,
        size as f64 / (1 << 20) as f64
    );
    println!(
        "sync: {} for {snapshots} snapshots ({} per snapshot, slowest {}; CPU {})",
        ms(sync_time),
        ms(sync_time / snapshots as u32),
        ms(slowest),
        ms(sync_cpu)
    );
    println!("open (header + small-table checks): {}", ms(open_time));
    println!();
    println!(
        "{:<34} {:>8} {:>11} {:>11} {:>11}",
        "query (5 runs)", "rows", "wall best", "wall median", "CPU median"
    );

    let q = |dates: Option<&str>, kind: Option<KindFilter>| PhotoQuery {
        dates: dates.map(|d| d.parse::<DateRange>().expect("date")),
        kind,
        ..PhotoQuery::default()
    };
    let latest = *snaps.last().expect("snapshots");
    let cases: Vec<(&str, PhotoQuery)> = vec![
        ("--date 2020-07 (one month)", q(Some("2020-07"), None)),
        ("--date 2021-07-14 (one day)", q(Some("2021-07-14"), None)),
        ("--date 2021 (one year)", q(Some("2021"), None)),
        (
            "--date 2019-03..2020-02 (range)",
            q(Some("2019-03..2020-02"), None),
        ),
        ("--date 2024-06.. (open range)", q(Some("2024-06.."), None)),
        ("--kind video", q(None, Some(KindFilter::Video))),
        ("--kind live", q(None, Some(KindFilter::Live))),
        ("all", q(None, None)),
        (
            "--snapshot latest, all",
            PhotoQuery {
                snapshots: Some(vec![latest]),
                ..PhotoQuery::default()
            },
        ),
        (
            "--snapshot latest --date 2020-07",
            PhotoQuery {
                snapshots: Some(vec![latest]),
                ..q(Some("2020-07"), None)
            },
        ),
    ];
    let mut month_rows: Vec<PhotoRow> = Vec::new();
    for (name, query) in &cases {
        let (t, rows) = time(|| cat.photos(query).expect("query"));
        println!(
            "{name:<34} {:>8} {:>11} {:>11} {:>11}",
            rows.len(),
            ms(t.best),
            ms(t.median),
            ms(t.cpu)
        );
        if name.contains("one month") && !name.contains("snapshot") {
            month_rows = rows;
        }
    }
    let month = &cases[0].1;
    let (t, comp) = time(|| cat.companions(month, &month_rows).expect("companions"));
    println!(
        "{:<34} {:>8} {:>11} {:>11} {:>11}",
        "companions of the month's rows",
        comp.len(),
        ms(t.best),
        ms(t.median),
        ms(t.cpu)
    );
    // What `snapvault browse` asks: the timeline is one pass over every photo, in no order,
    // grouped by month (made when the server starts and when the snapshots change); a month
    // page is one date query.
    let (t, months) = time(|| {
        let rows = cat.photos_unordered(&q(None, None)).expect("all");
        // Keyed as browse keys it (a parsed year and month, no string per row).
        let mut by_month: std::collections::BTreeMap<Option<(u16, u8)>, (u32, u32)> =
            Default::default();
        for r in &rows {
            let m = r.taken.as_deref().and_then(|t| {
                let (y, m) = t.get(..7)?.split_once('-')?;
                Some((y.parse().ok()?, m.parse().ok()?))
            });
            let e = by_month.entry(m).or_default();
            if r.kind == "video" {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
        by_month
    });
    println!(
        "{:<34} {:>8} {:>11} {:>11} {:>11}",
        "browse timeline (months)",
        months.len(),
        ms(t.best),
        ms(t.median),
        ms(t.cpu)
    );
    // The smallest run of whole months from the start holding at least 2,000 items: the
    // cost of a 2,000-photo month page's query.
    let key = |m: &Option<(u16, u8)>| m.map(|(y, m)| format!("{y:04}-{m:02}"));
    let mut acc = 0;
    let mut last = None;
    for (m, (p, v)) in months.iter().filter(|(m, _)| m.is_some()) {
        acc += p + v;
        last = key(m);
        if acc >= 2_000 {
            break;
        }
    }
    if let (Some(first), Some(last)) = (months.keys().find_map(key), last) {
        let span = q(Some(&format!("{first}..{last}")), None);
        let (t, rows) = time(|| cat.photos(&span).expect("span"));
        println!(
            "{:<34} {:>8} {:>11} {:>11} {:>11}",
            "browse month page query",
            rows.len(),
            ms(t.best),
            ms(t.median),
            ms(t.cpu)
        );
    }
    // RAM per catalog photo: every photo's row held at once (what `photos` with no filter
    // and the browse timeline hold), in bytes allocated; the catalog itself stays on disk.
    let before = live();
    let all = cat.photos_unordered(&q(None, None)).expect("all");
    let held = live().saturating_sub(before);
    let photos = all.len().max(1);
    println!();
    println!(
        "RAM: every photo's row at once: {} rows, {} bytes allocated, {:.0} bytes per photo; catalog file {:.0} bytes per photo; peak RSS of this process {:.1} MiB",
        all.len(),
        held,
        held as f64 / photos as f64,
        size as f64 / photos as f64,
        vm_hwm_kib() as f64 / 1024.0
    );
    drop(all);
    let sample = month_rows.first().expect("rows");
    println!();
    println!(
        "sample row: {} taken {:?}, in {} snapshots, {} chunks",
        sample.latest_path,
        sample.taken,
        sample.snapshot_count,
        sample.content.len()
    );
}
