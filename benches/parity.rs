//! Parity codec: encoding a group of 20 packs of 16 MiB at 5 % (one group of a 5 %
//! repository), and repairing one 16 MiB pack of it (deleted) or scattered damage at the
//! full budget. In memory (no disk), so it measures the codec and hashing, not the drive.
//! Prints one line per case: the median wall time of `SNAPVAULT_BENCH_RUNS` runs (default
//! 3) and the median CPU seconds of the process (all threads: bands are coded on every
//! core), which a busy machine moves less. First, the IFFT of one chunk on the crate's
//! engine and on parity's, then the streaming feeder of a snapshot's packs at two code
//! widths (`SNAPVAULT_BENCH_STREAM_ONLY=1`: those alone).
//! Run: `cargo bench -p snapvault-repo --bench parity`.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reed_solomon_simd::engine::{Engine, ShardsRefMut};
use snapvault_repo::parity::layout::{StreamLayout, level_width};
use snapvault_repo::parity::stream::{Feeder, STREAM_BUDGET};
use snapvault_repo::parity::{
    GroupSource, Locator, MemberKind, MemberSpec, MemberState, ParityEngine, SHARD, encode,
    parity_file_header, repair,
};

const PACK: usize = 16 << 20;
const PACKS: usize = 20;
const PERCENT: u8 = 5;

struct Mem<'a> {
    members: Vec<Option<&'a [u8]>>,
    parity: &'a [u8],
    rec_at: u64,
}

impl GroupSource for Mem<'_> {
    fn member_size(&mut self, i: usize) -> Option<u64> {
        self.members
            .get(i)
            .copied()
            .flatten()
            .map(|m| m.len() as u64)
    }
    fn read_member(&mut self, i: usize, offset: u64, len: usize) -> Option<Vec<u8>> {
        let m = self.members.get(i).copied().flatten()?;
        m.get(offset as usize..offset as usize + len)
            .map(<[u8]>::to_vec)
    }
    fn read_recovery(&mut self, first: u64, shards: usize) -> Option<Vec<u8>> {
        let at = (self.rec_at + first * SHARD as u64) as usize;
        self.parity.get(at..at + shards * SHARD).map(<[u8]>::to_vec)
    }
}

/// CPU time of the whole process (user + system, every thread).
fn cpu() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Median wall time and median CPU seconds over `runs` runs of `f` (which returns the wall
/// time of its timed part; the CPU time is taken around the whole call).
fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Timing {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..runs.max(1) {
        let c = cpu();
        walls.push(f());
        cpus.push(cpu() - c);
    }
    walls.sort();
    cpus.sort_by(f64::total_cmp);
    Timing {
        wall: walls[walls.len() / 2],
        cpu: cpus[cpus.len() / 2],
    }
}

struct Timing {
    wall: Duration,
    cpu: f64,
}

impl std::fmt::Display for Timing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} s wall, {:.3} s CPU",
            self.wall.as_secs_f64(),
            self.cpu
        )
    }
}

