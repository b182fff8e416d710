//! Requests per pack on S3, counted through the proxy (a count, never a time): a pack is
//! one `PUT` — conditional (`If-None-Match: *`) with a CRC32C checksum, so the server refuses a
//! pack that exists or arrived damaged, and its success is the pack stored whole. No `HEAD`
//! before it to look for the pack, none after to check its size (issue 23.6).

use snapvault_remote::test_proxy::{Faults, Proxy};

use super::{library, s, s3_proxy, s3_via};
use crate::common::*;
use crate::remote::{Remote, no_servers};

/// The request lines of `lines` on objects under `dir/` of the repository (listings of
/// the bucket, `GET /bucket?list-type=2&prefix=…`, are not on an object).
fn on<'a>(lines: &'a [String], dir: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| {
            l.split(' ')
                .nth(1)
                .is_some_and(|p| p.contains(dir) && !p.contains('?'))
        })
        .map(|l| l.as_str())
        .collect()
}

#[test]
fn an_s3_pack_is_one_put() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "requests");
    r.ok(&["init"]);
    let work = tempdir();
    // 40 MB of photos: three data packs at least.
    let src = library(work.path(), 2300, 5, 8_000_000);
    let before = proxy.requests().len();
    r.ok(&["snapshot", &s(&src)]);
    let lines = proxy.requests().split_off(before);
    assert!(
        !lines.iter().any(|l| l == "?"),
        "unfollowed requests: {lines:#?}"
    );
    // Writing a pack: its PUT and nothing else. The catalog reads the new trees right
    // after: from the small tree pack this process kept (`snapvault_remote::kept`), not
    // with a GET each.
    let data = on(&lines, "/data/");
    let puts: Vec<&str> = data
        .iter()
        .filter(|l| l.starts_with("PUT "))
        .copied()
        .collect();
    let packs: std::collections::HashSet<&str> =
        puts.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert!(packs.len() >= 3, "expected three packs or more: {data:#?}");
    assert_eq!(puts.len(), packs.len(), "a pack put twice: {data:#?}");
    let other: Vec<&&str> = data.iter().filter(|l| !l.starts_with("PUT ")).collect();
    assert!(
        other.is_empty(),
        "requests on packs besides their one PUT: {other:#?} (all: {data:#?})"
    );
    eprintln!(
        "{} packs written in {} PUT requests; all requests of the snapshot: {}",
        packs.len(),
        puts.len(),
        lines.len()
    );
    // Index files and the snapshot file too: a PUT each, no HEAD (they are read back
    // afterwards, GET, by the commands that follow the snapshot).
    for dir in ["/index/", "/snapshots/"] {
        let reqs = on(&lines, dir);
        assert!(
            reqs.iter().any(|l| l.starts_with("PUT "))
                && reqs
                    .iter()
                    .all(|l| l.starts_with("PUT ") || l.starts_with("GET ")),
            "{dir}: {reqs:#?}"
        );
    }
    r.ok(&["check", "--read-data"]);
}

/// Index checkpoints on S3 come every 32 packs, as on a local disk (they were every 4: 17
/// `PUT`s of index files per GiB). A snapshot of six data packs writes one index file, at
/// its end, after its packs (docs/format.md §11).
#[test]
fn an_s3_snapshot_of_six_packs_writes_one_index_file() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "checkpoints");
    r.ok(&["init"]);
    let work = tempdir();
    // 84 MB of videos: six 16 MiB data packs or so.
    let src = library(work.path(), 3700, 6, 14_000_000);
    let before = proxy.requests().len();
    r.ok(&["snapshot", &s(&src)]);
    let lines = proxy.requests().split_off(before);
    let puts = |dir: &str| -> Vec<usize> {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.starts_with("PUT ") && on(std::slice::from_ref(l), dir).len() == 1)
            .map(|(i, _)| i)
            .collect()
    };
    let (packs, index) = (puts("/data/"), puts("/index/"));
    eprintln!("{} pack PUTs, {} index PUTs", packs.len(), index.len());
    assert!(packs.len() >= 5, "expected five packs or more: {lines:#?}");
    assert_eq!(index.len(), 1, "index files written: {lines:#?}");
    // The index file names packs already stored: it comes after the last pack's PUT.
    assert!(index[0] > packs[packs.len() - 1], "{lines:#?}");
    r.ok(&["check", "--read-data"]);
}

