//! Session 11: what a command's last lines say must not contradict the errors above them.

use std::fs;

use crate::common::*;

/// `check` (no --read-data) of a repository with a pack missing, or with its only index
/// file damaged, lists the errors and ends "N error(s) found" — and, before, printed
/// "checked 1 snapshot(s): everything they need is listed as stored" between them, even
/// right after "error: snapshot … tree of / cannot be read: stored data … is missing".
#[test]
fn check_with_errors_does_not_say_everything_is_listed_as_stored() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    for i in 0..3 {
        write_random(&src.join(format!("IMG_{i}.JPG")), i, 300_000);
    }
    let sv = Sv::init(tmp.path().join("repo"), false);
    sv.snapshot(&[&src], &[]);
    for damage in ["a pack missing", "the index damaged"] {
        let broken = tmp.path().join(format!("broken-{}", damage.len()));
        copy_tree(&sv.repo, &broken);
        match damage {
            "a pack missing" => {
                let (_, biggest) = pack_files(&broken)
                    .into_iter()
                    .max_by_key(|(_, p)| fs::metadata(p).unwrap().len())
                    .unwrap();
                fs::remove_file(biggest).unwrap();
            }
            _ => {
                for name in names_in(&broken, "index") {
                    let p = broken.join("index").join(name);
                    let mut b = fs::read(&p).unwrap();
                    let mid = b.len() / 2;
                    b[mid] ^= 0xff;
                    fs::write(&p, b).unwrap();
                }
            }
        }
        let out = Sv::at(&broken, None).run(&["check"]);
        assert_eq!(out.code, Some(4), "{damage}:\n{out}");
        assert!(out.stdout.contains("error(s) found"), "{damage}:\n{out}");
        assert!(
            !out.stdout
                .contains("everything they need is listed as stored"),
            "{damage}:\n{out}"
        );
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}