/// The streaming feeder of a snapshot's packs (format.md §15.5) on this thread: a run of
/// `STREAM_PACKS` packs of 14–16 MiB (two groups and a tail at 5 %), each folded in as the
/// parity thread does; CPU seconds of this thread and parity bytes ÷ pack bytes, at the
/// level's code width and at half of it (shorter bands, more of them: format.md §15.6).
fn stream(runs: usize) {
    const STREAM_PACKS: usize = 50;
    let mut rng = StdRng::seed_from_u64(23);
    let bufs: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            let mut p = vec![0u8; PACK];
            rng.fill(&mut p[..]);
            p
        })
        .collect();
    let sizes: Vec<usize> = (0..STREAM_PACKS)
        .map(|_| PACK - rng.gen_range(0..2 << 20))
        .collect();
    let level = level_width(PERCENT);
    for width in [level, level / 2] {
        let layout = StreamLayout::of_width(PERCENT, PACK as u64, width);
        let mut cpus = Vec::new();
        let mut share = 0.0;
        for _ in 0..runs.max(1) {
            let c = thread_cpu();
            let mut feeder = Feeder::with_layout(layout, STREAM_BUDGET);
            let mut parity = 0usize;
            for (i, size) in sizes.iter().enumerate() {
                let name = hex::encode(blake3::hash(&i.to_le_bytes()).as_bytes());
                let w = feeder.written(&name, &bufs[i % 4][..*size]).expect("feed");
                parity += w.map_or(0, |w| w.bytes.len());
            }
            parity += feeder.finish().map_or(0, |w| w.bytes.len());
            drop(feeder);
            cpus.push(thread_cpu() - c);
            share = parity as f64 * 100.0 / sizes.iter().sum::<usize>() as f64;
        }
        cpus.sort_by(f64::total_cmp);
        println!(
            "stream  {STREAM_PACKS} packs of 14–16 MiB at {PERCENT} %, C = {width} ({} bands of {}), one thread: {:.3} s CPU (median; min {:.3}), parity {share:.3} % of the packs",
            layout.bands,
            layout.len,
            cpus[cpus.len() / 2],
            cpus[0]
        );
    }
}

/// The IFFT of one chunk of `C` = 256 shards (the 5 % stream's), at each of a 4096-position
/// band's 16 chunk skews, as the band encoder folds it: CPU seconds of this thread per GiB
/// transformed, on the crate's engine and on the one parity uses (`gfni` where the CPU has
/// it).
fn engines(runs: usize) {
    const C: usize = 256;
    const BLOCKS: usize = SHARD / 64;
    let mut rng = StdRng::seed_from_u64(5);
    let mut src = vec![[0u8; 64]; C * BLOCKS];
    rng.fill(src.as_flattened_mut());
    let rounds = 64;
    for engine in [ParityEngine::portable(), ParityEngine::new()] {
        let mut buf = src.clone();
        let mut cpus = Vec::new();
        for _ in 0..runs.max(1) {
            let c = thread_cpu();
            for k in 0..rounds {
                let mut chunk = ShardsRefMut::new(C, BLOCKS, &mut buf);
                engine.ifft(&mut chunk, 0, C, C, (k % 16 + 1) * C);
            }
            cpus.push(thread_cpu() - c);
        }
        std::hint::black_box(&buf);
        cpus.sort_by(f64::total_cmp);
        let gib = (rounds * C * SHARD) as f64 / f64::from(1 << 30);
        println!(
            "ifft    {rounds} chunks of {C} × 4 KiB, {} engine, one thread: {:.3} CPU-s per GiB (median; min {:.3})",
            engine.name(),
            cpus[cpus.len() / 2] / gib,
            cpus[0] / gib
        );
    }
}