/// A restore announces the ranges it will read next and the S3 backend merges those of a
/// pack into one ranged `GET` (issue 23.6, `snapvault_remote::readahead`): a pack of many
/// small photos costs one request, not one per photo.
#[test]
fn an_s3_restore_reads_a_pack_of_small_files_in_one_request() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "restore-requests");
    r.ok(&["init"]);
    let work = tempdir();
    // 24 photos of 600 kB (a blob each): one or two 16 MiB data packs.
    let src = library(work.path(), 4100, 24, 600_000);
    r.ok(&["snapshot", &s(&src)]);
    // The GETs of a dry run: the trees, walked the same way by the restore.
    let gets_on_packs = |args: &[&str]| pack_gets(&proxy, &r, args);
    let out = tempdir();
    let target = s(out.path());
    let walk = gets_on_packs(&["restore", "latest", "--target", &target, "--dry-run"]);
    let gets = gets_on_packs(&["restore", "latest", "--target", &target]);
    assert_same_tree(&src, &out.path().join("library"));
    let pack = |l: &String| l.split(' ').nth(1).map(str::to_string);
    let tree_packs: std::collections::HashSet<String> = walk.iter().filter_map(pack).collect();
    let data_packs: std::collections::HashSet<String> = gets
        .iter()
        .filter_map(pack)
        .filter(|p| !tree_packs.contains(p))
        .collect();
    let data_gets = gets.len() - walk.len();
    eprintln!(
        "restore: {data_gets} GETs of file data on {} data packs (all GETs on packs: {gets:#?})",
        data_packs.len()
    );
    assert!(!data_packs.is_empty());
    assert_eq!(
        data_gets,
        data_packs.len(),
        "a data pack read with more than one request: {gets:#?}"
    );
}

/// With no `HEAD` after a pack's `PUT`, damage on the way up is still found: by the server
/// (the `PUT` carries `x-amz-checksum-crc32c`; S3 answers `BadDigest`), or, by a server that does not
/// check it (moto stores the body as it came), by `check --read-data`, which names the
/// damaged pack.
#[test]
fn a_pack_damaged_on_its_way_up_is_still_found() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "damaged-put");
    r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 5200, 3, 2_000_000);
    // "s3:http://127.0.0.1:port/bucket/prefix" → "/bucket/prefix".
    let path: String = r
        .url
        .splitn(4, '/')
        .nth(3)
        .map(|p| format!("/{p}"))
        .unwrap();
    proxy.flip_a_byte_of_next(&format!("PUT {path}/data/"));
    let snap = r.run(&["snapshot", &s(&src)]);
    if snap.code == Some(0) {
        let check = r.run(&["check", "--read-data"]);
        assert_ne!(
            check.code,
            Some(0),
            "the damaged pack went unnoticed:\n{check}"
        );
        let packs: Vec<String> = on(&proxy.requests(), "/data/")
            .iter()
            .filter(|l| l.starts_with("PUT "))
            .filter_map(|l| {
                l.split('/')
                    .nth(5)
                    .map(|n| n.split(' ').next().unwrap_or("").to_string())
            })
            .collect();
        assert!(
            packs
                .iter()
                .any(|p| p.len() > 16 && check.both().contains(&p[..16])),
            "no pack uploaded ({packs:?}) is named:\n{check}"
        );
    } else {
        assert!(snap.both().contains("pack"), "{snap}");
    }
}

/// `check --read-data` reads each data pack once, whole: the structure check takes its
/// header from that read instead of reading the pack's end first, so a pack costs one
/// request, not two.
#[test]
fn s3_check_read_data_is_one_request_per_data_pack() {
    if no_servers() {
        return;
    }
    let proxy = s3_proxy(Faults::default());
    let r = s3_via(&proxy, "check-requests");
    r.ok(&["init"]);
    let work = tempdir();
    let src = library(work.path(), 6300, 6, 5_000_000);
    r.ok(&["snapshot", &s(&src)]);
    let gets_on_packs = |args: &[&str]| pack_gets(&proxy, &r, args);
    // The packs of trees: those a dry-run restore reads (the check reads them per tree).
    let target = tempdir();
    let walk = gets_on_packs(&[
        "restore",
        "latest",
        "--dry-run",
        "--target",
        &s(target.path()),
    ]);
    let pack = |l: &String| l.split(' ').nth(1).map(str::to_string);
    let tree_packs: std::collections::HashSet<String> = walk.iter().filter_map(pack).collect();
    let gets: Vec<String> = gets_on_packs(&["check", "--read-data"])
        .into_iter()
        .filter(|l| pack(l).is_some_and(|p| !tree_packs.contains(&p)))
        .collect();
    let packs: std::collections::HashSet<String> = gets.iter().filter_map(pack).collect();
    eprintln!(
        "check --read-data: {} GETs on {} data packs",
        gets.len(),
        packs.len()
    );
    assert!(packs.len() >= 2, "{gets:#?}");
    assert_eq!(gets.len(), packs.len(), "{gets:#?}");
}

/// The `GET`s on packs (`/data/`) that `r` sends through `proxy` while running `args`.
fn pack_gets(proxy: &Proxy, r: &Remote, args: &[&str]) -> Vec<String> {
    let before = proxy.requests().len();
    r.ok(args);
    let lines = proxy.requests().split_off(before);
    on(&lines, "/data/")
        .into_iter()
        .filter(|l| l.starts_with("GET "))
        .map(str::to_string)
        .collect()
}
