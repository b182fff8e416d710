//! Session 14: folders swapped for symlinks while the snapshot walks them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::swapped::snapshot_while;
use crate::common::*;

/// Folders of the library and files in each.
const LIBRARY: (usize, usize) = (40, 200);

/// Folders of the library swapped for symlinks to a folder outside it, and back, over and
/// over while the snapshot runs (anyone who may write to the library, against a snapshot
/// run by root from cron). Before (session 14): the walk listed a folder, and opened the
/// files in it, by their whole path, so a folder listed as a folder in its parent and a
/// symlink by the time the walk got there was followed: the outside folder's files
/// (`SECRET`, and a name only it has) were stored under the library's name. A folder must
/// be read as the folder it was, stored as the symlink it became, or named as skipped;
/// never followed.
#[test]
fn a_folder_swapped_for_a_symlink_during_the_snapshot_is_not_followed() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let outside = tmp.path().join("outside");
    let (dirs, files) = LIBRARY;
    for i in 0..files {
        write_file(
            &outside.join(format!("f{i}")),
            b"SECRET: not part of the library",
        );
        for d in 0..dirs {
            write_file(&src.join(format!("d{d}/f{i}")), format!("x{i}").as_bytes());
        }
    }
    write_file(&outside.join("only-outside"), b"SECRET");
    let sv = Sv::init(tmp.path().join("repo"), false);
    let lib = src.clone();
    let out = snapshot_while(&sv, &src, move |stop| {
        let mut swapped = false;
        while !stop.load(Ordering::Relaxed) {
            for d in 0..dirs {
                let (at, aside) = (lib.join(format!("d{d}")), lib.join(format!("d{d}.aside")));
                if swapped {
                    let _ = fs::remove_file(&at);
                    let _ = fs::rename(&aside, &at);
                } else {
                    let _ = fs::rename(&at, &aside);
                    let _ = std::os::unix::fs::symlink(&outside, &at);
                }
            }
            swapped = !swapped;
        }
    });
    let restored = tmp.path().join("out");
    let _ = sv.run(&["restore", "latest", "--target", restored.to_str().unwrap()]);
    let mut leaked = Vec::new();
    outside_bytes(&restored, &mut leaked);
    assert!(
        leaked.is_empty(),
        "{} file(s) stored from the folder outside, e.g. {:?}:\n{out}",
        leaked.len(),
        &leaked[..leaked.len().min(5)]
    );
}

/// Files under `dir` (never through a symlink) holding the outside folder's bytes or name.
fn outside_bytes(dir: &Path, leaked: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        if md.is_dir() {
            outside_bytes(&p, leaked);
        } else if md.is_file()
            && (e.file_name() == "only-outside" || fs::read(&p).unwrap().starts_with(b"SECRET"))
        {
            leaked.push(p);
        }
    }
}