/// CPU time of this thread (user + system); of the whole process where the system has no
/// per-thread figure (macOS).
fn thread_cpu() -> f64 {
    #[cfg(target_os = "linux")]
    let who = libc::RUSAGE_THREAD;
    #[cfg(not(target_os = "linux"))]
    let who = libc::RUSAGE_SELF;
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let runs: usize = std::env::var("SNAPVAULT_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    engines(runs);
    stream(runs);
    if std::env::var_os("SNAPVAULT_BENCH_STREAM_ONLY").is_some() {
        return;
    }
    let mut rng = StdRng::seed_from_u64(21);
    let packs: Vec<Vec<u8>> = (0..PACKS)
        .map(|_| {
            let mut p = vec![0u8; PACK];
            rng.fill(&mut p[..]);
            p
        })
        .collect();
    let specs: Vec<MemberSpec> = (0..PACKS)
        .map(|i| MemberSpec {
            kind: MemberKind::Pack,
            name: hex::encode(blake3::hash(&packs[i]).as_bytes()),
            size: PACK as u64,
        })
        .collect();
    // Borrowed, as the spool's packs are: the encoder copies nothing it does not code.
    let read = |i: usize, off: u64, len: usize| Ok(&packs[i][off as usize..off as usize + len]);
    let parts: Vec<(usize, &[u8])> = packs.iter().map(|p| &p[..]).enumerate().collect();
    for (what, locator) in [
        ("CRC-64 (version 2)", Locator::Crc64),
        ("BLAKE3 (version 1)", Locator::Blake3),
    ] {
        let hash = median(runs, || {
            let t = Instant::now();
            // Folded and kept, so the optimiser cannot drop the hashing.
            let (mut n, mut folded) = (0, 0u64);
            for s in parts.iter().flat_map(|(_, p)| p.chunks(SHARD)) {
                folded ^= u64::from_le_bytes(locator.shard_hash(s));
                n += 1;
            }
            std::hint::black_box(folded);
            assert_eq!(n, PACKS * PACK / SHARD);
            t.elapsed()
        });
        println!("hash    every 4 KiB shard of the group, {what}, one thread: {hash}");
    }
    let mut file = Vec::new();
    let mut name = String::new();
    let enc = median(runs, || {
        let t = Instant::now();
        let (id, f) = encode(PERCENT, vec![], &specs, read).expect("encode");
        let d = t.elapsed();
        (name, file) = (id.to_hex(), f);
        d
    });
    let group = (PACKS * PACK) as f64;
    println!(
        "encode  {PACKS} × 16 MiB at {PERCENT} %: {enc} ({:.0} MiB/s), parity file {:.2} % of the group",
        group / enc.wall.as_secs_f64() / 1048576.0,
        file.len() as f64 * 100.0 / group
    );
    let (h, rec_at, _) = parity_file_header(&name, file.len() as u64, |o, l| {
        file.get(o as usize..o as usize + l).map(<[u8]>::to_vec)
    })
    .expect("header");
    let lost = median(runs, || {
        let mut members: Vec<Option<&[u8]>> = packs.iter().map(|p| Some(&p[..])).collect();
        members[7] = None;
        let mut src = Mem {
            members,
            parity: &file,
            rec_at,
        };
        let t = Instant::now();
        let r = repair(&h, &mut src).expect("repair");
        let d = t.elapsed();
        assert!(matches!(&r.members[7], MemberState::Repaired { bytes, .. } if bytes == &packs[7]));
        d
    });
    println!("repair  one deleted 16 MiB pack of the group: {lost}");
    // Scattered: a flipped byte in each band's full budget of shards, spread over the packs.
    let mut damaged = packs.clone();
    for (b, band) in h.bands.iter().enumerate() {
        for k in 0..band.recovery_hashes.len() {
            let i = (k * 7 + b) % PACKS;
            let rows = h.band_range(b, i);
            let row = rows.start + (k as u64 % (rows.end - rows.start));
            damaged[i][row as usize * SHARD + 100] ^= 1;
        }
    }
    let scattered = median(runs, || {
        let mut src = Mem {
            members: damaged.iter().map(|p| Some(&p[..])).collect(),
            parity: &file,
            rec_at,
        };
        let t = Instant::now();
        let r = repair(&h, &mut src).expect("repair");
        let d = t.elapsed();
        assert!(
            r.bands_lost == 0
                && r.members
                    .iter()
                    .all(|m| !matches!(m, MemberState::Lost { .. }))
        );
        d
    });
    println!("repair  5 % of every band's shards flipped, all 20 packs: {scattered}");
    let verify = median(runs, || {
        let mut src = Mem {
            members: packs.iter().map(|p| Some(&p[..])).collect(),
            parity: &file,
            rec_at,
        };
        let t = Instant::now();
        assert!(repair(&h, &mut src).expect("verify").is_clean());
        t.elapsed()
    });
    println!("verify  the undamaged group (hash every shard): {verify}");
}
