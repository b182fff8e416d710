//! Helpers shared by the unit tests of the operations: a small repository (4/16/64 KiB
//! chunks, 1 MiB packs, so a few MB spread over several packs), deterministic photo
//! folders, a snapshot of one, and "check passes and every snapshot restores byte-exact".
//! The general parts are the crate-wide `testing` module's (the tests in `tests/` and of
//! other crates use it too); what is here is what only these unit tests need.

use std::collections::BTreeMap;
use std::path::Path;

use crate::format::id::SnapshotId;
use crate::format::tree::MediaMeta;
use crate::ops::archiver::{self, ArchiveOptions};
use crate::ops::fs_source::{FolderSource, SourceEntry};
use crate::ops::observe::{Inspector, NoHooks};
use crate::repository::Repository;
pub(crate) use crate::testing::{PASSWORD, copy_dir, create_small_repo, noise, open, open_with};

/// Marks `*.HEIC` files as photos taken at their mtime (what the binary's inspector does
/// for files it cannot parse).
pub(crate) struct Photos;
impl Inspector for Photos {
    fn inspect(&self, _path: &[u8], _head: &[u8], e: &SourceEntry) -> Option<MediaMeta> {
        e.name.0.ends_with(b".HEIC").then(|| MediaMeta {
            kind: "photo".into(),
            taken: Some(
                crate::format::time::rfc3339_utc(e.mtime.div_euclid(1_000_000_000))
                    .trim_end_matches('Z')
                    .to_string(),
            ),
            date_source: Some("mtime".into()),
            ..Default::default()
        })
    }
}

pub(crate) fn photo(dir: &Path, i: u64) {
    crate::testing::photo_file(dir, i, 30_000 + (i as usize * 7919) % 120_000);
}

pub(crate) fn unphoto(dir: &Path, i: u64) {
    std::fs::remove_file(dir.join(format!("IMG_{i:04}.HEIC"))).unwrap();
}

/// `count` incompressible photos of `size` bytes (`IMG_<i>.HEIC`) in a new folder `lib`
/// under `dir`: enough to spread over several 1 MiB packs. Returns the folder.
pub(crate) fn noise_library(dir: &Path, count: u64, size: usize) -> std::path::PathBuf {
    let lib = dir.join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..count {
        std::fs::write(lib.join(format!("IMG_{i}.HEIC")), noise(i, size)).unwrap();
    }
    lib
}

/// Every file under `dir`, by path relative to it.
pub(crate) fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::testing::files_under(dir, "")
}

/// Snapshot `src` (appearing as `lib/` in the snapshot); returns its id and content.
pub(crate) fn snapshot(
    repo: &Repository,
    src: &Path,
    tags: &[&str],
) -> (SnapshotId, BTreeMap<String, Vec<u8>>) {
    let folder = FolderSource::new(&[src.to_path_buf()]).unwrap();
    let index = repo.load_index().unwrap().index;
    let opts = ArchiveOptions {
        tags: tags.iter().map(|t| t.to_string()).collect(),
        ..crate::testing::folder_options(&folder)
    };
    let (id, _) = archiver::run(repo, index, &folder, opts, &NoHooks, &Photos).unwrap();
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    let content = files(src)
        .into_iter()
        .map(|(k, v)| (format!("{name}/{k}"), v))
        .collect();
    (id, content)
}

/// `check --read-data` finds no error and every kept snapshot restores byte-exact.
pub(crate) fn verify(root: &Path, kept: &[(SnapshotId, BTreeMap<String, Vec<u8>>)], what: &str) {
    let repo = open(root);
    let report = crate::testing::check_all(&repo).unwrap();
    assert_eq!(
        report.errors(),
        0,
        "{what}: check found errors: {:#?}",
        report.problems
    );
    assert_eq!(report.snapshots, kept.len(), "{what}");
    for (sid, want) in kept {
        let target = tempfile::tempdir().unwrap();
        let got = crate::testing::restore_to(&repo, sid, target.path())
            .unwrap_or_else(|e| panic!("{what}: snapshot {} does not restore: {e}", sid.short()));
        assert!(
            got == *want,
            "{what}: snapshot {} does not restore byte-exact",
            sid.short()
        );
    }
}
