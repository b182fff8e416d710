//! The library account of a large Photos.sqlite: time to copy the database privately, read
//! every asset (with availability and albums) and count it against a snapshot's files.
//!
//! Writes a `ZASSET` database of `SNAPVAULT_BENCH_ASSETS` (default 50,000) assets — 2 % only
//! in iCloud, 1 % in Recently Deleted, 10 % edited, a quarter in albums, the second half of
//! the rows still in the `-wal` as a phone leaves it — then runs the account five times and
//! prints each time and the median. Run: `cargo bench -p snapvault-photolib --bench library`.

use std::collections::HashSet;
use std::time::Instant;

use snapvault_photolib::fixture::{self, FixtureAsset};
use snapvault_photolib::{Generation, account, adjustments_dir, read_copy_of};

fn main() {
    let n: usize = std::env::var("SNAPVAULT_BENCH_ASSETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("Photos.sqlite");
    let assets: Vec<FixtureAsset> = (0..n)
        .map(|i| FixtureAsset {
            directory: format!("DCIM/{}APPLE", 100 + i / 1000),
            filename: format!("IMG_{:04}.HEIC", i % 10_000),
            uuid: format!("{i:08X}-0000-4000-8000-000000000000"),
            original_filename: Some(format!("IMG_{:04}.HEIC", i % 10_000)),
            created_unix: 1_600_000_000 + i as i64 * 600,
            subtype: if i % 3 == 0 { 2 } else { 0 },
            trashed: i % 100 == 7,
            favorite: i % 20 == 3,
            adjusted: i % 10 == 4,
            cloud_only: i % 50 == 11,
            burst: (i % 500 < 5).then(|| format!("BURST-{}", i / 500)),
            albums: match i % 8 {
                0 => vec!["Holidays".into()],
                1 => vec!["Family".into(), "Holidays".into()],
                _ => Vec::new(),
            },
            ..FixtureAsset::default()
        })
        .collect();
    let t = Instant::now();
    fixture::write(&db, Generation::Asset, &assets, true).expect("write the database");
    let size: u64 = ["Photos.sqlite", "Photos.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "wrote {n} assets ({:.1} MiB with its -wal) in {:.2} s",
        size as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    // What a snapshot holds: every original that is on the phone, and the edits.
    let mut stored: HashSet<String> = HashSet::new();
    for a in assets.iter().filter(|a| !a.cloud_only) {
        let p = format!("{}/{}", a.directory, a.filename);
        if a.adjusted {
            stored.insert(format!("{}/FullSizeRender.jpg", adjustments_dir(&p)));
        }
        stored.insert(p);
    }
    let mut times = Vec::new();
    for run in 1..=5 {
        let t = Instant::now();
        let lib = read_copy_of(&db).expect("read the database");
        let acc = account(&lib, &stored);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(acc.assets as usize, n);
        println!(
            "run {run}: {secs:.3} s — {} assets, {} backed up, {} only in iCloud, {} in Recently Deleted, {} edited",
            acc.assets,
            acc.backed_up,
            acc.icloud_only,
            acc.recently_deleted.unwrap_or_default(),
            acc.edited.unwrap_or_default()
        );
        times.push(secs);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "account of {n} assets: median {:.3} s (min {:.3}, max {:.3})",
        times[2], times[0], times[4]
    );
}
